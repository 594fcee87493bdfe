package client_test

import (
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
)

func TestElection(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)

	if _, err := c.Leader(ctx, "/elect/db"); !errors.Is(err, client.ErrNoLeader) {
		t.Fatalf("Leader of an empty election: error = %v, want ErrNoLeader", err)
	}
	observed := make(chan string, 100)
	w, err := c.Observe(ctx, "/elect/db", func(l client.Leader) {
		if l.Key == "" {
			observed <- "none"
			return
		}
		observed <- l.Value
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	a, err := c.Campaign(ctx, "/elect/db", "a", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	elected := make(chan *client.Leadership, 1)
	go func() {
		b, err := c.Campaign(ctx, "/elect/db", "b", 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		elected <- b
	}()
	waitFor(t, func() bool { r, _ := c.GetPrefix(ctx, "/elect/db/"); return len(r.KVs) == 2 })

	l, err := c.Leader(ctx, "/elect/db")
	if err != nil || l.Value != "a" || l.Key != a.Key() || l.Revision != a.Revision() {
		t.Fatalf("Leader = %+v, %v; want a's key %s at %d", l, err, a.Key(), a.Revision())
	}
	if err := a.Proclaim(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Etcd().Txn(ctx).If(a.IsLeader()).Then(clientv3.OpPut("/db/primary", "a")).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("leader's fenced write: %v, %v", resp, err)
	}
	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	b := <-elected
	if b == nil {
		t.FailNow()
	}
	if b.Revision() <= a.Revision() {
		t.Fatalf("b's fencing revision %d not above a's %d", b.Revision(), a.Revision())
	}
	if err := a.Proclaim(ctx, "a3"); !errors.Is(err, client.ErrNotLeader) {
		t.Fatalf("Proclaim after Resign: error = %v, want ErrNotLeader", err)
	}
	if err := b.Resign(ctx); err != nil {
		t.Fatal(err)
	}

	var got []string
	for len(got) < 5 {
		select {
		case v := <-observed:
			got = append(got, v)
		case <-time.After(10 * time.Second):
			t.Fatalf("observed %q, then nothing", got)
		}
	}
	if want := []string{"none", "a", "a2", "b", "none"}; !equal(got, want) {
		t.Fatalf("observed %q, want %q", got, want)
	}
}

// A leader whose lease is lost hears about it, and the next candidate
// takes over.
func TestElectionLeaseLost(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	a, err := c.Campaign(ctx, "/e", "a", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	elected := make(chan error, 1)
	go func() {
		b, err := c.Campaign(ctx, "/e", "b", 5*time.Second)
		if err == nil {
			defer b.Resign(ctx)
		}
		elected <- err
	}()
	waitFor(t, func() bool { r, _ := c.GetPrefix(ctx, "/e/"); return len(r.KVs) == 2 })
	if err := c.LeaseRevoke(ctx, a.Lease()); err != nil {
		t.Fatal(err)
	}
	if err := <-elected; err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after the lease was revoked")
	}
	if err := a.Proclaim(ctx, "a2"); !errors.Is(err, client.ErrNotLeader) {
		t.Fatalf("Proclaim after loss: error = %v, want ErrNotLeader", err)
	}
	if err := a.Resign(ctx); !errors.Is(err, client.ErrLeaseLost) {
		t.Fatalf("Resign after loss: error = %v, want ErrLeaseLost", err)
	}
}
