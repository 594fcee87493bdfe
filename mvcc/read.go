package mvcc

import (
	"bytes"
	"context"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// RangeOptions are the options of one range read, as etcd's mvcc.RangeOptions.
type RangeOptions struct {
	// Limit is the most key-values returned; 0 means no limit.
	Limit int64
	// Rev is the revision to read at; 0 or less means the current one.
	Rev int64
	// Count asks for the count only, no key-values.
	Count bool
	// KeysOnly leaves the values out (they are never copied).
	KeysOnly bool
}

// RangeResult is the outcome of a range read.
type RangeResult struct {
	KVs []*mvccpb.KeyValue
	// Count is the number of keys in the range at the read revision,
	// regardless of Limit.
	Count int
	// Rev is the store revision the read was served at (the current one,
	// not Rev of the options, as in etcd).
	Rev int64
}

// ReadTxn reads from a snapshot of the store.
type ReadTxn struct {
	snap       *pebble.Snapshot
	sh         *sharedSnap // snap's owner
	rev        int64
	compactRev int64
}

// Rev is the revision of the snapshot.
func (t *ReadTxn) Rev() int64 { return t.rev }

// FirstRev is the oldest readable revision (the compacted revision).
func (t *ReadTxn) FirstRev() int64 { return t.compactRev }

// Range reads the keys in [key, end) at ro.Rev. end == nil reads key
// alone; an empty non-nil end reads every key >= key. It returns
// ErrFutureRev for a revision after the current one and ErrCompacted for
// one before the compacted revision.
func (t *ReadTxn) Range(ctx context.Context, key, end []byte, ro RangeOptions) (*RangeResult, error) {
	return rangeKeys(ctx, t.snap, key, end, t.rev, t.compactRev, ro)
}

// End releases the snapshot. It must be called once.
func (t *ReadTxn) End() { t.sh.release() }

func rangeKeys(ctx context.Context, r pebble.Reader, key, end []byte, curRev, compactRev int64, ro RangeOptions) (*RangeResult, error) {
	res := &RangeResult{}
	limit := ro.Limit
	if limit <= 0 {
		limit = math.MaxInt64
	}
	if ro.Count {
		limit = 0
	}
	rev, err := scanKeys(ctx, r, key, end, curRev, compactRev, ScanOptions{Rev: ro.Rev}, func(kv *KeyValueRef) bool {
		res.Count++
		if int64(len(res.KVs)) < limit {
			res.KVs = append(res.KVs, kv.Clone(ro.KeysOnly))
		}
		return true
	})
	res.Rev = rev
	switch err {
	case nil:
		return res, nil
	case ErrFutureRev, ErrCompacted:
		return &RangeResult{Count: -1, Rev: rev}, err
	}
	return nil, err
}

// Clone copies the key-value out of storage memory, without the value if
// keysOnly.
func (kv *KeyValueRef) Clone(keysOnly bool) *mvccpb.KeyValue {
	out := &mvccpb.KeyValue{
		Key:            bytes.Clone(kv.Key),
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Lease:          kv.Lease,
	}
	if !keysOnly {
		out.Value = bytes.Clone(kv.Value)
	}
	return out
}
