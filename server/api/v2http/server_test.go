package v2http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/embed"
)

func startServer(t *testing.T) string {
	t.Helper()
	srv, err := embed.Start(embed.Config{
		Name:             "v2",
		Dir:              t.TempDir(),
		ListenClientURLs: []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		ListenPeerURLs:   []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		UnsafeNoFsync:    true,
		HeartbeatMs:      10,
		ElectionMs:       100,
		EnableV2:         true,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "http://" + srv.ClientEndpoints()[0]
}

type event struct {
	Action string `json:"action"`
	Node   struct {
		Key           string `json:"key"`
		Value         string `json:"value"`
		ModifiedIndex uint64 `json:"modifiedIndex"`
	} `json:"node"`
}

func put(ctx context.Context, u, value string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "PUT", u, strings.NewReader(url.Values{"value": {value}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return http.DefaultClient.Do(req)
}

// TestStreamWatchSeesConcurrentWrites: a recursive stream watch gets every
// set of concurrent writers exactly once, in index order.
func TestStreamWatchSeesConcurrentWrites(t *testing.T) {
	base := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v2/keys/s?wait=true&recursive=true&stream=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	const writers, each = 4, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r, err := put(ctx, fmt.Sprintf("%s/v2/keys/s/w%d", base, w), fmt.Sprint(i))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				if r.StatusCode/100 != 2 {
					t.Errorf("put: status %d", r.StatusCode)
				}
			}
		}()
	}
	sc := bufio.NewScanner(resp.Body)
	var last uint64
	next := map[string]int{}
	for n := 0; n < writers*each; n++ {
		if !sc.Scan() {
			t.Fatalf("stream ended after %d events: %v", n, sc.Err())
		}
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		if ev.Action != "set" || ev.Node.ModifiedIndex <= last {
			t.Fatalf("event %d: %+v after index %d", n, ev, last)
		}
		last = ev.Node.ModifiedIndex
		if want := fmt.Sprint(next[ev.Node.Key]); ev.Node.Value != want {
			t.Fatalf("event %d: %s = %s, want %s", n, ev.Node.Key, ev.Node.Value, want)
		}
		next[ev.Node.Key]++
	}
	wg.Wait()
}
