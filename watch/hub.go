package watch

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Errors of Stream.Watch and Stream.Cancel, as etcd's mvcc watch errors.
var (
	ErrEmptyRange  = errors.New("mvcc: watcher range is empty")
	ErrDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	ErrNotExist    = errors.New("mvcc: watcher does not exist")
)

// ErrCompacted is what Source.Events returns for a compacted revision.
var ErrCompacted = errors.New("watch: revision compacted")

// Source is the store that watchers catch up from.
type Source interface {
	// Events returns events of revisions from..to in order, stopping at a
	// revision boundary once about maxEvents events or maxBytes bytes of
	// keys and values are read, and the last revision read completely; it
	// returns an error satisfying IsCompacted if from is compacted. Events
	// carry the key's previous version as PrevKv only if prevKV is set.
	Events(ctx context.Context, from, to int64, maxEvents, maxBytes int, prevKV bool) ([]*mvccpb.Event, int64, error)
	// PrevKV is key's version just before revision rev, or nil if there
	// was none or it is compacted.
	PrevKV(key []byte, rev int64) (*mvccpb.KeyValue, error)
	CompactRev() int64
}

// Config tunes a Hub. The zero value is valid.
type Config struct {
	// IsCompacted tells whether an error from Source.Events means the
	// revision was compacted.
	IsCompacted func(error) bool
	// StreamBuffer is how many responses a stream queues before its
	// watchers are parked (default 128, as etcd's chanBufLen).
	StreamBuffer int
	// StreamBytes bounds the keys and values a stream queues, in bytes
	// (default 8 MiB): past it the stream's watchers are parked, holding
	// nothing, and caught up from storage once the client reads. A single
	// response larger than the bound is queued when the queue is empty.
	StreamBytes int
	// CatchUpEvents bounds one catch-up read (default 10000 events).
	CatchUpEvents int
	// CatchUpBytes bounds one catch-up read in bytes of keys and values
	// (default 8 MiB).
	CatchUpBytes int
	// CatchUpWatchers bounds the watchers served by one catch-up round (default 512).
	CatchUpWatchers int
	// NotifyBytes bounds the events handed to Notify and not yet matched,
	// in bytes of keys and values (default 64 MiB); Notify waits past it.
	NotifyBytes int
	// RetryInterval is how often unsynced watchers are retried when no
	// write or reader wakes the catch-up loop (default 100 ms).
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// Hub holds every watcher of a member. Watchers move between four states:
//
//	synced    has every event up to rev queued; the notifier matches new
//	          batches against it (point watchers by key, range watchers in
//	          an interval tree).
//	unsynced  behind rev; the catch-up loop reads its events from storage,
//	          each group of watchers from its own position.
//	parked    its stream is full (the client does not read): it holds
//	          nothing and costs nothing until the stream has room again,
//	          when it becomes unsynced at the first revision it missed. It
//	          never sets anyone's catch-up window (etcd's victims).
//	removed   canceled or closed.
type Hub struct {
	src Source
	cfg Config
	lg  *slog.Logger

	// mu guards the watcher states, the groups and rev. The notifier holds
	// it while it matches one batch; catch-up reads storage without it.
	// Lock order: mu, then qmu, then a Stream's mu.
	mu       sync.Mutex
	rev      int64 // last notified revision
	synced   group
	unsynced map[*watcher]struct{}

	// qmu guards the batches Notify handed over and the notifier has not
	// matched yet; the apply loop takes only this lock.
	qmu struct {
		sync.Mutex
		pending   []pendingItem
		bytes     int   // keys and values in pending
		committed int64 // revision of the last batch handed to Notify
		closed    bool
		room      *sync.Cond // signalled when pending shrinks
	}

	// watchers and streams count the registered watchers and the open
	// streams, for etcd's etcd_debugging_mvcc_watcher_total and
	// etcd_debugging_mvcc_watch_stream_total gauges.
	watchers, streams atomic.Int64

	wake chan struct{} // the notifier has work
	kick chan struct{} // the catch-up loop has work
	stop chan struct{}
	wg   sync.WaitGroup
}

// pendingItem is one batch for the notifier, or a store restore, or a
// progress request to answer once the batches before it are matched.
type pendingItem struct {
	rev      int64
	evs      []*mvccpb.Event
	restore  bool
	progress func()
}

// NewHub starts a hub whose store is at revision rev.
func NewHub(src Source, rev int64, cfg Config) *Hub {
	if cfg.StreamBuffer <= 0 {
		cfg.StreamBuffer = 128
	}
	if cfg.StreamBytes <= 0 {
		cfg.StreamBytes = 8 << 20
	}
	if cfg.CatchUpEvents <= 0 {
		cfg.CatchUpEvents = 10000
	}
	if cfg.CatchUpBytes <= 0 {
		cfg.CatchUpBytes = 8 << 20
	}
	if cfg.CatchUpWatchers <= 0 {
		cfg.CatchUpWatchers = 512
	}
	if cfg.NotifyBytes <= 0 {
		cfg.NotifyBytes = 64 << 20
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 100 * time.Millisecond
	}
	if cfg.IsCompacted == nil {
		cfg.IsCompacted = func(err error) bool { return errors.Is(err, ErrCompacted) }
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	h := &Hub{src: src, cfg: cfg, lg: lg, rev: rev, synced: newGroup(), unsynced: map[*watcher]struct{}{},
		wake: make(chan struct{}, 1), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	h.qmu.committed = rev
	h.qmu.room = sync.NewCond(&h.qmu)
	h.wg.Add(2)
	go h.catchUpLoop()
	go h.notifyLoop()
	return h
}

// Watchers is the number of watchers registered, on every stream.
func (h *Hub) Watchers() int64 { return h.watchers.Load() }

// Streams is the number of streams opened and not yet closed.
func (h *Hub) Streams() int64 { return h.streams.Load() }

// Close stops the notifier and the catch-up loop and waits for them.
func (h *Hub) Close() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.qmu.Lock()
	h.qmu.closed = true
	h.qmu.room.Broadcast()
	h.qmu.Unlock()
	h.wg.Wait()
}

// Rev is the store revision as far as the hub knows: that of the last
// batch handed to Notify.
func (h *Hub) Rev() int64 {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	return h.qmu.committed
}

// notifiedRev is the last revision whose events are queued on every
// synced watcher.
func (h *Hub) notifiedRev() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

// Restore is for a store whose content was replaced (a snapshot install)
// and is now at revision rev: once the batches before it are delivered,
// every synced watcher catches up from storage from its next revision
// on, as after falling behind.
func (h *Hub) Restore(rev int64) {
	h.enqueue(pendingItem{rev: rev, restore: true}, 0)
}

// Notify hands the events of an applied batch, in revision order, to the
// notifier; rev is the store revision after the batch. It returns at once
// unless NotifyBytes of events wait to be matched: a watcher never makes
// it wait.
func (h *Hub) Notify(rev int64, evs []*mvccpb.Event) {
	h.enqueue(pendingItem{rev: rev, evs: evs}, eventsBytes(evs))
}

func (h *Hub) enqueue(it pendingItem, size int) {
	h.qmu.Lock()
	for h.qmu.bytes > 0 && h.qmu.bytes+size > h.cfg.NotifyBytes && !h.qmu.closed {
		h.qmu.room.Wait()
	}
	h.qmu.pending = append(h.qmu.pending, it)
	h.qmu.bytes += size
	if it.rev > h.qmu.committed || it.restore {
		h.qmu.committed = it.rev
	}
	h.qmu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// notifyLoop matches the batches Notify handed over against the synced
// watchers, in order, off the apply loop.
func (h *Hub) notifyLoop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.stop:
			return
		case <-h.wake:
		}
		for {
			h.mu.Lock()
			h.qmu.Lock()
			items := h.qmu.pending
			h.qmu.pending = nil
			h.qmu.bytes = 0
			h.qmu.room.Broadcast()
			h.qmu.Unlock()
			if len(items) == 0 {
				h.mu.Unlock()
				break
			}
			for _, it := range items {
				switch {
				case it.restore:
					h.restoreLocked(it.rev)
				case it.progress != nil:
					it.progress()
				default:
					h.notifyLocked(it.rev, it.evs)
				}
			}
			h.mu.Unlock()
		}
	}
}

