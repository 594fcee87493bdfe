package mvcc

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

// compactionChunk bounds the work of one compaction batch: about this many
// events visited plus versions read, and at most about this many point
// deletions, so that compaction never holds up writes for long. A key with
// more versions to remove than this loses them in one range deletion. A
// variable so that tests can make chunks small.
var compactionChunk = 1000

// compactionPause bounds the pause after each compaction batch, which is
// as long as the batch took (etcd sleeps 10 ms every 1000 keys).
const compactionPause = 10 * time.Millisecond

// compactor removes versions made unreadable by compaction, in the
// background and in bounded chunks, driven by the events of the revisions
// compacted: its work is proportional to the revisions compacted, not to the
// keys in the store. A compaction whose span is large against the store
// scans the versions instead (see preferScan), with the same result. Reads never see its partial work: they refuse
// revisions below the compacted revision, and it only removes versions that
// no readable revision needs. It never takes the store's lock, and it stops
// between chunks when closed; a compaction interrupted by a stop or a crash
// resumes from its persisted progress.
type compactor struct {
	s *Store

	mu struct {
		sync.Mutex
		target  int64 // newest requested compaction revision
		done    int64 // revision up to which old versions are removed
		changed chan struct{}
		closed  bool
	}
	kick chan struct{}
	wg   sync.WaitGroup
	stop chan struct{}
}

