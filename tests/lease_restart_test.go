package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lease timing as the tests rely on it (cairn's defaults).
const (
	// electionTimeout is the default --election-timeout. A member that
	// becomes leader, as a restarted single member does, extends every
	// lease by it.
	electionTimeout = time.Second
	// checkpointTick is how often the leader records the remaining TTL of
	// leases that ran down half their TTL.
	checkpointTick = time.Second
	// expirySlack bounds how late an expiry may be seen after the lease's
	// time is up: the leader looks for expired leases every 100 ms, the
	// revoke goes through Raft, and the test polls every leasePoll.
	expirySlack = 2 * time.Second
	leasePoll   = 25 * time.Millisecond
	// leaseKeys is how many keys each test lease holds.
	leaseKeys    = 3
	leasePrefix  = "lease/"
	unleasedKey  = leasePrefix + "unleased"
	eventTimeout = 10 * time.Second
)

// testLease is a lease a test granted, with what the test knows of it.
type testLease struct {
	name string
	id   clientv3.LeaseID
	ttl  time.Duration // granted
	keys []string
	// renewSent and renewAcked bracket the lease's last renewal (its grant
	// or its last acknowledged keep-alive): the member restarted its TTL
	// at some moment in between.
	renewSent, renewAcked time.Time
}

// TestLeasesSurviveKill grants leases with keys, keeps one alive and
// leaves one idle past half its TTL (so the leader checkpoints its
// remaining TTL), then SIGKILLs the member and restarts it on the same
// data directory. After the restart:
//
//   - every lease is there with its keys and its granted TTL;
//   - the idle lease goes on from its checkpoint: its TTL is at most half
//     the granted one (plus the election timeout every lease gets on
//     promotion), not the full TTL again;
//   - no lease expires before its TTL has run since its last renewal (the
//     grant, or the last acknowledged keep-alive), and each expires within
//     its remaining TTL, the election timeout and expirySlack;
//   - each expiry deletes the lease's keys in one revision of its own, and
//     a watcher started after the restart from the revision before the
//     kill sees exactly those deletes.
func TestLeasesSurviveKill(t *testing.T) {
	t.Parallel()
	m := newMember(t)
	p := m.start(t)
	cli := newClient(t, m)
	// 10 s: clientv3 renews a third of the TTL after each answer, which
	// for a TTL of 10 s is always before the leader would checkpoint the
	// lease, so this lease has no checkpoint to clear
	// (TestLeaseRenewalAfterCheckpointSurvivesKill renews one that has).
	alive := grantWithKeys(t, cli, "alive", 10*time.Second)
	idle := grantWithKeys(t, cli, "idle", 8*time.Second)
	leases := []*testLease{alive, idle}
	put(t, cli, unleasedKey)

	kaCtx, stopKeepAlive := context.WithCancel(context.Background())
	defer stopKeepAlive()
	ka, err := cli.KeepAlive(kaCtx, alive.id)
	if err != nil {
		t.Fatalf("keep %s alive: %v", alive.name, err)
	}
	kaDone := make(chan struct{})
	go func() {
		defer close(kaDone)
		for range ka {
		}
	}()

	// The checkpoint cannot be awaited through the API: wait until the
	// leader has checked the idle leases at least once after half their
	// TTL ran down, with a second more for the checkpoint to go through
	// Raft on a loaded machine (half a second was once too little in CI),
	// and still 1.5 s before the lease would expire.
	time.Sleep(time.Until(idle.renewAcked.Add(idle.ttl/2 + 2*checkpointTick + checkpointTick/2)))
	stopKeepAlive()
	<-kaDone
	ctx, cancel := opCtx()
	before, err := cli.Get(ctx, leasePrefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if want := len(leases)*leaseKeys + 1; len(before.Kvs) != want {
		t.Fatalf("before the kill: %d keys under %s, want %d", len(before.Kvs), leasePrefix, want)
	}
	keepAliveOnce(t, cli, alive)
	p.kill(t)
	cli.Close()

	p = m.start(t)
	restarted := time.Now() // after the member was promoted and extended every lease
	t.Logf("restart with %d leases took %v", len(leases), p.startup)
	cli = newClient(t, m)
	defer cli.Close()
	w := watchFrom(t, cli, leasePrefix, before.Header.Revision+1)

	left := map[*testLease]time.Duration{}
	for _, l := range leases {
		left[l] = checkLease(t, cli, l)
		t.Logf("after restart, %s lease (TTL %v) has %v left", l.name, l.ttl, left[l])
	}
	if t.Failed() {
		return
	}
	// The idle lease's checkpoint is half its TTL or less (whole seconds,
	// rounded down); the other was renewed just before the kill.
	if max := idle.ttl/2 + electionTimeout; left[idle] > max || left[idle] < time.Second {
		t.Errorf("after restart, %s lease (TTL %v, idle %v before the kill) has %v left; want from its checkpoint: between 1s and %v",
			idle.name, idle.ttl, time.Since(idle.renewAcked), left[idle], max)
	}
	if min := alive.ttl - time.Second; left[alive] < min {
		t.Errorf("after restart, %s lease (TTL %v) has %v left, want at least %v: it was renewed just before the kill", alive.name, alive.ttl, left[alive], min)
	}

	var wg sync.WaitGroup
	for _, l := range leases {
		budget := l.ttl
		if l == idle {
			budget = idle.ttl / 2
		}
		// It must live its TTL since its last renewal (the member renewed
		// it before acknowledging), and go within the time it had left at
		// the restart.
		notBefore, notAfter := l.renewAcked.Add(l.ttl), restarted.Add(budget+electionTimeout+expirySlack)
		wg.Add(1)
		go func() {
			defer wg.Done()
			gone := awaitExpiry(t, cli, l, notBefore, notAfter)
			t.Logf("%s lease (TTL %v) gone %v after its last renewal, %v after the restart",
				l.name, l.ttl, gone.Sub(l.renewAcked).Round(time.Millisecond), gone.Sub(restarted).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	checkDeletes(t, w, leases, before.Header.Revision)
	checkOnlyUnleasedLeft(t, cli)
}

// grantWithKeys grants a lease of ttl and puts leaseKeys keys on it.
func grantWithKeys(t *testing.T, cli *clientv3.Client, name string, ttl time.Duration) *testLease {
	t.Helper()
	l := &testLease{name: name, ttl: ttl, renewSent: time.Now()}
	ctx, cancel := opCtx()
	defer cancel()
	resp, err := cli.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		t.Fatalf("grant %s: %v", name, err)
	}
	l.renewAcked = time.Now()
	if got := time.Duration(resp.TTL) * time.Second; got != ttl {
		t.Fatalf("grant %s: TTL %v, want %v", name, got, ttl)
	}
	l.id = resp.ID
	for i := range leaseKeys {
		key := fmt.Sprintf("%s%s/%d", leasePrefix, name, i)
		if _, err := cli.Put(ctx, key, name, clientv3.WithLease(l.id)); err != nil {
			t.Fatalf("put %s on lease %s: %v", key, name, err)
		}
		l.keys = append(l.keys, key)
	}
	return l
}

func put(t *testing.T, cli *clientv3.Client, key string) {
	t.Helper()
	ctx, cancel := opCtx()
	defer cancel()
	if _, err := cli.Put(ctx, key, "v"); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// keepAliveOnce renews l and records when.
func keepAliveOnce(t *testing.T, cli *clientv3.Client, l *testLease) {
	t.Helper()
	ctx, cancel := opCtx()
	defer cancel()
	sent := time.Now()
	resp, err := cli.KeepAliveOnce(ctx, l.id)
	if err != nil {
		t.Fatalf("keep-alive of %s: %v", l.name, err)
	}
	l.renewSent, l.renewAcked = sent, time.Now()
	if got := time.Duration(resp.TTL) * time.Second; got != l.ttl {
		t.Fatalf("keep-alive of %s: TTL %v, want %v", l.name, got, l.ttl)
	}
}

// checkLease checks that l exists with its granted TTL and keys, and
// returns the TTL it has left.
func checkLease(t *testing.T, cli *clientv3.Client, l *testLease) time.Duration {
	t.Helper()
	ctx, cancel := opCtx()
	defer cancel()
	resp, err := cli.TimeToLive(ctx, l.id, clientv3.WithAttachedKeys())
	if err != nil {
		t.Errorf("time-to-live of %s: %v", l.name, err)
		return 0
	}
	var keys []string
	for _, k := range resp.Keys {
		keys = append(keys, string(k))
	}
	switch {
	case resp.TTL <= 0:
		t.Errorf("lease %s (TTL %v): TTL %d, want it alive", l.name, l.ttl, resp.TTL)
	case time.Duration(resp.GrantedTTL)*time.Second != l.ttl:
		t.Errorf("lease %s: granted TTL %ds, want %v", l.name, resp.GrantedTTL, l.ttl)
	case !slices.Equal(keys, l.keys):
		t.Errorf("lease %s: keys %q, want %q", l.name, keys, l.keys)
	}
	return time.Duration(resp.TTL) * time.Second
}

// awaitExpiry polls l until it is gone and returns when that was seen. It
// fails the test if an answer received before notBefore says the lease is
// gone (it expired early), or one requested after notAfter says it is
// still there (it expired late).
func awaitExpiry(t *testing.T, cli *clientv3.Client, l *testLease, notBefore, notAfter time.Time) time.Time {
	for {
		sent := time.Now()
		ctx, cancel := opCtx()
		resp, err := cli.TimeToLive(ctx, l.id)
		cancel()
		got := time.Now()
		if err != nil {
			t.Errorf("time-to-live of %s: %v", l.name, err)
			return got
		}
		if resp.TTL == -1 { // gone, as etcd answers
			if got.Before(notBefore) {
				t.Errorf("lease %s (TTL %v) expired %v after its last renewal was acknowledged, at least %v early",
					l.name, l.ttl, got.Sub(l.renewAcked), notBefore.Sub(got))
			}
			return got
		}
		if sent.After(notAfter) {
			t.Errorf("lease %s (TTL %v) still there %v after its last renewal (TTL %ds left); want it gone by %v",
				l.name, l.ttl, sent.Sub(l.renewAcked), resp.TTL, notAfter.Sub(l.renewAcked))
			return got
		}
		time.Sleep(leasePoll) // expiry is a time, not an event the client can await
	}
}

// watched collects a watcher's events; the test's cleanup stops it.
type watched struct {
	arrive chan struct{} // signalled after each response

	mu     sync.Mutex // guards events and err
	events []*clientv3.Event
	err    error
}

// watchFrom watches prefix from revision rev and collects the events.
func watchFrom(t *testing.T, cli *clientv3.Client, prefix string, rev int64) *watched {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watched{arrive: make(chan struct{}, 1)}
	t.Cleanup(cancel)
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	go func() {
		for resp := range wch {
			w.mu.Lock()
			w.events = append(w.events, resp.Events...)
			if err := resp.Err(); err != nil && w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
			select {
			case w.arrive <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

// waitEvents waits until w has n events (or more) and returns them.
func (w *watched) waitEvents(t *testing.T, n int) []*clientv3.Event {
	t.Helper()
	timeout := time.After(eventTimeout)
	for {
		w.mu.Lock()
		evs, err := slices.Clone(w.events), w.err
		w.mu.Unlock()
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if len(evs) >= n {
			return evs
		}
		select {
		case <-w.arrive:
		case <-timeout:
			t.Fatalf("watch: %d events after %v, want %d: %v", len(evs), eventTimeout, n, evs)
		}
	}
}

// checkDeletes checks that w, watching leasePrefix since revision after,
// saw exactly the deletes of every lease's keys, one revision per lease.
func checkDeletes(t *testing.T, w *watched, leases []*testLease, after int64) {
	t.Helper()
	evs := w.waitEvents(t, len(leases)*leaseKeys)
	owner := map[string]*testLease{}
	for _, l := range leases {
		for _, k := range l.keys {
			owner[k] = l
		}
	}
	revOf := map[*testLease]int64{}
	leaseAt := map[int64]*testLease{}
	seen := map[string]bool{}
	for _, ev := range evs {
		key, rev := string(ev.Kv.Key), ev.Kv.ModRevision
		l := owner[key]
		switch {
		case ev.Type != clientv3.EventTypeDelete || l == nil:
			t.Errorf("watch saw %s %s at revision %d; want only deletes of leased keys", ev.Type, key, rev)
			continue
		case seen[key]:
			t.Errorf("watch saw the delete of %s twice", key)
		case rev <= after:
			t.Errorf("delete of %s at revision %d, not after the watch's start %d", key, rev, after+1)
		}
		seen[key] = true
		if r, ok := revOf[l]; ok && r != rev {
			t.Errorf("lease %s's keys were deleted at revisions %d and %d; want one revision", l.name, r, rev)
		}
		revOf[l] = rev
		if other := leaseAt[rev]; other != nil && other != l {
			t.Errorf("revision %d deleted keys of leases %s and %s; want one revision per lease", rev, other.name, l.name)
		}
		leaseAt[rev] = l
	}
	if len(evs) != len(owner) {
		t.Errorf("watch saw %d events, want %d deletes", len(evs), len(owner))
	}
}

// checkOnlyUnleasedLeft checks that the leased keys are gone and the key
// without a lease is not.
func checkOnlyUnleasedLeft(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := opCtx()
	defer cancel()
	resp, err := cli.Get(ctx, leasePrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	if !slices.Equal(keys, []string{unleasedKey}) {
		t.Errorf("after every lease expired, keys under %s: %q, want only %q", leasePrefix, keys, unleasedKey)
	}
}
