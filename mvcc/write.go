package mvcc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Batch collects the writes of a group of committed entries into one
// Pebble batch. The apply loop owns it: it begins one TxnWrite per write
// request, adds its own keys (the applied index) to Pebble(), and calls
// Store.Commit.
type Batch struct {
	s   *Store
	b   *pebble.Batch // indexed: reads in a txn see the batch's earlier writes
	rev int64         // store revision including this batch's transactions
	// compactRev is the compacted revision including this batch's compactions.
	compactRev int64
	compacted  bool
	// Events are the batch's changes in revision order, for watchers. A
	// put carries no PrevKv (the lookup before it reads the previous
	// version's metadata only, often from the live cache); a delete
	// carries it only if its request loaded the deleted values
	// (DeleteRangeWith). Watchers that ask for prev_kv read it with
	// Store.PrevKV, as etcd's watch server reads it at mod_revision-1.
	Events []*mvccpb.Event
	// live is the batch's uncommitted live-record changes, which the
	// store's live cache takes at Commit.
	live pendingLive
}

// NewBatch starts a batch at the store's current revision.
func (s *Store) NewBatch() *Batch {
	s.mu.RLock()
	rev, compactRev := s.mu.rev, s.mu.compactRev
	s.mu.RUnlock()
	return &Batch{s: s, b: s.eng.DB.NewIndexedBatch(), rev: rev, compactRev: compactRev}
}

// Pebble is the underlying batch, for keys of other keyspaces that must
// commit atomically with these versions (the applied index).
func (wb *Batch) Pebble() *pebble.Batch { return wb.b }

// Rev is the revision the store will be at once the batch commits.
func (wb *Batch) Rev() int64 { return wb.rev }

// CompactRev is the compacted revision including this batch's compactions.
func (wb *Batch) CompactRev() int64 { return wb.compactRev }

// Commit writes the batch without fsync (the synced Raft log replays what a
// crash loses) and publishes its revision. It schedules physical compaction
// if the batch compacted.
func (s *Store) Commit(wb *Batch) error {
	if err := wb.b.Set(metaRev, encodeInt(wb.rev), nil); err != nil {
		return err
	}
	if wb.compacted {
		if err := wb.b.Set(metaCompact, encodeInt(wb.compactRev), nil); err != nil {
			return err
		}
	}
	s.mu.Lock()
	err := wb.b.Commit(pebble.NoSync)
	if err == nil {
		s.mu.rev, s.mu.compactRev = wb.rev, wb.compactRev
		s.live.apply(wb.live.log)
	} else {
		// Whether any of it reached Pebble is unknown.
		s.live.reset(false)
	}
	s.mu.Unlock()
	wb.b.Close()
	if err == nil && wb.compacted {
		s.compactor.schedule(wb.compactRev)
	}
	return err
}

// Abort discards an uncommitted batch.
func (wb *Batch) Abort() { wb.b.Close() }

// Compact marks every revision before rev as compacted: reads below it fail
// with ErrCompacted at once, and old versions are removed in the background
// after the batch commits. It returns ErrCompacted if rev is not after the
// compacted revision and ErrFutureRev if it is after the current one.
func (wb *Batch) Compact(rev int64) error {
	if rev <= wb.compactRev {
		return ErrCompacted
	}
	if rev > wb.rev {
		return ErrFutureRev
	}
	wb.compactRev, wb.compacted = rev, true
	return nil
}

// TxnWrite is one write transaction: all its changes share revision
// beginRev+1, with sub-revisions in order.
type TxnWrite struct {
	wb       *Batch
	beginRev int64
	changes  int
}

// Write begins a write transaction in the batch.
func (wb *Batch) Write() *TxnWrite {
	return &TxnWrite{wb: wb, beginRev: wb.rev}
}

// Rev is the revision before the transaction.
func (tw *TxnWrite) Rev() int64 { return tw.beginRev }