func newCompactor(s *Store, done int64) *compactor {
	c := &compactor{s: s, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	c.mu.done, c.mu.target = done, done
	c.mu.changed = make(chan struct{})
	c.wg.Add(1)
	go c.run()
	return c
}

func (c *compactor) schedule(rev int64) {
	c.mu.Lock()
	if rev > c.mu.target {
		c.mu.target = rev
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// close stops the compactor at its next chunk boundary and waits for it.
func (c *compactor) close() {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	c.mu.closed = true
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
}

func (c *compactor) wait(ctx context.Context, rev int64) error {
	for {
		c.mu.Lock()
		done, ch := c.mu.done, c.mu.changed
		c.mu.Unlock()
		if done >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stop:
			return context.Canceled
		}
	}
}

func (c *compactor) run() {
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends when run returns, at the latest
		select {
		case <-c.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		for {
			c.mu.Lock()
			target, done := c.mu.target, c.mu.done
			c.mu.Unlock()
			if target <= done {
				break
			}
			h, err := c.s.compactOnce(ctx, target)
			// Reads after this see the removal (and its progress keys),
			// not a snapshot shared from before it.
			c.s.dropShared()
			if err != nil {
				if ctx.Err() == nil {
					c.s.lg.Error("compaction failed", "revision", target, "error", err)
				}
				break
			}
			c.s.recordCompactionHash(h)
			c.mu.Lock()
			c.mu.done = h.Revision
			close(c.mu.changed)
			c.mu.changed = make(chan struct{})
			c.mu.Unlock()
			c.s.lg.Info("finished scheduled compaction", "compact-revision", h.Revision, "hash", h.Hash)
		}
	}
}

// compactState is the persisted state of physical compaction.
type compactState struct {
	done     int64  // revision up to which compaction is finished, -1 if never
	sum      uint64 // digests of the state at done (see stateSum)
	sumKnown bool   // false for a store compacted before sums were stored
	progress *compactProgress
}

// compactProgress is a compaction in progress, persisted with each
// batch's deletions. Events are read in slices of up to eventsPerSlice;
// each slice's keys are visited in key order, each at its last change in
// (prev, target]. The slice being visited runs from (nextRev, nextSub) to
// (endRev, endSub), exclusive, and its keys up to doneKey are done; with
// endRev zero no slice is open.
type compactProgress struct {
	prev, target     int64
	nextRev, nextSub int64
	endRev, endSub   int64
	base             uint64 // digests of the state at prev
	state            uint64 // base, with the visited keys moved to their state at target
	span             uint64 // digests of the visited keys' versions in (prev, target]
	doneKey          []byte
}

func (p *compactProgress) encode() []byte {
	b := make([]byte, 0, 72+len(p.doneKey))
	for _, v := range []uint64{uint64(p.prev), uint64(p.target), uint64(p.nextRev), uint64(p.nextSub),
		uint64(p.endRev), uint64(p.endSub), p.base, p.state, p.span} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return append(b, p.doneKey...)
}

func decodeCompactProgress(b []byte) (*compactProgress, error) {
	if len(b) < 72 {
		return nil, ErrCorruptRecord
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[8*i:]) }
	p := &compactProgress{
		prev: int64(u(0)), target: int64(u(1)), nextRev: int64(u(2)), nextSub: int64(u(3)),
		endRev: int64(u(4)), endSub: int64(u(5)), base: u(6), state: u(7), span: u(8),
	}
	if len(b) > 72 {
		p.doneKey = bytes.Clone(b[72:])
	}
	return p, nil
}

// inDoneKeys reports whether the event (rev, sub) of key is in the open
// slice and its key is done.
func (p *compactProgress) inDoneKeys(key []byte, rev, sub int64) bool {
	if p.endRev == 0 || p.doneKey == nil {
		return false
	}
	if rev > p.endRev || rev == p.endRev && sub >= p.endSub {
		return false
	}
	return bytes.Compare(key, p.doneKey) <= 0
}

func readCompactState(r pebble.Reader) (compactState, error) {
	var cs compactState
	var err error
	if cs.done, err = readMetaInt(r, metaCompactDone, -1); err != nil {
		return cs, err
	}
	v, ok, err := storage.GetCopy(r, metaCompactSum)
	if err != nil {
		return cs, err
	}
	switch {
	case ok && len(v) == 8:
		cs.sum, cs.sumKnown = binary.BigEndian.Uint64(v), true
	case ok:
		return cs, ErrCorruptRecord
	default:
		cs.sumKnown = cs.done < 0 // nothing at or below a negative revision
	}
	v, ok, err = storage.GetCopy(r, metaCompactProgress)
	if err != nil || !ok {
		return cs, err
	}
	cs.progress, err = decodeCompactProgress(v)
	cs.sumKnown = err == nil
	return cs, err
}

// compactOnce finishes one compaction: the one in progress if there is
// one, else from the finished compaction to target. It returns the hash
// of the versions at the compaction's revision as the store was compacted
// at the one before (see Store.HashKV).
func (s *Store) compactOnce(ctx context.Context, target int64) (KVHash, error) {
	p, err := s.startCompaction(ctx, target)
	if err != nil {
		return KVHash{}, err
	}
	var sl eventSlice
	for p.nextRev <= p.target {
		start := time.Now()
		if err := s.compactChunk(ctx, p, &sl); err != nil {
			return KVHash{}, err
		}
		// Leave writers the CPU and the commit pipeline for as long as
		// the batch took (up to compactionPause): compaction runs at most
		// about half the time, as etcd's compaction-sleep-interval paces.
		t := time.NewTimer(min(time.Since(start), compactionPause))
		select {
		case <-ctx.Done():
			t.Stop()
			return KVHash{}, ctx.Err() // stopped: the progress is persisted
		case <-t.C:
		}
	}
	return s.finishCompaction(p)
}

// startCompaction returns the compaction in progress, or a new one from
// the finished compaction to target.
func (s *Store) startCompaction(ctx context.Context, target int64) (*compactProgress, error) {
	db := s.eng.DB
	cs, err := readCompactState(db)
	if err != nil || cs.progress != nil {
		return cs.progress, err
	}
	if !cs.sumKnown {
		// Once, for a store compacted before sums were stored.
		sum, err := scanSum(ctx, db, cs.done, cs.done)
		if err != nil {
			return nil, err
		}
		if err := db.Set(metaCompactSum, binary.BigEndian.AppendUint64(nil, sum), pebble.NoSync); err != nil {
			return nil, err
		}
		cs.sum = sum
	}
	p := &compactProgress{prev: cs.done, target: target, nextRev: cs.done + 1, base: cs.sum, state: cs.sum}
	scan, err := preferScan(ctx, db, p)
	if err != nil {
		return nil, err
	}
	if scan {
		p.endRev, p.endSub = p.target+1, scanMarker
	}
	return p, nil
}

// scanMarker in a compaction's endSub marks a compaction by a scan of the
// versions keyspace (see compactScanChunk): its one open slice is the whole
// span, and doneKey is the last key visited.
const scanMarker = -1

// How a compaction visits the keys changed in its span: by their events
// (work proportional to the revisions compacted, a seek per event), or by
// a scan of the versions keyspace in key order (work proportional to the
// versions stored, a step per version). A seek costs about as much as
// scanSeekCost steps, so a compaction scans when the store holds at most
// scanSeekCost versions per revision compacted: one compaction of a span
// that rewrote most keys many times. Both produce the same removals and
// the same hash. compactionMode forces one of them, for tests.
var (
	scanSeekCost   = 4
	compactionMode = compactAuto
)

const (
	compactAuto = iota
	compactByEvents
	compactByScan
)

// preferScan decides how p visits its keys. It counts the versions stored,
// stopping as soon as there are more than scanSeekCost per revision of the
// span, so the decision costs at most that many steps per revision.
func preferScan(ctx context.Context, db *pebble.DB, p *compactProgress) (bool, error) {
	switch compactionMode {
	case compactByEvents:
		return false, nil
	case compactByScan:
		return true, nil
	}
	budget := int64(scanSeekCost) * (p.target - p.prev)
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceVersions},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceVersions),
	})
	if err != nil {
		return false, err
	}
	defer it.Close()
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n > budget {
			return false, nil
		}
		if n%4096 == 0 && ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
	return true, it.Error()
}

