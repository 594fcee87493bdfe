package discovery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/discovery"
	"github.com/cairn-kv/cairn/embed"
)

// startService starts a one-member Cairn as the v3 discovery service.
func startService(t *testing.T) (endpoint string, cli *clientv3.Client) {
	t.Helper()
	srv, err := embed.Start(embed.Config{
		Name:             "disc",
		Dir:              filepath.Join(t.TempDir(), "disc"),
		ListenClientURLs: []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		ListenPeerURLs:   []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		UnsafeNoFsync:    true,
		HeartbeatMs:      10,
		ElectionMs:       100,
		Logger:           slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	endpoint = srv.ClientEndpoints()[0]
	cli, err = clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return endpoint, cli
}

func joinAll(t *testing.T, cfg discovery.V3Config, names ...string) ([]string, []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errs := make([]string, len(names)), make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			self := fmt.Sprintf("%s=http://127.0.0.1:%d", n, 7000+i)
			out[i], errs[i] = discovery.JoinV3(ctx, nil, cfg, uint64(100+i), self)
		}()
	}
	wg.Wait()
	return out, errs
}

func TestJoinV3(t *testing.T) {
	ep, cli := startService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token, err := discovery.NewV3Token(ctx, discovery.V3Config{Endpoints: []string{ep}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	cfg := discovery.V3Config{Token: token, Endpoints: []string{ep}}
	got, errs := joinAll(t, cfg, "a", "b", "c")
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("member %d: %v", i, errs[i])
		}
		// Every member gets the same cluster, in registration order.
		if got[i] != got[0] {
			t.Fatalf("members disagree: %q vs %q", got[i], got[0])
		}
	}
	parts := strings.Split(got[0], ",")
	sort.Strings(parts)
	if want := "a=http://127.0.0.1:7000 b=http://127.0.0.1:7001 c=http://127.0.0.1:7002"; strings.Join(parts, " ") != want {
		t.Fatalf("cluster %q, want %s", got[0], want)
	}
	resp, err := cli.Get(ctx, "/_etcd/registry/"+token+"/members/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, strings.TrimPrefix(string(kv.Key), "/_etcd/registry/"+token+"/members/"))
	}
	if fmt.Sprint(keys) != "[64 65 66]" { // 100, 101, 102 in hex
		t.Fatalf("registered IDs %v, want [64 65 66]", keys)
	}

	// A member registered already rejoins (its data dir lost): it finds
	// itself among the first three and gets the same cluster.
	again, err := discovery.JoinV3(ctx, nil, cfg, 101, "b=http://127.0.0.1:7001")
	if err != nil || again != got[0] {
		t.Fatalf("rejoin: %q, %v; want %q", again, err, got[0])
	}
	_, err = discovery.JoinV3(ctx, nil, cfg, 200, "d=http://127.0.0.1:7003")
	if !errors.Is(err, discovery.ErrFullCluster) || err.Error() != "discovery: cluster is full" {
		t.Fatalf("fourth member: %v, want %v", err, discovery.ErrFullCluster)
	}
}

func TestJoinV3Errors(t *testing.T) {
	ep, cli := startService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for key, val := range map[string]string{
		"/_etcd/registry/zero/_config/size":  "0",
		"/_etcd/registry/words/_config/size": "three",
	} {
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		token string
		want  error
	}{
		{"missing", discovery.ErrSizeNotFound},
		{"zero", discovery.ErrBadSizeKey},
		{"words", discovery.ErrBadSizeKey},
	} {
		_, err := discovery.JoinV3(ctx, nil, discovery.V3Config{Token: tc.token, Endpoints: []string{ep}}, 1, "a=http://127.0.0.1:7000")
		if !errors.Is(err, tc.want) {
			t.Errorf("token %s: %v, want %v", tc.token, err, tc.want)
		}
	}

	// Two members with one name: both fail once the token is full.
	token, err := discovery.NewV3Token(ctx, discovery.V3Config{Endpoints: []string{ep}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	_, errs := joinAll(t, discovery.V3Config{Token: token, Endpoints: []string{ep}}, "same", "same")
	for i, err := range errs {
		if !errors.Is(err, discovery.ErrDuplicateName) {
			t.Errorf("member %d: %v, want %v", i, err, discovery.ErrDuplicateName)
		}
	}
	// Malformed registrations are skipped, as etcd skips them.
	token, err = discovery.NewV3Token(ctx, discovery.V3Config{Endpoints: []string{ep}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/_etcd/registry/"+token+"/members/bad", "no equals sign"); err != nil {
		t.Fatal(err)
	}
	got, err := discovery.JoinV3(ctx, nil, discovery.V3Config{Token: token, Endpoints: []string{ep}}, 5, "solo=http://127.0.0.1:7000")
	if err != nil || got != "solo=http://127.0.0.1:7000" {
		t.Fatalf("with a malformed registration: %q, %v", got, err)
	}
}

// An unreachable service is retried until the context ends.
func TestJoinV3Unreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cfg := discovery.V3Config{Token: "t", Endpoints: []string{"127.0.0.1:1"}, DialTimeout: 100 * time.Millisecond, RequestTimeout: 200 * time.Millisecond}
	_, err := discovery.JoinV3(ctx, nil, cfg, 1, "a=http://127.0.0.1:7000")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's deadline", err)
	}
}

// A service that is down when the member starts: the member retries
// (after etcd's first back-off, 2 s) and joins once it is back.
func TestJoinV3ServiceLate(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := embed.Config{
		Name:             "disc",
		Dir:              filepath.Join(t.TempDir(), "disc"),
		ListenClientURLs: []url.URL{{Scheme: "http", Host: addr}},
		ListenPeerURLs:   []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		UnsafeNoFsync:    true,
		HeartbeatMs:      10,
		ElectionMs:       100,
		Logger:           slog.New(slog.DiscardHandler),
	}
	start := func() *embed.Server {
		srv, err := embed.Start(cfg)
		if err != nil {
			t.Skipf("port %s taken meanwhile: %v", addr, err)
		}
		return srv
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The token exists; then the service goes down.
	srv := start()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cli.Put(ctx, discovery.V3SizeKey("late"), "1")
	cli.Close()
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()

	type result struct {
		cluster string
		err     error
	}
	done := make(chan result, 1)
	var log syncBuffer
	go func() {
		cfg := discovery.V3Config{Token: "late", Endpoints: []string{addr}, DialTimeout: 200 * time.Millisecond, RequestTimeout: 500 * time.Millisecond}
		c, err := discovery.JoinV3(ctx, slog.New(slog.NewTextHandler(&log, nil)), cfg, 1, "solo=http://127.0.0.1:7000")
		done <- result{c, err}
	}()
	// Back once the member has failed and backs off.
	for !strings.Contains(log.String(), "retry connecting to discovery service") {
		select {
		case r := <-done:
			t.Fatalf("join ended while the service was down: %q, %v", r.cluster, r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	defer start().Close()
	r := <-done
	if r.err != nil || r.cluster != "solo=http://127.0.0.1:7000" {
		t.Fatalf("got %q, %v", r.cluster, r.err)
	}
}

// syncBuffer is a bytes.Buffer for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