// Changes is the number of keys the transaction changed so far.
func (tw *TxnWrite) Changes() int { return tw.changes }

func (tw *TxnWrite) readRev() int64 {
	if tw.changes > 0 {
		return tw.beginRev + 1
	}
	return tw.beginRev
}

// Range reads as etcd's write transactions do: at the transaction's own
// revision, seeing its earlier changes.
func (tw *TxnWrite) Range(ctx context.Context, key, end []byte, ro RangeOptions) (*RangeResult, error) {
	return rangeKeys(ctx, tw.wb.b, key, end, tw.readRev(), tw.wb.compactRev, ro)
}

// Put writes key=value with lease (0 for none) and returns the new
// revision and the key's previous lease (0 if none or if it did not exist).
func (tw *TxnWrite) Put(key, value []byte, lease int64) (rev, prevLease int64, err error) {
	rev = tw.beginRev + 1
	sub := int64(tw.changes)
	rec := record{createRevision: rev, modRevision: rev, version: 1, lease: lease, value: value}
	prev, ok, err := tw.wb.lookupLive(key)
	if err != nil {
		return 0, 0, err
	}
	if ok {
		rec.createRevision, rec.version, prevLease = prev.createRev, prev.version+1, prev.lease
	}
	b := tw.wb.b
	stored := rec
	stored.modRevision = 0 // implied by the version key
	if err := b.Set(versionKey(nil, key, rev, sub), appendRecord(nil, stored), nil); err != nil {
		return 0, 0, err
	}
	if err := b.Set(latestKey(nil, key), appendRecord(nil, rec), nil); err != nil {
		return 0, 0, err
	}
	if err := b.Set(eventKey(rev, sub), appendEvent(nil, byte(mvccpb.Event_PUT), key), nil); err != nil {
		return 0, 0, err
	}
	tw.changes++
	tw.wb.live.add(liveChange{key: string(key), meta: liveMeta{createRev: rec.createRevision, version: rec.version, lease: lease}})
	tw.wb.Events = append(tw.wb.Events, &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{
		Key: key, Value: value, CreateRevision: rec.createRevision, ModRevision: rev, Version: rec.version, Lease: lease,
	}})
	return rev, prevLease, nil
}

