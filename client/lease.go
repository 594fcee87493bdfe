package client

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lease is a granted lease.
type Lease struct {
	// ID identifies the lease in WithLease, LeaseKeepAlive and the rest.
	ID LeaseID
	// TTL is the time to live the server granted: the requested one
	// rounded up to whole seconds, and raised to the server's minimum
	// (1.5 election timeouts; 2 s by default).
	TTL time.Duration
}

// LeaseInfo is a lease's state as LeaseInfo reads it.
type LeaseInfo struct {
	// ID is the lease.
	ID LeaseID
	// TTL is the time left before the lease expires, in whole seconds.
	TTL time.Duration
	// GrantedTTL is the TTL the lease was granted with, in whole seconds.
	GrantedTTL time.Duration
	// Keys are the keys attached to the lease.
	Keys []string
}

// ttlSeconds rounds ttl up to whole seconds, at least 1.
func ttlSeconds(ttl time.Duration) int64 {
	s := int64(math.Ceil(ttl.Seconds()))
	return max(s, 1)
}

// LeaseGrant creates a lease that expires ttl after its last keep-alive.
// ttl is rounded up to whole seconds; the server may raise it further (see
// Lease.TTL). Attach keys with WithLease.
func (c *Client) LeaseGrant(ctx context.Context, ttl time.Duration) (Lease, error) {
	resp, err := c.etcd.Grant(ctx, ttlSeconds(ttl))
	if err != nil {
		return Lease{}, c.wrap("lease grant", err)
	}
	return Lease{ID: LeaseID(resp.ID), TTL: time.Duration(resp.TTL) * time.Second}, nil
}

// LeaseRevoke revokes a lease and deletes the keys attached to it, in one
// revision. It fails with ErrLeaseNotFound if the lease is gone already.
func (c *Client) LeaseRevoke(ctx context.Context, id LeaseID) error {
	_, err := c.etcd.Revoke(ctx, clientv3.LeaseID(id))
	return c.wrap(fmt.Sprintf("lease revoke %x", int64(id)), err)
}

// LeaseKeepAliveOnce renews a lease once and returns its new TTL. It fails
// with ErrLeaseNotFound if the lease has expired or was revoked.
func (c *Client) LeaseKeepAliveOnce(ctx context.Context, id LeaseID) (time.Duration, error) {
	resp, err := c.etcd.KeepAliveOnce(ctx, clientv3.LeaseID(id))
	if err != nil {
		return 0, c.wrap(fmt.Sprintf("lease keep-alive %x", int64(id)), err)
	}
	return time.Duration(resp.TTL) * time.Second, nil
}

// LeaseInfo reads a lease's remaining TTL and attached keys. It fails with
// ErrLeaseNotFound if the lease has expired or was revoked.
func (c *Client) LeaseInfo(ctx context.Context, id LeaseID) (LeaseInfo, error) {
	op := fmt.Sprintf("lease info %x", int64(id))
	resp, err := c.etcd.TimeToLive(ctx, clientv3.LeaseID(id), clientv3.WithAttachedKeys())
	if err != nil {
		return LeaseInfo{}, c.wrap(op, err)
	}
	if resp.TTL < 0 {
		return LeaseInfo{}, fmt.Errorf("client: %s: %w", op, ErrLeaseNotFound)
	}
	info := LeaseInfo{ID: id, TTL: time.Duration(resp.TTL) * time.Second, GrantedTTL: time.Duration(resp.GrantedTTL) * time.Second}
	for _, k := range resp.Keys {
		info.Keys = append(info.Keys, string(k))
	}
	return info, nil
}

// KeepAlive keeps one lease alive in the background; see
// Client.LeaseKeepAlive.
type KeepAlive struct {
	id     LeaseID
	cancel context.CancelFunc
	done   chan struct{}

	mu struct {
		sync.Mutex
		ttl time.Duration // from the last response
		err error         // why it stopped
	}
}

// LeaseKeepAlive renews the lease about every TTL/3 until ctx is done, Stop
// is called, or the lease is lost. It returns once the first renewal has
// succeeded, or fails with ErrLeaseNotFound if the lease is already gone
// (or with ctx's error).
//
// Keep-alives survive disconnects: clientv3 retries them for as long as
// the lease could still be alive. When the lease is lost (expired, revoked,
// or no renewal got through for a whole TTL) Done is closed and Err wraps
// ErrLeaseLost. Watch Done: anything held under the lease is gone.
func (c *Client) LeaseKeepAlive(ctx context.Context, id LeaseID) (*KeepAlive, error) {
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch, err := c.etcd.KeepAlive(kctx, clientv3.LeaseID(id))
	if err != nil {
		cancel()
		return nil, c.wrap(fmt.Sprintf("lease keep-alive %x", int64(id)), err)
	}
	ka := &KeepAlive{id: id, cancel: cancel, done: make(chan struct{})}
	select {
	case resp, ok := <-ch:
		if !ok {
			cancel()
			if c.closed() {
				return nil, fmt.Errorf("client: lease keep-alive %x: %w", int64(id), ErrClosed)
			}
			return nil, fmt.Errorf("client: lease keep-alive %x: %w", int64(id), ErrLeaseNotFound)
		}
		ka.mu.ttl = time.Duration(resp.TTL) * time.Second
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	go ka.run(ctx, c, ch)
	return ka, nil
}

func (ka *KeepAlive) run(ctx context.Context, c *Client, ch <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(ka.done)
	defer ka.cancel()
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				err := fmt.Errorf("client: lease %x: %w", int64(ka.id), ErrLeaseLost)
				switch {
				case ctx.Err() != nil:
					err = ctx.Err()
				case c.closed():
					err = fmt.Errorf("client: lease %x: %w", int64(ka.id), ErrClosed)
				}
				ka.finish(err)
				return
			}
			ka.mu.Lock()
			ka.mu.ttl = time.Duration(resp.TTL) * time.Second
			ka.mu.Unlock()
		case <-ctx.Done():
			ka.finish(ctx.Err())
			return
		}
	}
}

func (ka *KeepAlive) finish(err error) {
	ka.mu.Lock()
	if ka.mu.err == nil {
		ka.mu.err = err
	}
	ka.mu.Unlock()
}

// ID is the lease kept alive.
func (ka *KeepAlive) ID() LeaseID { return ka.id }

// TTL is the time to live the server reported on the last renewal.
func (ka *KeepAlive) TTL() time.Duration {
	ka.mu.Lock()
	defer ka.mu.Unlock()
	return ka.mu.ttl
}

// Done is closed when the keep-alives stop.
func (ka *KeepAlive) Done() <-chan struct{} { return ka.done }

// Err says why the keep-alives stopped: an error wrapping ErrLeaseLost if
// the lease was lost, ErrClosed if the Client was closed, context.Canceled
// after Stop, or ctx's error. It is nil while they run.
func (ka *KeepAlive) Err() error {
	ka.mu.Lock()
	defer ka.mu.Unlock()
	return ka.mu.err
}

// Stop ends the keep-alives (the lease then expires after its TTL unless
// revoked) and waits for them to stop.
func (ka *KeepAlive) Stop() {
	ka.finish(context.Canceled)
	ka.cancel()
	<-ka.done
}
