package client

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Sentinel errors, matched with errors.Is. Errors from the server are
// returned as clientv3 gives them (rpctypes errors and gRPC statuses),
// wrapped with the operation that failed.
var (
	// ErrClosed is returned by calls on, and ends watchers of, a closed Client.
	ErrClosed = errors.New("client: closed")

	// ErrNotFound is returned by Get and GetJSON when the key does not exist.
	ErrNotFound = errors.New("client: key not found")
	// ErrEmptyPrefix is returned by DeletePrefix for the empty prefix,
	// which would delete every key.
	ErrEmptyPrefix = errors.New("client: empty prefix")

	// ErrLeaseNotFound is returned by lease calls on a lease that expired,
	// was revoked, or never existed. It also matches rpctypes.ErrLeaseNotFound.
	ErrLeaseNotFound = errors.New("client: lease not found")
	// ErrLeaseLost is the reason a KeepAlive, Lock or Leadership reports
	// when its lease stopped being kept alive before it was released: the
	// lease expired or was revoked, or no keep-alive got through for a
	// whole TTL.
	ErrLeaseLost = errors.New("client: lease lost")

	// ErrLocked is returned by TryLock when another session holds the lock.
	ErrLocked = errors.New("client: lock held by another session")
	// ErrUnlocked is returned by Unlock on a lock already released.
	ErrUnlocked = errors.New("client: lock already released")

	// ErrNoLeader is returned by Leader when nobody holds the election.
	ErrNoLeader = errors.New("client: election has no leader")
	// ErrNotLeader is returned by Proclaim when the campaign no longer
	// holds the election (it resigned, or its lease was lost).
	ErrNotLeader = errors.New("client: not the election leader")
)

// wrap adds the operation to err and translates the errors that have a
// sentinel here. Context errors are returned as they are, so that callers
// can compare them with ==.
func (c *Client) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		if c.closed() {
			return fmt.Errorf("client: %s: %w", op, ErrClosed)
		}
		return err
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return fmt.Errorf("client: %s: %w (%w)", op, ErrLeaseNotFound, err)
	case errors.Is(err, concurrency.ErrLocked):
		return fmt.Errorf("client: %s: %w", op, ErrLocked)
	case errors.Is(err, concurrency.ErrElectionNotLeader):
		return fmt.Errorf("client: %s: %w", op, ErrNotLeader)
	case errors.Is(err, concurrency.ErrElectionNoLeader):
		return fmt.Errorf("client: %s: %w", op, ErrNoLeader)
	}
	if c.closed() {
		return fmt.Errorf("client: %s: %w (%w)", op, ErrClosed, err)
	}
	return fmt.Errorf("client: %s: %w", op, err)
}

func wrapNotFound(key string) error { return fmt.Errorf("%w: %q", ErrNotFound, key) }