// lookupLive is key's live record as the batch sees it (its own changes
// first, then the store's live cache, then Pebble), without the value.
func (wb *Batch) lookupLive(key []byte) (liveMeta, bool, error) {
	if ch, ok := wb.live.get(key); ok {
		return ch.meta, !ch.deleted, nil
	}
	if meta, found, known := wb.s.live.get(key); known {
		return meta, found, nil
	}
	v, closer, err := wb.b.Get(latestKey(nil, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return liveMeta{}, false, nil
	}
	if err != nil {
		return liveMeta{}, false, err
	}
	defer closer.Close()
	p, err := decodeRecord(v)
	if err != nil {
		return liveMeta{}, false, err
	}
	return liveMeta{createRev: p.createRevision, version: p.version, lease: p.lease}, true, nil
}

// DeleteRange deletes the keys in [key, end) (end as in Range) and returns
// the deleted key-values and the transaction's revision, as etcd: the new
// revision if this or an earlier change in the transaction changed
// anything, else the current one. It is DeleteRangeWith with values.
func (tw *TxnWrite) DeleteRange(ctx context.Context, key, end []byte) (deleted []*mvccpb.KeyValue, rev int64, err error) {
	return tw.DeleteRangeWith(ctx, key, end, true)
}

// DeleteRangeWith is DeleteRange that loads the deleted values only if
// withValues is set (a prev_kv request); without it the key-values it
// returns have everything but Value, and the batch's delete events carry
// no PrevKv: watchers that asked for prev_kv read it from the versions
// keyspace (Store.PrevKV), so deleting large values costs their keys only.
func (tw *TxnWrite) DeleteRangeWith(ctx context.Context, key, end []byte, withValues bool) (deleted []*mvccpb.KeyValue, rev int64, err error) {
	err = rangeLatest(ctx, tw.wb.b, key, end, func(k []byte, rec record, modRev int64) {
		kv := &mvccpb.KeyValue{Key: bytes.Clone(k), CreateRevision: rec.createRevision, ModRevision: modRev, Version: rec.version, Lease: rec.lease}
		if withValues {
			kv.Value = bytes.Clone(rec.value)
		}
		deleted = append(deleted, kv)
	})
	if err != nil {
		return nil, 0, err
	}
	rev = tw.beginRev + 1
	b := tw.wb.b
	for _, kv := range deleted {
		sub := int64(tw.changes)
		if err := b.Set(versionKey(nil, kv.Key, rev, sub), appendRecord(nil, record{tombstone: true}), nil); err != nil {
			return nil, 0, err
		}
		if err := b.Delete(latestKey(nil, kv.Key), nil); err != nil {
			return nil, 0, err
		}
		tw.wb.live.add(liveChange{key: string(kv.Key), deleted: true})
		if err := b.Set(eventKey(rev, sub), appendEvent(nil, byte(mvccpb.Event_DELETE), kv.Key), nil); err != nil {
			return nil, 0, err
		}
		tw.changes++
		var prev *mvccpb.KeyValue
		if withValues {
			prev = kv
			if kv.ModRevision == rev {
				// Written earlier in this txn: like etcd, whose prev_kv is the
				// version at the revision before the txn, report that one.
				if prev, err = previousVersion(b, kv.Key, rev); err != nil {
					return nil, 0, err
				}
			}
		}
		tw.wb.Events = append(tw.wb.Events, &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: kv.Key, ModRevision: rev}, PrevKv: prev})
	}
	if tw.changes == 0 {
		rev = tw.beginRev
	}
	return deleted, rev, nil
}

// End finishes the transaction: if it changed anything the batch moves to
// the next revision.
func (tw *TxnWrite) End() {
	if tw.changes > 0 {
		tw.wb.rev++
	}
}

// FirstRev is the oldest readable revision (the compacted revision).
func (tw *TxnWrite) FirstRev() int64 { return tw.wb.compactRev }

// Savepoint marks a batch's state so that a request that fails midway can
// be undone, leaving the batch as if it had never run.
type Savepoint struct {
	size       int
	count      uint32
	rev        int64
	compactRev int64
	compacted  bool
	events     int
	live       int
}

// Savepoint returns a mark of the batch's current state.
func (wb *Batch) Savepoint() Savepoint {
	return Savepoint{size: len(wb.b.Repr()), count: wb.b.Count(), rev: wb.rev, compactRev: wb.compactRev, compacted: wb.compacted, events: len(wb.Events), live: len(wb.live.log)}
}

// RollbackTo undoes everything written to the batch after sp. It rebuilds
// the batch (O(batch size)); requests fail midway rarely. Callers must take
// Pebble() afresh afterwards.
func (wb *Batch) RollbackTo(sp Savepoint) error {
	repr := bytes.Clone(wb.b.Repr()[:sp.size])
	// The batch header is an 8-byte sequence number and a 4-byte
	// little-endian count of the records that follow.
	binary.LittleEndian.PutUint32(repr[8:12], sp.count)
	tmp := wb.s.eng.DB.NewBatch()
	defer tmp.Close()
	if err := tmp.SetRepr(repr); err != nil {
		return err
	}
	nb := wb.s.eng.DB.NewIndexedBatch()
	if err := nb.Apply(tmp, nil); err != nil {
		nb.Close()
		return err
	}
	wb.b.Close()
	wb.b = nb
	wb.rev, wb.compactRev, wb.compacted = sp.rev, sp.compactRev, sp.compacted
	wb.Events = wb.Events[:sp.events]
	wb.live.truncate(sp.live)
	return nil
}