func (h *Hub) restoreLocked(rev int64) {
	for _, w := range h.synced.all() {
		// A synced watcher has every event up to h.rev.
		w.minRev = max(w.minRev, h.rev+1)
		h.synced.remove(w)
		w.state = stateUnsynced
		h.unsynced[w] = struct{}{}
	}
	h.rev = rev
	h.kickLocked()
}

func (h *Hub) notifyLocked(rev int64, evs []*mvccpb.Event) {
	for i := 0; i < len(evs); {
		// One response per revision, as etcd sends one per transaction.
		j := i + 1
		r := evs[i].Kv.ModRevision
		for j < len(evs) && evs[j].Kv.ModRevision == r {
			j++
		}
		h.notifyRevLocked(r, evs[i:j])
		i = j
	}
	if rev > h.rev {
		h.rev = rev
	}
}

// notifyRevLocked queues one revision's events on the synced watchers
// that match them. Events come without PrevKv (loading every previous
// value on the apply loop would cost as much as the values; puts find
// their key's metadata in the store's live cache); it is read here, once
// per event, if a matching watcher asked for it, as etcd's watch server
// reads it at mod_revision-1. That
// is a point read under mu, which the catch-up loop's move of a watcher
// into the synced group must not overtake.
func (h *Hub) notifyRevLocked(rev int64, evs []*mvccpb.Event) {
	type match struct {
		w   *watcher
		evs []*mvccpb.Event
	}
	var matched []match
	var index map[*watcher]int // made at the first match
	for i := range evs {
		h.synced.match(evs[i].Kv.Key, func(w *watcher) {
			if rev < w.minRev || !w.wants(evs[i]) {
				return
			}
			if w.prevKV && evs[i].PrevKv == nil && hasPrev(evs[i]) {
				h.loadPrevKV(evs[i])
			}
			if index == nil {
				index = map[*watcher]int{}
			}
			k, ok := index[w]
			if !ok {
				k = len(matched)
				index[w] = k
				matched = append(matched, match{w: w})
			}
			matched[k].evs = append(matched[k].evs, evs[i])
		})
	}
	for _, m := range matched {
		w := m.w
		if w.stream.trySend(w, Response{WatchID: w.id, Events: m.evs, Revision: rev}) {
			w.minRev = rev + 1
			continue
		}
		// The stream is full: park the watcher at the first revision it missed.
		w.minRev = rev
		h.synced.remove(w)
		h.parkLocked(w)
	}
}

