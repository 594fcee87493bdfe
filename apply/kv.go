package apply

import (
	"bytes"
	"context"
	"errors"
	"sort"

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

// Range serves a RangeRequest from rv with etcd's rules for limit, filters,
// sorting and keys_only (etcd's rpc.proto RangeRequest).
func Range(ctx context.Context, rv ReadView, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	limit := r.Limit
	if r.SortOrder != pb.RangeRequest_NONE ||
		r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		// Filtered and sorted reads fetch everything, then cut.
		limit = 0
	}
	if limit > 0 {
		limit++ // one more, to tell whether there is more
	}
	rr, err := rv.Range(ctx, r.Key, gteRange(r.RangeEnd), mvcc.RangeOptions{Limit: limit, Rev: r.Revision, Count: r.CountOnly})
	if err != nil {
		return nil, err
	}
	kvs := rr.KVs
	if r.MaxModRevision != 0 {
		kvs = prune(kvs, func(kv *mvccpb.KeyValue) bool { return kv.ModRevision > r.MaxModRevision })
	}
	if r.MinModRevision != 0 {
		kvs = prune(kvs, func(kv *mvccpb.KeyValue) bool { return kv.ModRevision < r.MinModRevision })
	}
	if r.MaxCreateRevision != 0 {
		kvs = prune(kvs, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision > r.MaxCreateRevision })
	}
	if r.MinCreateRevision != 0 {
		kvs = prune(kvs, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision < r.MinCreateRevision })
	}
	sortKVs(kvs, r.SortOrder, r.SortTarget)
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rr.Rev}, Count: int64(rr.Count)}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	resp.Kvs = make([]*mvccpb.KeyValue, len(kvs))
	for i, kv := range kvs {
		if r.KeysOnly {
			kv = keysOnly(kv, r.SortTarget)
		}
		resp.Kvs[i] = kv
	}
	return resp, nil
}

// keysOnly is what a keys-only Range returns of kv. etcd 3.7 serves such a
// read from its index (mvcc FastKeysOnly), which holds no lease: the answer
// has key, create_revision, mod_revision and version only. Sorted by value,
// etcd reads the values and keeps the lease (etcd 3.6 always kept it).
func keysOnly(kv *mvccpb.KeyValue, target pb.RangeRequest_SortTarget) *mvccpb.KeyValue {
	out := &mvccpb.KeyValue{Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
	if target == pb.RangeRequest_VALUE {
		out.Lease = kv.Lease
	}
	return out
}

func prune(kvs []*mvccpb.KeyValue, drop func(*mvccpb.KeyValue) bool) []*mvccpb.KeyValue {
	out := kvs[:0]
	for i := range kvs {
		if !drop(kvs[i]) {
			out = append(out, kvs[i])
		}
	}
	return out
}

// sortKVs sorts as etcd does. Results come in ascending key order already,
// so NONE with a non-key target means ASCEND and ASCEND by key is a no-op.
// sort.Sort (not a stable sort) is deliberate: ties come out in the same
// order as etcd's.
func sortKVs(kvs []*mvccpb.KeyValue, order pb.RangeRequest_SortOrder, target pb.RangeRequest_SortTarget) {
	if target != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	} else if target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND {
		order = pb.RangeRequest_NONE
	}
	if order == pb.RangeRequest_NONE {
		return
	}
	var less func(a, b *mvccpb.KeyValue) bool
	switch target {
	case pb.RangeRequest_KEY:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }
	case pb.RangeRequest_VERSION:
		less = func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version }
	case pb.RangeRequest_CREATE:
		less = func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision }
	case pb.RangeRequest_MOD:
		less = func(a, b *mvccpb.KeyValue) bool { return a.ModRevision < b.ModRevision }
	case pb.RangeRequest_VALUE:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 }
	default:
		return
	}
	var s sort.Interface = kvSorter{kvs, less}
	if order == pb.RangeRequest_DESCEND {
		s = sort.Reverse(s)
	}
	sort.Sort(s)
}

type kvSorter struct {
	kvs  []*mvccpb.KeyValue
	less func(a, b *mvccpb.KeyValue) bool
}

func (s kvSorter) Len() int           { return len(s.kvs) }
func (s kvSorter) Swap(i, j int)      { s.kvs[i], s.kvs[j] = s.kvs[j], s.kvs[i] }
func (s kvSorter) Less(i, j int) bool { return s.less(s.kvs[i], s.kvs[j]) }

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
