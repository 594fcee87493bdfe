package server

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// goroutinesIn lists the stacks of running goroutines that mention fn.
func goroutinesIn(fn string) []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			out = append(out, g)
		}
	}
	return out
}

// A start that fails after the Raft loop started (here: a peer URL the
// transport cannot use) stops the loop and the transport before the
// storage closes, and leaves the directory usable.
func TestFailedStartStopsEverything(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, freeURL(t))
	cfg.InitialCluster["m2"] = []string{"unix:///nowhere"} // no host: SetPeer fails
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "no usable URL") {
		t.Fatalf("New with an unusable peer URL: got %v, want the transport's error", err)
	}
	for _, fn := range []string{"raftnode.(*Node).run", "transport.(*peer).run"} {
		if g := goroutinesIn(fn); len(g) > 0 {
			t.Fatalf("%s still runs after the failed start:\n%s", fn, g[0])
		}
	}
	delete(cfg.InitialCluster, "m2")
	// A fresh directory, since the failed one bootstrapped a two-member
	// cluster; the first must be closed (Pebble's lock released).
	m := startMember(t, testConfig(t, t.TempDir(), freeURL(t)))
	m.Close()
}

// After the member fails on its own, requests are refused with ErrStopped
// at once, reads as well as writes, instead of waiting for a timeout.
func TestFailedMemberRefusesRequests(t *testing.T) {
	m := startMember(t, testConfig(t, t.TempDir(), freeURL(t)))
	defer m.Close()
	put(t, m, "k", "v")
	m.fail(errors.New("injected failure"))
	select {
	case <-m.Failed():
	default:
		t.Fatal("Failed delivered nothing")
	}
	// No deadline: a request that waited for one would hang the test.
	ctx := context.Background()
	if _, err := m.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("w")}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Put after failure: got %v, want %v", err, ErrStopped)
	}
	if _, err := m.Range(ctx, &pb.RangeRequest{Key: []byte("k")}); !errors.Is(err, ErrStopped) {
		t.Fatalf("linearizable Range after failure: got %v, want %v", err, ErrStopped)
	}
	if _, err := m.Range(ctx, &pb.RangeRequest{Key: []byte("k"), Serializable: true}); !errors.Is(err, ErrStopped) {
		t.Fatalf("serializable Range after failure: got %v, want %v", err, ErrStopped)
	}
	if _, err := m.MemberRemove(ctx, 0x1234); !errors.Is(err, ErrStopped) {
		t.Fatalf("MemberRemove after failure: got %v, want %v", err, ErrStopped)
	}
}

// The minimum lease TTL (1.5 election timeouts) is applied when the grant
// is proposed, so the entry carries the TTL every member stores: the
// lessor itself raises nothing.
func TestLeaseGrantTTLDecidedAtPropose(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), freeURL(t))
	cfg.ElectionTicks = 300 // 3 s: the minimum TTL is ceil(4.5 s) = 5 s
	m := startMember(t, cfg)
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := m.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 7, TTL: 1})
	if err != nil {
		t.Fatal(err)
	}
	if resp.TTL != 5 {
		t.Fatalf("granted TTL %d, want the minimum 5", resp.TTL)
	}
	if l, ok := m.lessor.Lookup(7); !ok || l.TTL != 5 {
		t.Fatalf("stored lease %+v (found %v), want TTL 5", l, ok)
	}
}
