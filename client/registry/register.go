package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/internal/backoff"
)

// State is where a Registration stands.
type State int

const (
	// StateRegistered: the instance's key is written under a live lease.
	StateRegistered State = iota + 1
	// StateLost: the lease or the key was lost; the Registration is
	// registering again.
	StateLost
	// StateDeregistered: the Registration stopped and revoked its lease.
	StateDeregistered
)

// String returns "registered", "lost" or "deregistered".
func (s State) String() string {
	switch s {
	case StateRegistered:
		return "registered"
	case StateLost:
		return "lost"
	case StateDeregistered:
		return "deregistered"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is a change in a Registration's state, given to Options.OnStatus.
type Status struct {
	// Service is the instance the Registration keeps registered.
	Service Service
	// State is where the Registration now stands.
	State State
	// Lease is the lease the key is (for StateLost: was) attached to.
	Lease client.LeaseID
	// Revision is, for StateRegistered, the revision of the write.
	Revision int64
	// Err is, for StateLost, what was lost; for StateDeregistered, the
	// revocation's error if it failed.
	Err error
}

// Registration keeps one instance registered; see Registry.Register.
type Registration struct {
	r      *Registry
	svc    Service
	value  string
	ttl    time.Duration
	cancel context.CancelFunc
	done   chan struct{}

	mu struct {
		sync.Mutex
		lease client.LeaseID
		err   error // the final revocation's error
	}
}

// Register writes svc at Key(svc.Name, svc.ID) under a lease of ttl
// (rounded up to whole seconds) and keeps it there until ctx ends or
// Deregister is called, re-registering after any loss (see the package
// documentation). It returns once the first registration succeeded, or
// fails with ErrInvalidService, or with the error of the first attempt
// (bounded by ctx).
//
// A short ttl makes a crashed instance disappear sooner but costs more
// keep-alives: 10 s (one keep-alive every ~3 s) is a common choice.
func (r *Registry) Register(ctx context.Context, svc Service, ttl time.Duration) (*Registration, error) {
	if err := svc.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(svc)
	if err != nil {
		return nil, fmt.Errorf("registry: encode %s/%s: %w", svc.Name, svc.ID, err)
	}
	g := &Registration{r: r, svc: svc, value: string(b), ttl: ttl, done: make(chan struct{})}
	ctx, g.cancel = context.WithCancel(ctx)
	a, err := g.register(ctx)
	if err != nil {
		g.cancel()
		close(g.done)
		return nil, err
	}
	g.status(Status{State: StateRegistered, Lease: a.lease, Revision: a.rev})
	go g.run(ctx, a)
	return g, nil
}

// Service is the registered instance.
func (g *Registration) Service() Service { return g.svc }

// Key is the instance's key.
func (g *Registration) Key() string { return g.r.Key(g.svc.Name, g.svc.ID) }

// Lease is the lease the key is attached to now; it changes with each
// re-registration.
func (g *Registration) Lease() client.LeaseID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.lease
}

// Done is closed when the Registration has stopped and revoked its lease.
func (g *Registration) Done() <-chan struct{} { return g.done }

// Deregister stops the Registration and revokes its lease, deleting the
// key. It waits until that is done or ctx ends, and returns the
// revocation's error, or ctx's (the revocation then goes on in the
// background, bounded by Options.DeregisterTimeout). Deregistering twice
// returns the first result.
func (g *Registration) Deregister(ctx context.Context) error {
	g.cancel()
	select {
	case <-g.done:
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.mu.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attempt is one registration: a lease, its keep-alive and a watch on the
// key.
type attempt struct {
	lease client.LeaseID
	rev   int64
	ka    *client.KeepAlive
	w     *client.Watcher
	gone  chan struct{} // receives when the key is deleted
}

func (a *attempt) stop() {
	if a.ka != nil {
		a.ka.Stop()
	}
	if a.w != nil {
		a.w.Stop()
	}
}

// register grants a lease, writes the key under it and starts keeping both.
func (g *Registration) register(ctx context.Context) (_ *attempt, err error) {
	c := g.r.c
	lease, err := c.LeaseGrant(ctx, g.ttl)
	if err != nil {
		return nil, err
	}
	a := &attempt{lease: lease.ID, gone: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			a.stop()
			g.revoke(a.lease, time.Second)
		}
	}()
	if a.rev, err = c.Put(ctx, g.Key(), g.value, client.WithLease(lease.ID)); err != nil {
		return nil, err
	}
	if a.ka, err = c.LeaseKeepAlive(ctx, lease.ID); err != nil {
		return nil, err
	}
	// Watch the key: if it is deleted while the lease lives (by hand, or a
	// duplicate instance's lease expiring), register again. A put by
	// someone else (a duplicate ID) is left alone rather than fought over.
	a.w, err = c.Watch(ctx, g.Key(), func(ev client.Event) {
		if ev.IsDelete() || (ev.IsReset() && len(ev.State) == 0) {
			select {
			case a.gone <- struct{}{}:
			default:
			}
		} else if ev.KV.Lease != a.lease && !ev.IsReset() {
			g.r.lg.Warn("another instance wrote this instance's key; is its ID a duplicate?",
				"key", g.Key(), "lease", fmt.Sprintf("%x", int64(ev.KV.Lease)))
		}
	}, client.WithStartRevision(a.rev+1))
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.mu.lease = a.lease
	g.mu.Unlock()
	return a, nil
}

func (g *Registration) run(ctx context.Context, a *attempt) {
	defer close(g.done)
	bo := backoff.Backoff{Min: g.r.opts.MinBackoff, Max: g.r.opts.MaxBackoff}
	for {
		var lost error
		select {
		case <-ctx.Done():
		case <-a.ka.Done():
			lost = a.ka.Err()
		case <-a.gone:
			lost = errors.New("registry: the instance's key was deleted")
		}
		a.stop()
		if ctx.Err() != nil || errors.Is(lost, client.ErrClosed) {
			err := g.revoke(a.lease, g.r.opts.DeregisterTimeout)
			g.mu.Lock()
			g.mu.err = err
			g.mu.Unlock()
			g.status(Status{State: StateDeregistered, Lease: a.lease, Err: err})
			return
		}
		g.r.lg.Warn("registration lost; registering again", "key", g.Key(), "error", lost)
		g.status(Status{State: StateLost, Lease: a.lease, Err: lost})
		// The old lease may still live (a deleted key): let it go.
		g.revoke(a.lease, time.Second)

		bo.Reset()
		for {
			var err error
			if a, err = g.register(ctx); err == nil {
				break
			}
			if ctx.Err() != nil || errors.Is(err, client.ErrClosed) {
				g.status(Status{State: StateDeregistered, Err: err})
				return
			}
			g.r.lg.Warn("re-registration failed; retrying", "key", g.Key(), "error", err)
			if !bo.Wait(ctx) {
				g.status(Status{State: StateDeregistered})
				return
			}
		}
		g.r.lg.Info("registered again", "key", g.Key(), "lease", fmt.Sprintf("%x", int64(a.lease)))
		g.status(Status{State: StateRegistered, Lease: a.lease, Revision: a.rev})
	}
}

// revoke revokes a lease within timeout; a lease already gone is fine.
func (g *Registration) revoke(id client.LeaseID, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := g.r.c.LeaseRevoke(ctx, id); err != nil && !errors.Is(err, client.ErrLeaseNotFound) {
		return err
	}
	return nil
}

func (g *Registration) status(s Status) {
	if g.r.opts.OnStatus != nil {
		s.Service = g.svc
		g.r.opts.OnStatus(s)
	}
}
