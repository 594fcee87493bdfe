package api

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairn-kv/cairn/server/api/v3concpb"
)

// lockServer is etcd's v3lockpb.Lock: a concurrency.Mutex per call, over
// the member's client to itself. Errors are those the client returns, as
// etcd's (its clients see their text with codes.Unknown).
type lockServer struct {
	self *SelfClient
}

// Lock waits until the caller holds the lock, under req.Lease (a new
// 60-second lease when zero, as concurrency.NewSession grants), and returns
// the key that holds it. The lease is not kept alive: that is the caller's
// job, as with etcd.
func (ls *lockServer) Lock(ctx context.Context, req *v3concpb.LockRequest) (*v3concpb.LockResponse, error) {
	ctx = forwardToken(ctx)
	s, err := session(ctx, ls.self, req.Lease)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(s, string(req.Name))
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return &v3concpb.LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

// Unlock deletes the key that holds a lock; a missing key is no error.
func (ls *lockServer) Unlock(ctx context.Context, req *v3concpb.UnlockRequest) (*v3concpb.UnlockResponse, error) {
	ctx = forwardToken(ctx)
	c, err := ls.self.get()
	if err != nil {
		return nil, err
	}
	resp, err := c.Delete(ctx, string(req.Key))
	if err != nil {
		return nil, err
	}
	return &v3concpb.UnlockResponse{Header: resp.Header}, nil
}

// session is a concurrency session under lease (granted when zero) that
// lives no longer than ctx and never revokes its lease, as etcd's.
func session(ctx context.Context, self *SelfClient, lease int64) (*concurrency.Session, error) {
	c, err := self.get()
	if err != nil {
		return nil, err
	}
	s, err := concurrency.NewSession(c, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	s.Orphan()
	return s, nil
}
