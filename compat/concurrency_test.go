package compat

// clientv3/concurrency test.
//
// What it proves: the recipes of go.etcd.io/etcd/client/v3/concurrency,
// which build on leases, txns with create-revision compares, ranges sorted
// by create revision and watches from a revision, work against Cairn:
// Mutex keeps mutual exclusion among goroutines with their own sessions,
// and a holder whose session's lease expires lets the next waiter in;
// Election campaigns, proclaims, resigns and fails over when the leader's
// lease expires, while an observer sees every leader value in order; STM
// transfers from several goroutines keep the sum of the accounts. The same
// tests run against etcd, to show that they hold for the oracle.
//
// These assert behaviour rather than compare answers: lock order and
// retries depend on scheduling.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// sessionTTL is the lease TTL of every session, in seconds: short, so that
// an orphaned session expires quickly.
const sessionTTL = 2

// concurrencyTimeout bounds each test's operations.
const concurrencyTimeout = 30 * time.Second

func TestConcurrency(t *testing.T) {
	for _, target := range []struct {
		name  string
		start func(testing.TB) ([]string, func())
	}{{"cairn", cluster.StartCairn}, {"etcd", cluster.StartEtcd}} {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			eps, _ := target.start(t)
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, c *clientv3.Client)
			}{
				{"mutex", testMutex},
				{"mutex orphan", testMutexOrphan},
				{"election", testElection},
				{"stm", testSTM},
			} {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newClient(t, eps))
				})
			}
		})
	}
}

