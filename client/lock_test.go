package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
)

func TestLockTryLockAndFencing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)

	a, err := c.Lock(ctx, "/locks/job", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TryLock(ctx, "/locks/job", 5*time.Second); !errors.Is(err, client.ErrLocked) {
		t.Fatalf("TryLock on a held lock: error = %v, want ErrLocked", err)
	}
	kv, err := c.Get(ctx, a.Key())
	if err != nil || kv.CreateRevision != a.FencingToken() || kv.Lease != a.Lease() {
		t.Fatalf("lock key %s = %+v, %v; want create revision %d, lease %x", a.Key(), kv, err, a.FencingToken(), a.Lease())
	}
	// The failed TryLock left no key behind.
	if r, _ := c.GetPrefix(ctx, "/locks/job/"); len(r.KVs) != 1 {
		t.Fatalf("lock keys = %+v, want only the holder's", r.KVs)
	}

	guarded := func(lk *client.Lock, v string) bool {
		resp, err := c.Etcd().Txn(ctx).If(lk.IsOwner()).Then(clientv3.OpPut("/guarded", v)).Commit()
		if err != nil {
			t.Fatal(err)
		}
		return resp.Succeeded
	}
	if !guarded(a, "a") {
		t.Fatal("holder's guarded write failed")
	}
	unlock := a.Unlock // the unlock func(context.Context) error
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(ctx); !errors.Is(err, client.ErrUnlocked) {
		t.Fatalf("second Unlock: error = %v, want ErrUnlocked", err)
	}
	if guarded(a, "stale") {
		t.Fatal("guarded write by a released lock succeeded")
	}
	b, err := c.TryLock(ctx, "/locks/job", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Unlock(ctx)
	if b.FencingToken() <= a.FencingToken() {
		t.Fatalf("fencing token %d after %d, want it to grow", b.FencingToken(), a.FencingToken())
	}
}

// Waiters queue; when the holder unlocks, the next one acquires. A waiter
// whose context ends gives up and leaves no key.
func TestLockWaits(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	a, err := c.Lock(ctx, "/l", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.Lock(short, "/l", 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with an expiring context: error = %v, want DeadlineExceeded", err)
	}
	if r, _ := c.GetPrefix(ctx, "/l/"); len(r.KVs) != 1 {
		t.Fatalf("lock keys after a waiter gave up = %d, want 1", len(r.KVs))
	}

	got := make(chan *client.Lock, 1)
	go func() {
		b, err := c.Lock(ctx, "/l", 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	// Wait until b is queued (its key exists) before releasing a.
	waitFor(t, func() bool { r, _ := c.GetPrefix(ctx, "/l/"); return len(r.KVs) == 2 })
	select {
	case <-got:
		t.Fatal("second Lock acquired while the first was held")
	default:
	}
	a.Unlock(ctx)
	b := <-got
	if b == nil {
		t.FailNow()
	}
	b.Unlock(ctx)
}

// The holder's process dies (its client closes without unlocking): the
// lock frees itself when the lease expires and the next waiter gets it.
func TestLockHolderDies(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	holder := newClient(t, srv.Config())
	waiter := srv.Client(t)
	if _, err := holder.Lock(ctx, "/l", time.Second); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		lk, err := waiter.Lock(ctx, "/l", 5*time.Second)
		if err == nil {
			defer lk.Unlock(ctx)
		}
		got <- err
	}()
	start := time.Now()
	holder.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waiter acquired %v after the holder died, want about its 1 s TTL", d)
	}
}

// Losing the lease is reported on Lost, and Unlock says the lock was lost.
func TestLockLost(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	lk, err := c.Lock(ctx, "/l", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-lk.Lost():
		t.Fatal("Lost closed while held")
	default:
	}
	if err := c.LeaseRevoke(ctx, lk.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lk.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after the lease was revoked")
	}
	if err := lk.Unlock(ctx); !errors.Is(err, client.ErrLeaseLost) {
		t.Fatalf("Unlock after loss: error = %v, want ErrLeaseLost", err)
	}
	// And a normal Unlock never closes Lost.
	lk2, err := c.Lock(ctx, "/l", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lk2.Unlock(ctx)
	select {
	case <-lk2.Lost():
		t.Fatal("Unlock closed Lost")
	default:
	}
}

// waitFor polls cond until it holds (for conditions there is no event
// to wait on), failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