// hasPrev reports whether ev's key existed before it: a delete's did, a
// put's unless the put created it (version 1).
func hasPrev(ev *mvccpb.Event) bool {
	return ev.Type == mvccpb.Event_DELETE || ev.Kv.Version > 1
}

// loadPrevKV sets ev.PrevKv from storage. Nobody else has
// seen ev yet: the notifier fills it before it queues ev anywhere.
func (h *Hub) loadPrevKV(ev *mvccpb.Event) {
	prev, err := h.src.PrevKV(ev.Kv.Key, ev.Kv.ModRevision)
	if err != nil {
		h.lg.Error("watch: reading a key's previous version failed", "key", string(ev.Kv.Key), "revision", ev.Kv.ModRevision, "error", err)
		return
	}
	ev.PrevKv = prev
}

// parkLocked parks w, which is in no group, unless its stream has room
// again (its reader may have drained it since the failed send), in which
// case w catches up.
func (h *Hub) parkLocked(w *watcher) {
	if w.stream.parkLocked(w) {
		w.state = stateParked
		return
	}
	w.state = stateUnsynced
	h.unsynced[w] = struct{}{}
	h.kickLocked()
}

// unpark makes the parked watchers of s unsynced: its reader made room.
func (h *Hub) unpark(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range s.parked {
		delete(s.parked, w)
		if w.state == stateParked {
			w.state = stateUnsynced
			h.unsynced[w] = struct{}{}
		}
	}
	h.kickLocked()
}

