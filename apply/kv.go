package apply

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/mvcc"
)

// ErrKeyNotFound is returned by a Put with ignore_value or ignore_lease on a
// key that does not exist.
var ErrKeyNotFound = errors.New("apply: key not found")

// ReadView is a consistent view of the store at one revision.
type ReadView interface {
	Range(ctx context.Context, key, end []byte, ro mvcc.RangeOptions) (*mvcc.RangeResult, error)
	// Scan visits the live keys of a range without copying them; see
	// mvcc.ReadTxn.Scan.
	Scan(ctx context.Context, key, end []byte, so mvcc.ScanOptions, fn mvcc.ScanFunc) (int64, error)
	// Rev is the view's revision; FirstRev the oldest readable one.
	Rev() int64
	FirstRev() int64
}

// WriteView is a write transaction: a ReadView that also writes.
type WriteView interface {
	ReadView
	Put(key, value []byte, lease int64) (rev, prevLease int64, err error)
	// DeleteRange deletes [key, end); the key-values it returns carry
	// their values only if withValues is set.
	DeleteRange(ctx context.Context, key, end []byte, withValues bool) ([]*mvccpb.KeyValue, int64, error)
	Changes() int
}

// LeaseLookup tells whether a lease exists.
type LeaseLookup interface {
	LeaseExists(id int64) bool
}

// noLeases is the lookup while Cairn has no lease store: no lease exists.
type noLeases struct{}

func (noLeases) LeaseExists(int64) bool { return false }

// gteRange turns a range_end of "\x00" into the empty non-nil slice that
// mvcc reads as "to the end of the keyspace", as etcd's mkGteRange.
func gteRange(end []byte) []byte {
	if len(end) == 1 && end[0] == 0 {
		return []byte{}
	}
	if len(end) == 0 {
		return nil
	}
	return end
}

// checkPut runs the checks etcd makes before a Put writes anything: the
// lease first, then the key that ignore_value/ignore_lease need (etcd 3.7's
// txn checkPut; 3.6 checked the key first inside a txn).
func checkPut(ctx context.Context, rv ReadView, leases LeaseLookup, r *pb.PutRequest) error {
	if r.Lease != lease.NoLease && !leases.LeaseExists(r.Lease) {
		return lease.ErrLeaseNotFound
	}
	if r.IgnoreValue || r.IgnoreLease {
		rr, err := rv.Range(ctx, r.Key, nil, mvcc.RangeOptions{})
		if err != nil {
			return err
		}
		if len(rr.KVs) == 0 {
			return ErrKeyNotFound
		}
	}
	return nil
}

func put(ctx context.Context, tw WriteView, r *pb.PutRequest) (*pb.PutResponse, error) {
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{}}
	val, leaseID := r.Value, r.Lease
	if r.IgnoreValue || r.IgnoreLease || r.PrevKv {
		rr, err := tw.Range(ctx, r.Key, nil, mvcc.RangeOptions{})
		if err != nil {
			return nil, err
		}
		if len(rr.KVs) == 0 && (r.IgnoreValue || r.IgnoreLease) {
			return nil, ErrKeyNotFound
		}
		if len(rr.KVs) > 0 {
			if r.IgnoreValue {
				val = rr.KVs[0].Value
			}
			if r.IgnoreLease {
				leaseID = rr.KVs[0].Lease
			}
			if r.PrevKv {
				resp.PrevKv = rr.KVs[0]
			}
		}
	}
	rev, _, err := tw.Put(r.Key, val, leaseID)
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = rev
	return resp, nil
}

func deleteRange(ctx context.Context, tw WriteView, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	// Deleted values are loaded only for prev_kv: deleting many large
	// values costs the apply loop their keys, not their values.
	deleted, rev, err := tw.DeleteRange(ctx, r.Key, gteRange(r.RangeEnd), r.PrevKv)
	if err != nil {
		return nil, err
	}
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{Revision: rev}, Deleted: int64(len(deleted))}
	if r.PrevKv {
		resp.PrevKvs = deleted
	}
	return resp, nil
}
