package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Lock is a held distributed lock (a clientv3/concurrency Mutex on its own
// session). Release it with Unlock.
//
// A lock is held under a lease, and a lease can be lost: a long GC pause, a
// partition or an overloaded server can let it expire while the holder
// still believes it holds the lock, and another process then acquires it.
// Lost reports the loss, but only after the fact. As Jepsen showed for
// etcd (jepsen.io/analyses/etcd-3.4.3), such locks are unsafe for mutual
// exclusion on their own: guard every write the lock protects with the
// fencing token, e.g. in the same Txn:
//
//	etcd.Txn(ctx).If(lk.IsOwner()).Then(clientv3.OpPut(k, v)).Commit()
//
// or by passing FencingToken to the protected resource, which rejects
// tokens older than the newest it has seen.
type Lock struct {
	c    *Client
	s    *session
	m    *concurrency.Mutex
	name string

	mu struct {
		sync.Mutex
		unlocked bool
	}
}

// Lock acquires the lock called name, waiting while another session holds
// it, until ctx is done. The lock is held under a lease of ttl (rounded up
// to whole seconds, at least the server's minimum) that is kept alive until
// Unlock; if its holder dies, the lock frees itself ttl later.
//
// The lock's keys are name + "/" + the lease ID in hex, as clientv3's
// concurrency.Mutex and `etcdctl lock` write them, so it interoperates with
// both. lk.Unlock is the unlock func(context.Context) error.
//
// Lock fails with ctx's error if ctx ends first (leaving no key behind),
// and with ErrLeaseLost if the session's lease was lost while waiting.
func (c *Client) Lock(ctx context.Context, name string, ttl time.Duration) (*Lock, error) {
	return c.lock(ctx, name, ttl, false)
}

// TryLock is Lock that does not wait: it fails with ErrLocked when another
// session holds the lock.
func (c *Client) TryLock(ctx context.Context, name string, ttl time.Duration) (*Lock, error) {
	return c.lock(ctx, name, ttl, true)
}

func (c *Client) lock(ctx context.Context, name string, ttl time.Duration, try bool) (*Lock, error) {
	s, err := c.newSession(ctx, ttl)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(s.s, name)
	// Stop waiting if our own lease is lost meanwhile.
	lctx, stop := s.contextUntilLost(ctx)
	if try {
		err = m.TryLock(lctx)
	} else {
		err = m.Lock(lctx)
	}
	stop()
	if err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.release(rctx)
		if errors.Is(err, concurrency.ErrSessionExpired) || (s.isLost() && ctx.Err() == nil) {
			return nil, fmt.Errorf("client: lock %s: %w", name, ErrLeaseLost)
		}
		return nil, c.wrap("lock "+name, err)
	}
	return &Lock{c: c, s: s, m: m, name: name}, nil
}

// Unlock releases the lock by revoking its lease (which deletes its key).
// It fails with ErrUnlocked if called twice, with an error wrapping
// ErrLeaseLost if the lock had been lost before (the critical section was
// not protected to its end), or with the revoke's error, in which case the
// lock frees itself when the lease expires.
func (l *Lock) Unlock(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.unlocked {
		return fmt.Errorf("client: unlock %s: %w", l.name, ErrUnlocked)
	}
	l.mu.unlocked = true
	wasLost := l.s.isLost()
	if err := l.s.release(ctx); err != nil {
		return l.c.wrap("unlock "+l.name, err)
	}
	if wasLost {
		return fmt.Errorf("client: unlock %s: %w", l.name, ErrLeaseLost)
	}
	return nil
}

// Lost is closed if the lock's lease is lost before Unlock: from then on
// another session may hold the lock. It is never closed by Unlock.
func (l *Lock) Lost() <-chan struct{} { return l.s.lost }

// Key is the key that holds the lock: name + "/" + lease ID in hex.
func (l *Lock) Key() string { return l.m.Key() }

// Lease is the lease the lock is held under.
func (l *Lock) Lease() LeaseID { return LeaseID(l.s.s.Lease()) }

// FencingToken is the lock key's create revision. It grows with every
// acquisition of the lock, so a resource that remembers the largest token
// it has seen can refuse a stale holder.
func (l *Lock) FencingToken() int64 {
	cmp := l.m.IsOwner()
	return cmp.GetCompare().GetCreateRevision()
}

// IsOwner is a Txn comparison that holds only while this lock is held
// (its key exists with this FencingToken as create revision).
func (l *Lock) IsOwner() clientv3.Cmp { return l.m.IsOwner() }