func (h *Hub) kickLocked() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// addLocked registers w and returns the revision its created response
// carries: the store revision as the hub knows it. Start revision 0
// becomes that revision + 1, as in etcd, and w is registered in the same
// critical section as the choice, so no batch falls between the two.
func (h *Hub) addLocked(w *watcher) int64 {
	h.watchers.Add(1)
	h.qmu.Lock()
	cur := h.qmu.committed
	h.qmu.Unlock()
	switch {
	case w.startRev == 0 || w.startRev > cur:
		// Batches up to cur that the notifier has not matched yet are
		// after h.rev: it delivers those at or after minRev.
		w.minRev = w.startRev
		if w.startRev == 0 {
			w.minRev = cur + 1
		}
		w.state = stateSynced
		h.synced.add(w)
	default:
		// In the past, or in batches not matched yet: the catch-up loop
		// checks compaction first (the store may have compacted past
		// startRev in a batch the notifier has not seen), then reads
		// storage up to h.rev or hands the watcher to the notifier.
		w.minRev = w.startRev
		w.state = stateUnsynced
		h.unsynced[w] = struct{}{}
		h.kickLocked()
	}
	return cur
}

// remove unregisters w.
func (h *Hub) remove(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch w.state {
	case stateSynced:
		h.synced.remove(w)
	case stateUnsynced:
		delete(h.unsynced, w)
	case stateParked:
		delete(w.stream.parked, w)
	}
	if w.state != stateNew && w.state != stateRemoved {
		h.watchers.Add(-1)
	}
	w.state = stateRemoved
}

// progress queues a progress response for id on the stream of ws if every
// watcher in ws is synced, as etcd's progressIfSync. It answers after the
// batches already handed to Notify are delivered, so its revision never
// runs ahead of an event the stream's watchers are owed.
func (h *Hub) progress(ws []*watcher, id int64) {
	if len(ws) == 0 {
		return
	}
	answer := func() {
		for _, w := range ws {
			if w.state != stateSynced || h.rev < w.startRev {
				return
			}
		}
		var w *watcher
		if id != InvalidWatchID {
			w = ws[0]
		}
		ws[0].stream.trySend(w, Response{WatchID: id, Revision: h.rev})
	}
	h.mu.Lock()
	h.qmu.Lock()
	if h.qmu.committed == h.rev && len(h.qmu.pending) == 0 {
		h.qmu.Unlock()
		answer()
		h.mu.Unlock()
		return
	}
	h.qmu.Unlock()
	h.mu.Unlock()
	h.enqueue(pendingItem{progress: answer}, 0)
}

// catchUpLoop serves unsynced watchers from storage.
func (h *Hub) catchUpLoop() {
	defer h.wg.Done()
	t := time.NewTimer(h.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-h.kick:
		case <-t.C:
		}
		for {
			progressed, left := h.catchUpRound()
			if left == 0 || !progressed {
				break
			}
			select {
			case <-h.stop:
				return
			default:
			}
		}
		t.Reset(h.cfg.RetryInterval)
	}
}

