package client

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// session is a concurrency.Session owned by one Lock or Leadership: its
// lease is granted under the caller's context, kept alive until release,
// and its loss is reported on lost instead of going unnoticed.
type session struct {
	c        *Client
	s        *concurrency.Session
	cancel   context.CancelFunc // ends the keep-alives
	lost     chan struct{}      // closed if the session ends before release
	done     chan struct{}      // closed when the loss watcher exits
	released atomic.Bool
}

func (c *Client) newSession(ctx context.Context, ttl time.Duration) (*session, error) {
	lease, err := c.etcd.Grant(ctx, ttlSeconds(ttl))
	if err != nil {
		return nil, c.wrap("grant session lease", err)
	}
	// The session outlives ctx, which only bounds acquisition.
	lctx, cancel := context.WithCancel(context.Background())
	s, err := concurrency.NewSession(c.etcd, concurrency.WithLease(lease.ID),
		concurrency.WithTTL(int(lease.TTL)), concurrency.WithContext(lctx))
	if err != nil {
		cancel()
		c.revokeQuietly(lease.ID)
		return nil, c.wrap("start session", err)
	}
	ss := &session{c: c, s: s, cancel: cancel, lost: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ss.done)
		<-s.Done()
		if !ss.released.Load() {
			close(ss.lost)
		}
	}()
	return ss, nil
}

func (c *Client) revokeQuietly(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = c.etcd.Revoke(ctx, id)
}

// isLost reports whether the session ended before release.
func (s *session) isLost() bool {
	select {
	case <-s.lost:
		return true
	default:
		return false
	}
}

// release stops the keep-alives and revokes the lease, which deletes every
// key the session holds. A lease already gone is not an error.
func (s *session) release(ctx context.Context) error {
	s.released.Store(true)
	s.s.Orphan()
	<-s.done
	defer s.cancel()
	_, err := s.c.etcd.Revoke(ctx, s.s.Lease())
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return err
	}
	return nil
}

// contextUntilLost returns a context that ends with ctx or when the session
// is lost, whichever comes first. Call stop when done with it.
func (s *session) contextUntilLost(ctx context.Context) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-s.lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(); <-done }
}
