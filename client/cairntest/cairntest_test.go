package cairntest_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
)

func TestStartRestartKeepsDataAndPort(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := cairntest.Start(t)
	c := srv.Client(t)
	rev, err := c.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Endpoints()[0]

	srv.Stop(t)
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := c.Get(short, "k"); err == nil {
		t.Fatal("Get succeeded while the server was stopped")
	}
	srv.Restart(t)
	if got := srv.Endpoints()[0]; got != before {
		t.Fatalf("endpoint after Restart = %s, want %s", got, before)
	}
	// The same client reconnects by itself.
	kv, err := c.Get(ctx, "k")
	if err != nil || kv.Value != "v" || kv.ModRevision != rev {
		t.Fatalf("after Restart Get = %+v, %v; want v at %d", kv, err, rev)
	}
}

func TestProxyCutAndRestore(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := cairntest.Start(t)
	p := cairntest.NewProxy(t, srv.Endpoints()[0])
	cfg := cairntest.ClientConfig(p.Endpoint())
	c := srv.Client(t) // direct
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	cfg.DialTimeout = time.Second
	far := newClient(t, cfg)
	if _, err := far.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := far.Get(short, "k"); err == nil {
		t.Fatal("Get through a cut proxy succeeded")
	}
	p.Restore()
	if _, err := far.Get(ctx, "k"); err != nil {
		t.Fatalf("Get after Restore: %v", err)
	}
}

// WithTLS serves mutual TLS: the server's own Config connects with the
// client certificate; a connection string with the same files does too;
// a client without a certificate is refused; Restart keeps TLS.
func TestWithTLS(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := cairntest.Start(t, cairntest.WithTLS())
	c := srv.Client(t)
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	pki := srv.PKI()
	cs := "Server=" + srv.Endpoints()[0] + ",CACert=" + pki.CA + ",Cert=" + pki.Root.Cert + ",Key=" + pki.Root.Key
	byString, err := client.Connect(cs)
	if err != nil {
		t.Fatal(err)
	}
	defer byString.Close()
	if kv, err := byString.Get(ctx, "k"); err != nil || kv.Value != "v" {
		t.Fatalf("Get through %q = %+v, %v", cs, kv, err)
	}

	noCert := srv.Config()
	noCert.Cert, noCert.Key = "", ""
	nc, err := client.New(noCert)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if _, err := nc.Get(short, "k"); err == nil {
		t.Fatal("a client without a certificate was served")
	}

	srv.Restart(t)
	if kv, err := c.Get(ctx, "k"); err != nil || kv.Value != "v" {
		t.Fatalf("after Restart: %+v, %v", kv, err)
	}
}