// catchUpRound serves a set of unsynced watchers: in order of position,
// each read of storage starts at the first position not yet served, so a
// watcher far behind does not hold back one near the head, and the
// watchers a read covers get their events from it. Watchers whose stream
// fills are parked; those that reach the notified revision become synced.
// It reports whether any watcher moved forward and how many remain
// unsynced.
func (h *Hub) catchUpRound() (progressed bool, left int) {
	// Read up to the store's committed revision, not only to what the
	// notifier has matched: a watcher created at revision R (its created
	// header says R) must get its events up to R in a response whose
	// header is at least R, as etcd's catch-up does. Batches the notifier
	// matches later skip it (its minRev is past them by then).
	h.qmu.Lock()
	bound := h.qmu.committed
	h.qmu.Unlock()
	h.mu.Lock()
	var ws []*watcher
	for w := range h.unsynced {
		if len(ws) >= h.cfg.CatchUpWatchers {
			break
		}
		ws = append(ws, w)
	}
	h.mu.Unlock()
	if len(ws) == 0 {
		return false, 0
	}
	slices.SortFunc(ws, func(a, b *watcher) int { return int(min(max(a.minRev-b.minRev, -1), 1)) })
	compactRev := h.src.CompactRev()
	blocked := map[*watcher]bool{}
	var live []*watcher
	for _, w := range ws {
		if w.minRev < compactRev {
			// Its next events are gone: tell the client, as etcd does.
			// Like etcd, the watcher stays on its stream (its ID stays
			// taken and a cancel still answers) but gets nothing more.
			if w.stream.trySend(w, Response{WatchID: w.id, CompactRevision: compactRev}) {
				h.remove(w)
				progressed = true
			} else {
				blocked[w] = true
			}
			continue
		}
		live = append(live, w)
	}
	for i := 0; i < len(live) && live[i].minRev <= bound; {
		from := live[i].minRev
		prevKV := false
		for _, w := range live[i:] {
			prevKV = prevKV || w.prevKV
		}
		evs, last, err := h.src.Events(context.Background(), from, bound, h.cfg.CatchUpEvents, h.cfg.CatchUpBytes, prevKV)
		if err != nil {
			if !h.cfg.IsCompacted(err) {
				h.lg.Error("watch catch-up read failed", "from", from, "error", err)
			}
			break // compacted meanwhile: the next round cancels them
		}
		j := i
		for ; j < len(live) && live[j].minRev <= last; j++ {
			if h.deliver(live[j], evs, last) {
				progressed = true
			} else {
				blocked[live[j]] = true
			}
		}
		if j == i {
			break // nothing readable yet
		}
		i = j
	}
	h.mu.Lock()
	for _, w := range ws {
		if w.state != stateUnsynced {
			continue // removed meanwhile
		}
		switch {
		case blocked[w]:
			delete(h.unsynced, w)
			h.parkLocked(w)
		case w.minRev > h.rev:
			delete(h.unsynced, w)
			w.state = stateSynced
			h.synced.add(w)
		}
	}
	left = len(h.unsynced)
	h.mu.Unlock()
	return progressed, left
}

// deliver queues w's share of evs (a read of storage up to revision last
// that starts at or before w.minRev) and moves w past last. It returns
// false if w's stream filled first; w is then at the first revision not
// queued.
func (h *Hub) deliver(w *watcher, evs []*mvccpb.Event, last int64) bool {
	var wevs []*mvccpb.Event
	for i := range evs {
		if evs[i].Kv.ModRevision >= w.minRev && w.covers(evs[i].Kv.Key) && w.wants(evs[i]) {
			wevs = append(wevs, evs[i])
		}
	}
	for len(wevs) > 0 {
		chunk := responseChunk(wevs, maxRevsPerResponse, h.cfg.StreamBytes/2)
		if !w.stream.trySend(w, Response{WatchID: w.id, Events: wevs[:chunk], Revision: last}) {
			w.minRev = wevs[0].Kv.ModRevision // still full; go on from here later
			return false
		}
		wevs = wevs[chunk:]
	}
	w.minRev = last + 1
	return true
}

// maxRevsPerResponse bounds the revisions in one catch-up response, as
// etcd's watchBatchMaxRevs.
const maxRevsPerResponse = 1000

// responseChunk is how many of evs (in revision order) make up their
// first maxRevs revisions, stopping earlier at a revision boundary once
// maxBytes of keys and values are in; at least one revision.
func responseChunk(evs []*mvccpb.Event, maxRevs, maxBytes int) int {
	revs, size := 0, 0
	for i := range evs {
		if i == 0 || evs[i].Kv.ModRevision != evs[i-1].Kv.ModRevision {
			revs++
			if revs > maxRevs || (i > 0 && size >= maxBytes) {
				return i
			}
		}
		size += eventBytes(evs[i])
	}
	return len(evs)
}

// eventBytes is the memory an event holds, roughly: its keys and values
// and a fixed overhead (bytes).
func eventBytes(ev *mvccpb.Event) int {
	n := 64 + len(ev.Kv.Key) + len(ev.Kv.Value)
	if ev.PrevKv != nil {
		n += 32 + len(ev.PrevKv.Key) + len(ev.PrevKv.Value)
	}
	return n
}

func eventsBytes(evs []*mvccpb.Event) int {
	n := 0
	for _, ev := range evs {
		n += eventBytes(ev)
	}
	return n
}
