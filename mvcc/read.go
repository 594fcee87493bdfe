package mvcc

import (
	"bytes"
	"context"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/storage"
)

// RangeOptions are the options of one range read, as etcd's mvcc.RangeOptions.
type RangeOptions struct {
	// Limit is the most key-values returned; 0 means no limit.
	Limit int64
	// Rev is the revision to read at; 0 or less means the current one.
	Rev int64
	// Count asks for the count only, no key-values.
	Count bool
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

// End releases the snapshot.
func (t *ReadTxn) End() { t.snap.Close() }

func rangeKeys(ctx context.Context, r pebble.Reader, key, end []byte, curRev, compactRev int64, ro RangeOptions) (*RangeResult, error) {
	rev := ro.Rev
	if rev > curRev {
		return &RangeResult{Count: -1, Rev: curRev}, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	if rev < compactRev {
		return &RangeResult{Count: -1}, ErrCompacted
	}
	res := &RangeResult{Rev: curRev}
	limit := ro.Limit
	if ro.Count || limit <= 0 {
		limit = math.MaxInt64
	}
	if ro.Count {
		limit = 0
	}
	emit := func(k []byte, rec record, modRev int64) {
		res.Count++
		if int64(len(res.KVs)) < limit {
			res.KVs = append(res.KVs, &mvccpb.KeyValue{
				Key:            bytes.Clone(k),
				CreateRevision: rec.createRevision,
				ModRevision:    modRev,
				Version:        rec.version,
				Lease:          rec.lease,
				Value:          bytes.Clone(rec.value),
			})
		}
	}
	var err error
	if rev == curRev {
		err = rangeLatest(ctx, r, key, end, emit)
	} else {
		err = rangeAt(ctx, r, key, end, rev, emit)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

type emitFunc func(key []byte, rec record, modRev int64)

// rangeLatest reads the live versions from the 'l' keyspace.
func rangeLatest(ctx context.Context, r pebble.Reader, key, end []byte, emit emitFunc) error {
	if end == nil {
		v, ok, err := storage.GetCopy(r, latestKey(nil, key))
		if err != nil || !ok {
			return err
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return err
		}
		emit(key, rec, rec.modRevision)
		return nil
	}
	if len(end) > 0 && bytes.Compare(key, end) >= 0 {
		return nil
	}
	upper := storage.KeyspaceEnd(storage.KeyspaceLatest)
	if len(end) > 0 {
		upper = latestBound(end)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: latestBound(key), UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, err := decodeLatestKey(it.Key())
		if err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return err
		}
		emit(k, rec, rec.modRevision)
	}
	return it.Error()
}

// rangeAt reads, for each key in range, its newest version at or below rev
// from the 'k' keyspace.
func rangeAt(ctx context.Context, r pebble.Reader, key, end []byte, rev int64, emit emitFunc) error {
	if len(end) > 0 && bytes.Compare(key, end) >= 0 {
		return nil
	}
	lower := versionBound(key)
	upper := storage.KeyspaceEnd(storage.KeyspaceVersions)
	if end == nil {
		lower = versionKeyPrefix(nil, key)
		upper = nextKeyPrefix(lower)
	} else if len(end) > 0 {
		upper = versionBound(end)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	ok := it.First()
	for ok {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, _, _, err := decodeVersionKey(it.Key())
		if err != nil {
			return err
		}
		prefix := versionKeyPrefix(nil, k)
		if it.SeekGE(versionKey(nil, k, rev, math.MaxInt64)) && bytes.HasPrefix(it.Key(), prefix) {
			_, modRev, _, err := decodeVersionKey(it.Key())
			if err != nil {
				return err
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			rec, err := decodeRecord(v)
			if err != nil {
				return err
			}
			if !rec.tombstone {
				emit(k, rec, modRev)
			}
		}
		ok = it.SeekGE(nextKeyPrefix(prefix))
	}
	return it.Error()
}

// nextKeyPrefix turns 'k' esc(key) (ending in the terminator 0x00 0x01) into
// the first storage key after every version of key: the terminator's last
// byte becomes 0x02, which no escaped key contains after 0x00.
func nextKeyPrefix(prefix []byte) []byte {
	out := bytes.Clone(prefix)
	out[len(out)-1] = 2
	return out
}