// finishCompaction records a compaction whose events are all visited.
func (s *Store) finishCompaction(p *compactProgress) (KVHash, error) {
	db := s.eng.DB
	// Events below the compacted revision go last: until here, the
	// progress needs them.
	b := db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(eventKey(0, 0), eventKey(p.target, 0), nil); err != nil {
		return KVHash{}, err
	}
	if err := b.Set(metaCompactDone, encodeInt(p.target), nil); err != nil {
		return KVHash{}, err
	}
	if err := b.Set(metaCompactSum, binary.BigEndian.AppendUint64(nil, p.state), nil); err != nil {
		return KVHash{}, err
	}
	if err := b.Delete(metaCompactProgress, nil); err != nil {
		return KVHash{}, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return KVHash{}, err
	}
	return KVHash{Hash: foldHash(p.base + p.span), CompactRevision: p.prev, Revision: p.target}, nil
}

var errChunkFull = errors.New("mvcc: compaction chunk full")

// eventsPerSlice is how many events compaction reads, sorts by key and
// visits in key order at a time, so that its seeks move forward through the
// versions keyspace: the denser the slice's keys, the closer to a scan.
// Memory: the slice's keys, at most about maxSliceBytes. Variables so
// that tests can make slices small.
var (
	eventsPerSlice = 16384
	maxSliceBytes  = 4 << 20
)

// eventSlice is the open slice of events, sorted by key and, per key,
// newest first, kept between the batches that visit it.
type eventSlice struct {
	nextRev, nextSub int64 // where it starts
	endRev, endSub   int64 // where the next one starts
	evs              []sliceEvent
}

type sliceEvent struct {
	key      []byte
	rev, sub int64
}

