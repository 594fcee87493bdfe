// Package embedded starts an in-process Cairn for the examples' -embedded
// mode, so that they run (and are tested) without a separate server.
package embedded

import (
	"io"
	"log/slog"
	"net/url"
	"os"

	"github.com/cairn-kv/cairn/embed"
)

// Start runs a single-member Cairn on a free 127.0.0.1 port with its data
// in a temporary directory. stop closes it and removes the directory.
func Start() (endpoints []string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "cairn-example-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := embed.Start(embed.Config{
		Dir:              dir,
		ListenClientURLs: []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		ListenPeerURLs:   []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		HeartbeatMs:      10,
		ElectionMs:       100,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return srv.ClientEndpoints(), func() {
		srv.Close()
		os.RemoveAll(dir)
	}, nil
}
