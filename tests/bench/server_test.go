package bench

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/embed"
)

// One member serves every benchmark of a run; it starts on first use, so
// `go test` without -bench starts nothing.
var shared struct {
	once sync.Once
	dir  string
	srv  *embed.Server
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: close server:", err)
			code = 1
		}
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// server returns the shared member's client endpoint, starting it if needed.
func server(b *testing.B) string {
	b.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "cairn-bench-")
		if shared.err != nil {
			return
		}
		local := []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}}
		shared.srv, shared.err = embed.Start(embed.Config{
			Dir:              filepath.Join(shared.dir, "data"),
			ListenClientURLs: local,
			ListenPeerURLs:   local,
			Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	})
	if shared.err != nil {
		b.Fatalf("start cairn: %v", shared.err)
	}
	return shared.srv.ClientEndpoints()[0]
}

// clients opens n clientv3 clients (n connections) to the shared member,
// connected before it returns and closed when b ends.
func clients(b *testing.B, n int) []*clientv3.Client {
	b.Helper()
	return dial(b, server(b), n)
}

// reportOps adds ops/s: b.N operations over the timed part of the run.
func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
