package mvcc

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/storage"
)

// Events reads the events of revisions from..to (inclusive) in revision
// order, for watchers catching up. It stops after the revision at which
// maxEvents events, or maxBytes bytes of keys and values, have been read
// and returns the last revision it read completely; it always reads the
// first revision whole. If prevKV is set each event carries the key's
// previous version as PrevKv, or nil where there is none (a create, or a
// compacted past). It returns ErrCompacted if from is below the compacted
// revision.
func (s *Store) Events(ctx context.Context, from, to int64, maxEvents, maxBytes int, prevKV bool) ([]*mvccpb.Event, int64, error) {
	rt := s.Read()
	defer rt.End()
	if from < rt.compactRev {
		return nil, 0, ErrCompacted
	}
	if to > rt.rev {
		to = rt.rev
	}
	if from > to {
		return nil, to, nil
	}
	it, err := rt.snap.NewIter(&pebble.IterOptions{LowerBound: eventKey(from, 0), UpperBound: eventKey(to+1, 0)})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	var evs []*mvccpb.Event
	last := from - 1
	size := 0
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		k := it.Key()
		if len(k) != 17 {
			return nil, 0, ErrCorruptRecord
		}
		rev := int64(binary.BigEndian.Uint64(k[1:9]))
		sub := int64(binary.BigEndian.Uint64(k[9:17]))
		if rev != last && len(evs) > 0 && (len(evs) >= maxEvents || size >= maxBytes) {
			return evs, last, nil
		}
		v := it.Value()
		if len(v) < 1 {
			return nil, 0, ErrCorruptRecord
		}
		key := bytes.Clone(v[1:])
		ev, err := readEvent(rt.snap, mvccpb.Event_EventType(v[0]), key, rev, sub, rt.compactRev, prevKV)
		if err != nil {
			return nil, 0, err
		}
		evs = append(evs, ev)
		size += len(ev.Kv.Key) + len(ev.Kv.Value)
		if ev.PrevKv != nil {
			size += len(ev.PrevKv.Value)
		}
		last = rev
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	return evs, to, nil
}

// PrevKV is key's version just before revision rev (the previous version
// of the key an event at rev changed), or nil if the key did not exist
// then or that version is compacted. Watchers that asked for prev_kv read
// a delete's previous version here, as the apply loop leaves it out.
func (s *Store) PrevKV(key []byte, rev int64) (*mvccpb.KeyValue, error) {
	rt := s.Read()
	defer rt.End()
	if rev-1 < rt.compactRev {
		return nil, nil
	}
	return previousVersion(rt.snap, key, rev)
}

// readEvent rebuilds one event from the version records, with its
// previous version if prevKV is set.
func readEvent(r pebble.Reader, typ mvccpb.Event_EventType, key []byte, rev, sub, compactRev int64, prevKV bool) (*mvccpb.Event, error) {
	ev := &mvccpb.Event{Type: typ, Kv: &mvccpb.KeyValue{Key: key, ModRevision: rev}}
	if typ == mvccpb.Event_PUT {
		v, ok, err := storage.GetCopy(r, versionKey(nil, key, rev, sub))
		if err != nil {
			return ev, err
		}
		if !ok {
			return ev, ErrCorruptRecord
		}
		rec, err := decodeRecord(v)
		if err != nil || rec.tombstone {
			return ev, ErrCorruptRecord
		}
		ev.Kv.CreateRevision, ev.Kv.Version, ev.Kv.Lease, ev.Kv.Value = rec.createRevision, rec.version, rec.lease, rec.value
		if rec.version == 1 {
			return ev, nil // a create has no previous version
		}
	}
	if !prevKV {
		return ev, nil
	}
	if rev-1 < compactRev {
		// The previous version is compacted (even if not yet removed):
		// no prev_kv, as etcd.
		return ev, nil
	}
	prev, err := previousVersion(r, key, rev)
	if err != nil {
		return ev, err
	}
	ev.PrevKv = prev
	return ev, nil
}

// previousVersion is the version of key just before rev, or nil if the
// key did not exist then or that version was compacted away.
func previousVersion(r pebble.Reader, key []byte, rev int64) (*mvccpb.KeyValue, error) {
	prefix := versionKeyPrefix(nil, key)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: versionKey(nil, key, rev-1, math.MaxInt64), UpperBound: nextKeyPrefix(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if !it.First() {
		return nil, it.Error()
	}
	_, modRev, _, err := decodeVersionKey(it.Key())
	if err != nil {
		return nil, err
	}
	rec, err := decodeRecord(it.Value())
	if err != nil || rec.tombstone {
		return nil, err
	}
	return &mvccpb.KeyValue{Key: key, CreateRevision: rec.createRevision, ModRevision: modRev, Version: rec.version, Lease: rec.lease, Value: bytes.Clone(rec.value)}, nil
}
