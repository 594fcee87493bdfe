package server

import (
	"context"
	"runtime"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/pkg/clock"
)

// The leader's duties run on the member's clock, end to end: on a member
// whose clock is a fake one, a lease's keys go when the fake time passes
// its TTL (never before), and a keep-alive at 3 s moves that to 3 s + TTL.
// Nothing sleeps: the test advances the clock until the keys are gone.
func TestLeaseExpiryOnMemberClock(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), freeURL(t))
	start := time.Unix(1_700_000_000, 0)
	clk := clock.NewFake(start)
	cfg.Clock = clk
	m := startMember(t, cfg)
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, id := range []int64{1, 2} {
		if _, err := m.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: id, TTL: 5}); err != nil {
			t.Fatal(err)
		}
		key := []byte{'k', byte('0' + id)}
		if _, err := m.Put(ctx, &pb.PutRequest{Key: key, Value: []byte("v"), Lease: id}); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		resp, err := m.Range(ctx, &pb.RangeRequest{Key: []byte(key), Serializable: true})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Kvs) == 1
	}
	// advanceUntilGone moves the clock a tick at a time until key is gone
	// and returns the fake time elapsed then.
	advanceUntilGone := func(key string) time.Duration {
		for exists(key) {
			if ctx.Err() != nil {
				t.Fatalf("%s still exists at +%v", key, clk.Since(start))
			}
			clk.Advance(10 * time.Millisecond)
			runtime.Gosched()
		}
		return clk.Since(start)
	}

	for clk.Since(start) < 3*time.Second {
		clk.Advance(10 * time.Millisecond)
	}
	if ttl, err := m.LeaseRenew(ctx, 2); err != nil || ttl != 5 {
		t.Fatalf("LeaseRenew(2) at +3s = %d, %v; want 5", ttl, err)
	}
	if gone := advanceUntilGone("k1"); gone < 5*time.Second {
		t.Fatalf("lease 1 (TTL 5 s) revoked at +%v", gone)
	}
	if !exists("k2") && clk.Since(start) < 8*time.Second {
		t.Fatalf("lease 2, renewed at +3s, revoked by +%v", clk.Since(start))
	}
	if gone := advanceUntilGone("k2"); gone < 8*time.Second {
		t.Fatalf("lease 2 (renewed at +3s) revoked at +%v, want no sooner than +8s", gone)
	}
}
