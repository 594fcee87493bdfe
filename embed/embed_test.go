package embed

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func testConfig(dir string) Config {
	return Config{
		Dir:              dir,
		ListenClientURLs: []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		ListenPeerURLs:   []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// A member started, written to, closed and started again on the same
// directory keeps its data, revision and identity.
func TestStartCloseRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := Start(testConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Ready():
	default:
		t.Fatal("Start returned before Ready")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	put, err := cli.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	id := put.Header.MemberId
	cli.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv, err = Start(testConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err = clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	get, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(get.Kvs) != 1 || string(get.Kvs[0].Value) != "v" || get.Header.Revision != put.Header.Revision || get.Header.MemberId != id {
		t.Fatalf("after restart: %+v, want k=v at revision %d from member %x", get, put.Header.Revision, id)
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.InitialClusterState = "maybe" }, "--initial-cluster-state"},
		{func(c *Config) { c.ElectionMs = 200 }, "--election-timeout"},
		{func(c *Config) { c.InitialCluster = "nope" }, "--initial-cluster"},
		{func(c *Config) { c.LogLevel = "loud" }, "--log-level"},
		{func(c *Config) { c.WatchProgressNotifyInterval = time.Millisecond }, "--watch-progress-notify-interval"},
		{func(c *Config) { c.Metrics = "bogus" }, "--metrics"},
		{func(c *Config) { c.ListenMetricsURLs = []url.URL{{Scheme: "https", Host: "127.0.0.1:0"}} }, "--listen-metrics-urls"},
	}
	for _, tt := range tests {
		c := testConfig(t.TempDir())
		c.EnsureDefaults()
		tt.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
		}
	}
}
