package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
)

func TestLease(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)

	l, err := c.LeaseGrant(ctx, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if l.TTL != 2*time.Second {
		t.Fatalf("granted TTL = %v, want 1.5 s rounded up to 2 s", l.TTL)
	}
	c.Put(ctx, "/l/a", "1", client.WithLease(l.ID))
	c.Put(ctx, "/l/b", "1", client.WithLease(l.ID))
	if kv, _ := c.Get(ctx, "/l/a"); kv.Lease != l.ID {
		t.Fatalf("key lease = %x, want %x", kv.Lease, l.ID)
	}
	info, err := c.LeaseInfo(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.GrantedTTL != 2*time.Second || info.TTL <= 0 || info.TTL > 2*time.Second || !equal(info.Keys, []string{"/l/a", "/l/b"}) {
		t.Fatalf("LeaseInfo = %+v", info)
	}
	if ttl, err := c.LeaseKeepAliveOnce(ctx, l.ID); err != nil || ttl != 2*time.Second {
		t.Fatalf("LeaseKeepAliveOnce = %v, %v; want 2s", ttl, err)
	}
	if err := c.LeaseRevoke(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Exists(ctx, "/l/a"); ok {
		t.Fatal("key survived its lease's revocation")
	}
	for name, err := range map[string]error{
		"revoke": c.LeaseRevoke(ctx, l.ID),
		"info":   func() error { _, err := c.LeaseInfo(ctx, l.ID); return err }(),
		"once":   func() error { _, err := c.LeaseKeepAliveOnce(ctx, l.ID); return err }(),
		"keep":   func() error { _, err := c.LeaseKeepAlive(ctx, l.ID); return err }(),
	} {
		if !errors.Is(err, client.ErrLeaseNotFound) {
			t.Errorf("%s on a revoked lease: error = %v, want ErrLeaseNotFound", name, err)
		}
	}
}

// A kept-alive lease outlives its TTL; when it is revoked behind the
// keeper's back, the keeper reports ErrLeaseLost.
func TestLeaseKeepAlive(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	l, err := c.LeaseGrant(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := c.LeaseKeepAlive(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ka.TTL() != time.Second || ka.ID() != l.ID {
		t.Fatalf("KeepAlive TTL %v ID %x, want 1s %x", ka.TTL(), ka.ID(), l.ID)
	}
	// Outlive the TTL twice over, checking the lease each time.
	for range 2 {
		time.Sleep(time.Second) // elapsed time is what is under test
		if _, err := c.LeaseInfo(ctx, l.ID); err != nil {
			t.Fatalf("kept-alive lease: %v", err)
		}
	}
	if err := c.LeaseRevoke(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ka.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("KeepAlive did not notice the revoke")
	}
	if !errors.Is(ka.Err(), client.ErrLeaseLost) {
		t.Fatalf("Err() = %v, want ErrLeaseLost", ka.Err())
	}

	// Stop ends the keep-alives without an error of their own.
	l2, _ := c.LeaseGrant(ctx, time.Second)
	ka2, err := c.LeaseKeepAlive(ctx, l2.ID)
	if err != nil {
		t.Fatal(err)
	}
	ka2.Stop()
	if !errors.Is(ka2.Err(), context.Canceled) {
		t.Fatalf("Err() after Stop = %v, want context.Canceled", ka2.Err())
	}
}