// readSlice reads p's open slice of events, or the next one if none is
// open, and sorts it.
func readSlice(ctx context.Context, db *pebble.DB, p *compactProgress, sl *eventSlice) error {
	*sl = eventSlice{nextRev: p.nextRev, nextSub: p.nextSub, endRev: p.endRev, endSub: p.endSub}
	size := 0
	last := p.target
	if p.endRev != 0 {
		last = p.endRev // the open slice, read again after a restart
	}
	err := walkEvents(ctx, db, p.nextRev, p.nextSub, last, func(_ *pebble.Iterator, rev, sub int64, key []byte) error {
		if p.endRev != 0 {
			if rev > p.endRev || rev == p.endRev && sub >= p.endSub {
				return errChunkFull
			}
		} else if len(sl.evs) >= eventsPerSlice || size >= maxSliceBytes {
			sl.endRev, sl.endSub = rev, sub
			return errChunkFull
		}
		sl.evs = append(sl.evs, sliceEvent{bytes.Clone(key), rev, sub})
		size += len(key) + 40
		return nil
	})
	if err != nil && err != errChunkFull {
		return err
	}
	if sl.endRev == 0 {
		sl.endRev, sl.endSub = p.target+1, 0 // the last slice
	}
	// Per key, newest first: only a key's newest event in the slice can be
	// its last change in the span.
	slices.SortFunc(sl.evs, func(a, b sliceEvent) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(b.rev, a.rev), cmp.Compare(b.sub, a.sub))
	})
	return nil
}

// compactChunk goes on with p's open slice of events (sl, or read again),
// or opens the next, and compacts its keys in key order until about
// compactionChunk deletions are in the batch or the slice is done, then
// commits the deletions with the advanced progress. On error p and sl are
// stale: the caller re-reads p.
func (s *Store) compactChunk(ctx context.Context, p *compactProgress, sl *eventSlice) error {
	if p.endSub == scanMarker {
		return s.compactScanChunk(p)
	}
	db := s.eng.DB
	if sl.evs == nil || sl.nextRev != p.nextRev || sl.nextSub != p.nextSub {
		if err := readSlice(ctx, db, p, sl); err != nil {
			return err
		}
	}
	evs, endRev, endSub := sl.evs, sl.endRev, sl.endSub
	vit, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceVersions},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceVersions),
	})
	if err != nil {
		return err
	}
	defer vit.Close()
	b := db.NewBatch()
	defer b.Close()
	ops := 0
	doneKey := p.doneKey
	finished := true
	for i, e := range evs {
		if i > 0 && bytes.Equal(e.key, evs[i-1].key) {
			continue
		}
		if doneKey != nil && bytes.Compare(e.key, doneKey) <= 0 {
			continue
		}
		if ops >= compactionChunk {
			finished = false
			break
		}
		n, err := compactKey(vit, b, e.key, e.rev, e.sub, p, 2*compactionChunk-ops)
		if err != nil {
			return err
		}
		ops += n
		doneKey = e.key
	}
	if finished {
		p.nextRev, p.nextSub, p.endRev, p.endSub, p.doneKey = endRev, endSub, 0, 0, nil
	} else {
		p.endRev, p.endSub, p.doneKey = endRev, endSub, doneKey
	}
	if err := b.Set(metaCompactProgress, p.encode(), nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}

