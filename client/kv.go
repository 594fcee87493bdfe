package client

import (
	"context"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// LeaseID identifies a lease. NoLease (0) means none.
type LeaseID int64

// NoLease is the LeaseID of a key that is not attached to a lease.
const NoLease LeaseID = 0

// KeyValue is one version of a key, as the server stored it. Keys and
// values are arbitrary bytes held in Go strings.
type KeyValue struct {
	// Key is the key's name.
	Key string
	// Value is the key's value (empty for a deletion event).
	Value string
	// CreateRevision is the revision at which the key was created (since
	// it was last deleted). For a lock key it is the fencing token.
	CreateRevision int64
	// ModRevision is the revision of the key's last write (for a deletion
	// event: of the deletion). CompareAndSwap compares against it.
	ModRevision int64
	// Version counts the writes since the key's creation: 1 for a new key,
	// 0 after a deletion.
	Version int64
	// Lease is the lease the key is attached to, or NoLease.
	Lease LeaseID
}

func fromPB(kv *mvccpb.KeyValue) KeyValue {
	return KeyValue{
		Key:            string(kv.Key),
		Value:          string(kv.Value),
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Lease:          LeaseID(kv.Lease),
	}
}

// Range is a set of keys read at one revision, in key order.
type Range struct {
	// Revision is the store revision the read observed. Watching from
	// Revision+1 sees every change after it.
	Revision int64
	// KVs are the keys found, sorted by key.
	KVs []KeyValue
}

// Map indexes the keys by name.
func (r Range) Map() map[string]KeyValue {
	m := make(map[string]KeyValue, len(r.KVs))
	for _, kv := range r.KVs {
		m[kv.Key] = kv
	}
	return m
}

// DeleteResult is what Delete and DeletePrefix did.
type DeleteResult struct {
	// Deleted is the number of keys deleted.
	Deleted int64
	// Revision is the store revision after the delete (unchanged when
	// nothing was deleted).
	Revision int64
}

// A PutOption changes how Put, PutJSON and CompareAndSwap write.
type PutOption func(*putOptions)

type putOptions struct{ lease LeaseID }

// WithLease attaches the key to a lease: it is deleted when the lease
// expires or is revoked.
func WithLease(id LeaseID) PutOption { return func(o *putOptions) { o.lease = id } }

func etcdPutOpts(opts []PutOption) []clientv3.OpOption {
	var o putOptions
	for _, f := range opts {
		f(&o)
	}
	if o.lease != NoLease {
		return []clientv3.OpOption{clientv3.WithLease(clientv3.LeaseID(o.lease))}
	}
	return nil
}

// Put sets key to value and returns the revision of the write (the key's
// new ModRevision).
func (c *Client) Put(ctx context.Context, key, value string, opts ...PutOption) (int64, error) {
	resp, err := c.etcd.Put(ctx, key, value, etcdPutOpts(opts)...)
	if err != nil {
		return 0, c.wrap("put "+key, err)
	}
	return resp.Header.Revision, nil
}

// Get reads key's current version. It fails with ErrNotFound if the key
// does not exist.
func (c *Client) Get(ctx context.Context, key string) (KeyValue, error) {
	resp, err := c.etcd.Get(ctx, key)
	if err != nil {
		return KeyValue{}, c.wrap("get "+key, err)
	}
	if len(resp.Kvs) == 0 {
		return KeyValue{}, wrapNotFound(key)
	}
	return fromPB(resp.Kvs[0]), nil
}

// getPageSize is how many keys GetPrefix asks for per request.
const getPageSize = 1000

// GetPrefix reads every key that starts with prefix ("" means all keys), as
// of one revision, in key order. Large ranges are read in pages of 1000 at
// that revision, so the result is consistent and no response grows past the
// message size limits.
func (c *Client) GetPrefix(ctx context.Context, prefix string) (Range, error) {
	end := clientv3.GetPrefixRangeEnd(prefix)
	if prefix == "" {
		prefix, end = "\x00", "\x00"
	}
	var out Range
	key := prefix
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(getPageSize),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if out.Revision != 0 {
			opts = append(opts, clientv3.WithRev(out.Revision))
		}
		resp, err := c.etcd.Get(ctx, key, opts...)
		if err != nil {
			return Range{}, c.wrap("get prefix "+prefix, err)
		}
		if out.Revision == 0 {
			out.Revision = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			out.KVs = append(out.KVs, fromPB(kv))
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Exists reports whether key exists, without reading its value.
func (c *Client) Exists(ctx context.Context, key string) (bool, error) {
	resp, err := c.etcd.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, c.wrap("exists "+key, err)
	}
	return resp.Count > 0, nil
}

// Delete deletes key. Deleting a missing key is not an error: Deleted is 0.
func (c *Client) Delete(ctx context.Context, key string) (DeleteResult, error) {
	resp, err := c.etcd.Delete(ctx, key)
	if err != nil {
		return DeleteResult{}, c.wrap("delete "+key, err)
	}
	return DeleteResult{Deleted: resp.Deleted, Revision: resp.Header.Revision}, nil
}

// DeletePrefix deletes every key that starts with prefix, in one revision.
// The empty prefix is refused with ErrEmptyPrefix (it would delete every
// key); use Etcd().Delete with clientv3.WithPrefix for that.
func (c *Client) DeletePrefix(ctx context.Context, prefix string) (DeleteResult, error) {
	if prefix == "" {
		return DeleteResult{}, ErrEmptyPrefix
	}
	resp, err := c.etcd.Delete(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return DeleteResult{}, c.wrap("delete prefix "+prefix, err)
	}
	return DeleteResult{Deleted: resp.Deleted, Revision: resp.Header.Revision}, nil
}
