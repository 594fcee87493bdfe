package embed

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// --max-concurrent-streams takes effect: with one stream per connection, a
// watch holds it and a put on the same connection waits.
func TestMaxConcurrentStreams(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxConcurrentStreams = 1
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	wch := cli.Watch(wctx, "k")
	// The watch stream is open once a put's event arrives through it.
	go func() {
		pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer pcancel()
		other, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err == nil {
			other.Put(pctx, "k", "v2")
			other.Close()
		}
	}()
	select {
	case <-wch:
	case <-ctx.Done():
		t.Fatal("watch saw no event")
	}
	short, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer scancel()
	_, err = cli.Put(short, "k", "v3")
	if status.Code(err) != codes.DeadlineExceeded && err != context.DeadlineExceeded {
		t.Fatalf("put while the only stream is taken: got %v, want a deadline exceeded", err)
	}
	wcancel()
}

// --listen-client-http-urls serves HTTP alone; the client URLs then serve
// gRPC alone.
func TestListenClientHTTPURLs(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ListenClientHTTPURLs = []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hc := &http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get("http://" + srv.ClientHTTPEndpoints()[0] + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"health":"true"`) {
		t.Fatalf("/health on the HTTP URL: %s", body)
	}
	if _, err := hc.Get("http://" + srv.ClientEndpoints()[0] + "/health"); err == nil {
		t.Fatal("the gRPC-only client URL answered HTTP")
	}
	if err := put(srv.ClientEndpoints(), nil); err != nil {
		t.Fatalf("gRPC on the client URL: %v", err)
	}
}