// compactKey compacts key if (rev, sub) is its last change at or below
// p.target: it removes every version older than that one, and that one too
// if it is a deletion, moves the key's digest in p.state from its state at
// p.prev to its state at p.target, and adds the digests of its versions in
// (p.prev, p.target] to p.span. All of a key's removals go in one batch, so
// a reader never sees a key half compacted: as point deletions, or as one
// range deletion if there are more than room or than compactionChunk. It
// returns the number of operations it added to b.
func compactKey(vit *pebble.Iterator, b *pebble.Batch, key []byte, rev, sub int64, p *compactProgress, room int) (int, error) {
	last, rec, err := isLastChange(vit, key, rev, sub, p.target)
	if err != nil || !last {
		return 0, err
	}
	d := versionDigest(key, rev, sub, rec)
	p.span += d
	start := bytes.Clone(vit.Key()) // of the versions to remove
	var dels [][]byte
	if isTombstone(rec) {
		dels = append(dels, start)
	} else {
		p.state += d
		start = append(start, 0) // just after the newest
	}
	prefix := versionKeyPrefix(nil, key)
	n := len(dels)
	seenPrev := false
	ok := vit.Next()
	for ; ok && bytes.HasPrefix(vit.Key(), prefix); ok = vit.Next() {
		_, vrev, vsub, err := decodeVersionKey(vit.Key())
		if err != nil {
			return n, err
		}
		v, err := vit.ValueAndErr()
		if err != nil {
			return n, err
		}
		switch {
		case vrev > p.prev:
			p.span += versionDigest(key, vrev, vsub, v)
		case !seenPrev:
			// The key's state at prev (compaction at prev left only
			// this one at or below it, and only if not a deletion).
			seenPrev = true
			if !isTombstone(v) {
				p.state -= versionDigest(key, vrev, vsub, v)
			}
		}
		if n++; n <= compactionChunk {
			dels = append(dels, bytes.Clone(vit.Key()))
		}
	}
	if !ok {
		if err := vit.Error(); err != nil {
			return n, err
		}
	}
	if n > 0 && (n > compactionChunk || n > room) {
		return 1, b.DeleteRange(start, nextKeyPrefix(prefix), nil)
	}
	for _, k := range dels {
		if err := b.Delete(k, nil); err != nil {
			return n, err
		}
	}
	return n, nil
}

// compactScanChunk goes on with a compaction by scan (see scanMarker): it
// visits the versions keyspace in key order from just after p.doneKey and
// compacts each key whose newest version at or below p.target is after
// p.prev (its last change in the span) with compactKey, as the event path
// does, until about compactionChunk versions are visited or deletions
// added, stopping between keys, then commits the deletions with the advanced progress. After the
// last key it closes the span (p.nextRev past p.target).
func (s *Store) compactScanChunk(p *compactProgress) error {
	db := s.eng.DB
	lower := []byte{storage.KeyspaceVersions}
	if p.doneKey != nil {
		lower = nextKeyPrefix(versionKeyPrefix(nil, p.doneKey))
	}
	vit, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceVersions},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceVersions),
	})
	if err != nil {
		return err
	}
	defer vit.Close()
	b := db.NewBatch()
	defer b.Close()
	ops := 0
	var last []byte // the last key visited, if any
	ok := vit.SeekGE(lower)
	for ok {
		key, rev, sub, err := decodeVersionKey(vit.Key())
		if err != nil {
			return err
		}
		if !bytes.Equal(key, last) {
			if ops >= compactionChunk {
				break // at a key boundary: every key up to last is done
			}
			last = append(last[:0], key...)
		}
		ops++
		switch {
		case rev > p.target:
			ok = vit.Next() // newer than the span: kept
		case rev > p.prev:
			// The key's newest version at or below target, so its last
			// change in the span. compactKey reads the rest of its
			// versions and leaves vit on the next key.
			key = bytes.Clone(key)
			n, err := compactKey(vit, b, key, rev, sub, p, 2*compactionChunk-ops)
			if err != nil {
				return err
			}
			ops += n
			if ok = vit.Valid(); ok && bytes.HasPrefix(vit.Key(), versionKeyPrefix(nil, key)) {
				return ErrCorruptRecord // compactKey did not take the key
			}
		default:
			// At or below prev: the key did not change in the span (or
			// this is an older version of one that did not), kept.
			ok = vit.Next()
		}
	}
	doneKey := p.doneKey
	if last != nil {
		doneKey = last
	}
	if !ok {
		if err := vit.Error(); err != nil {
			return err
		}
		p.nextRev, p.nextSub, p.endRev, p.endSub, p.doneKey = p.target+1, 0, 0, 0, nil
	} else {
		p.doneKey = doneKey
	}
	if err := b.Set(metaCompactProgress, p.encode(), nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}