func newClient(t *testing.T, eps []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newSession(t *testing.T, c *clientv3.Client) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(c, concurrency.WithTTL(sessionTTL))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testMutex has workers, each with its own sessions, increment a counter
// under the lock with a read-modify-write gap: any overlap loses an
// increment, and the holder count would exceed one.
func testMutex(t *testing.T, c *clientv3.Client) {
	const workers, sessionsEach, rounds = 4, 2, 3
	ctx, cancel := context.WithTimeout(context.Background(), concurrencyTimeout)
	defer cancel()
	if _, err := c.Put(ctx, "/counter", "0"); err != nil {
		t.Fatal(err)
	}
	var holders atomic.Int32
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		sessions := make([]*concurrency.Session, sessionsEach)
		for i := range sessions {
			sessions[i] = newSession(t, c)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				for i, s := range sessions {
					if err := incrementLocked(ctx, c, s, &holders); err != nil {
						errc <- fmt.Errorf("worker %d, round %d, session %d: %w", w, r, i, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	resp, err := c.Get(ctx, "/counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(resp.Kvs[0].Value), strconv.Itoa(workers*sessionsEach*rounds); got != want {
		t.Errorf("counter: got %s, want %s (an increment was lost: the lock let two holders in)", got, want)
	}
}

func incrementLocked(ctx context.Context, c *clientv3.Client, s *concurrency.Session, holders *atomic.Int32) error {
	m := concurrency.NewMutex(s, "/lock/")
	if err := m.Lock(ctx); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if n := holders.Add(1); n != 1 {
		return fmt.Errorf("%d holders of the lock", n)
	}
	resp, err := c.Get(ctx, "/counter")
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(string(resp.Kvs[0].Value))
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Millisecond) // widen the window in which another holder would interleave
	if _, err := c.Put(ctx, "/counter", strconv.Itoa(n+1)); err != nil {
		return err
	}
	holders.Add(-1)
	if err := m.Unlock(ctx); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}

// testMutexOrphan lets the holder's session lease expire: the waiter gets
// the lock only once the holder's lease, and so its lock key, is gone.
func testMutexOrphan(t *testing.T, c *clientv3.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), concurrencyTimeout)
	defer cancel()
	s1, s2 := newSession(t, c), newSession(t, c)
	m1, m2 := concurrency.NewMutex(s1, "/orphan/"), concurrency.NewMutex(s2, "/orphan/")
	if err := m1.Lock(ctx); err != nil {
		t.Fatalf("m1 lock: %v", err)
	}
	if err := m2.TryLock(ctx); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("m2 TryLock while m1 holds the lock: got %v, want %v", err, concurrency.ErrLocked)
	}
	acquired := make(chan error, 1)
	go func() { acquired <- m2.Lock(ctx) }()
	select {
	case err := <-acquired:
		t.Fatalf("m2 got the lock while m1 holds it (err %v)", err)
	case <-time.After(300 * time.Millisecond): // m2 waits, as it must
	}
	s1.Orphan() // no more keep-alives: the lease expires within its TTL
	orphaned := time.Now()
	select {
	case err := <-acquired:
		if err != nil {
			t.Fatalf("m2 lock: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("m2 did not get the lock within %v of s1's lease expiring", concurrencyTimeout)
	}
	t.Logf("m2 got the lock %v after s1 was orphaned", time.Since(orphaned))
	ttl, err := c.TimeToLive(ctx, s1.Lease())
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL != -1 {
		t.Errorf("s1's lease when m2 got the lock: TTL %d, want -1 (expired)", ttl.TTL)
	}
	resp, err := c.Get(ctx, m1.Key())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Errorf("m1's lock key %q still exists after its lease expired", m1.Key())
	}
	if err := m2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// testElection runs an election through campaign, proclaim, resign and a
// failover, and checks that an observer sees each leader value in order.
func testElection(t *testing.T, c *clientv3.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), concurrencyTimeout)
	defer cancel()
	const pfx = "/election/"
	s1, s2, s3, s4 := newSession(t, c), newSession(t, c), newSession(t, c), newSession(t, c)
	e1 := concurrency.NewElection(s1, pfx)
	if err := e1.Campaign(ctx, "v1"); err != nil {
		t.Fatalf("e1 campaign: %v", err)
	}
	observer := concurrency.NewElection(s3, pfx)
	obs := observer.Observe(ctx)
	expectLeader := func(want string) {
		t.Helper()
		for {
			select {
			case resp, ok := <-obs:
				if !ok {
					t.Fatalf("observe ended while waiting for leader value %q", want)
				}
				got := string(resp.Kvs[0].Value)
				if got == want {
					return
				}
				t.Fatalf("observed leader value %q, want %q next", got, want)
			case <-ctx.Done():
				t.Fatalf("leader value %q not observed", want)
			}
		}
	}
	expectLeader("v1")

	if err := e1.Proclaim(ctx, "v1b"); err != nil {
		t.Fatalf("e1 proclaim: %v", err)
	}
	expectLeader("v1b")
	if l, err := observer.Leader(ctx); err != nil || string(l.Kvs[0].Value) != "v1b" {
		t.Fatalf("Leader: got %v, %v; want v1b", l, err)
	}

	e2 := concurrency.NewElection(s2, pfx)
	elected2 := make(chan error, 1)
	go func() { elected2 <- e2.Campaign(ctx, "v2") }()
	select {
	case err := <-elected2:
		t.Fatalf("e2 elected while e1 leads (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := e1.Resign(ctx); err != nil {
		t.Fatalf("e1 resign: %v", err)
	}
	if err := <-elected2; err != nil {
		t.Fatalf("e2 campaign: %v", err)
	}
	expectLeader("v2")
	if err := e1.Proclaim(ctx, "stale"); !errors.Is(err, concurrency.ErrElectionNotLeader) {
		t.Errorf("proclaim after resign: got %v, want %v", err, concurrency.ErrElectionNotLeader)
	}

	// Failover: the leader's session dies; the next candidate takes over
	// once its lease expires.
	e4 := concurrency.NewElection(s4, pfx)
	elected4 := make(chan error, 1)
	go func() { elected4 <- e4.Campaign(ctx, "v4") }()
	select {
	case err := <-elected4:
		t.Fatalf("e4 elected while e2 leads (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	s2.Orphan()
	if err := <-elected4; err != nil {
		t.Fatalf("e4 campaign: %v", err)
	}
	expectLeader("v4")
	if ttl, err := c.TimeToLive(ctx, s2.Lease()); err != nil || ttl.TTL != -1 {
		t.Errorf("e2's lease when e4 was elected: %v, %v; want TTL -1", ttl, err)
	}
	if err := e4.Resign(ctx); err != nil {
		t.Fatalf("e4 resign: %v", err)
	}
	if _, err := observer.Leader(ctx); !errors.Is(err, concurrency.ErrElectionNoLeader) {
		t.Errorf("Leader with no candidates: got %v, want %v", err, concurrency.ErrElectionNoLeader)
	}
}

// testSTM moves money between accounts from several goroutines, at each
// isolation level that validates what it read; the total stays the same
// and no account goes below zero.
func testSTM(t *testing.T, c *clientv3.Client) {
	const accounts, initial, workers, transfers = 5, 100, 4, 10
	for _, iso := range []struct {
		name string
		iso  concurrency.Isolation
	}{
		{"serializable", concurrency.Serializable},
		{"serializable snapshot", concurrency.SerializableSnapshot},
		{"repeatable reads", concurrency.RepeatableReads},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), concurrencyTimeout)
		pfx := fmt.Sprintf("/stm/%s/", iso.name)
		account := func(i int) string { return pfx + strconv.Itoa(i) }
		for i := range accounts {
			if _, err := c.Put(ctx, account(i), strconv.Itoa(initial)); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errc := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for range transfers {
					from := rng.IntN(accounts)
					to := (from + 1 + rng.IntN(accounts-1)) % accounts
					want := 1 + rng.IntN(30)
					_, err := concurrency.NewSTM(c, func(stm concurrency.STM) error {
						fb, err1 := strconv.Atoi(stm.Get(account(from)))
						tb, err2 := strconv.Atoi(stm.Get(account(to)))
						if err := errors.Join(err1, err2); err != nil {
							return err
						}
						amount := min(fb, want)
						stm.Put(account(from), strconv.Itoa(fb-amount))
						stm.Put(account(to), strconv.Itoa(tb+amount))
						return nil
					}, concurrency.WithIsolation(iso.iso), concurrency.WithAbortContext(ctx))
					if err != nil {
						errc <- fmt.Errorf("%s: worker %d: %w", iso.name, w, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		resp, err := c.Get(ctx, pfx, clientv3.WithPrefix())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, kv := range resp.Kvs {
			n, err := strconv.Atoi(string(kv.Value))
			if err != nil {
				t.Fatal(err)
			}
			if n < 0 {
				t.Errorf("%s: account %s is %d, below zero", iso.name, kv.Key, n)
			}
			total += n
		}
		if len(resp.Kvs) != accounts || total != accounts*initial {
			t.Errorf("%s: %d accounts holding %d in total, want %d holding %d", iso.name, len(resp.Kvs), total, accounts, accounts*initial)
		}
	}
}
