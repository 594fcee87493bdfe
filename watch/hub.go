package watch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
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
	// revision boundary after about maxEvents, and the last revision read;
	// it returns an error satisfying IsCompacted if from is compacted.
	Events(ctx context.Context, from, to int64, maxEvents int) ([]*mvccpb.Event, int64, error)
	CompactRev() int64
}

// Config tunes a Hub. The zero value is valid.
type Config struct {
	// IsCompacted tells whether an error from Source.Events means the
	// revision was compacted.
	IsCompacted func(error) bool
	// StreamBuffer is how many responses a stream queues before its
	// watchers are parked (default 128, as etcd's chanBufLen; each slot
	// costs about 80 bytes per stream).
	StreamBuffer int
	// CatchUpEvents bounds one catch-up read (default 10000 events).
	CatchUpEvents int
	// CatchUpWatchers bounds the watchers served by one catch-up round (default 512).
	CatchUpWatchers int
	// RetryInterval is how often parked watchers are retried (default 100 ms).
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// Hub holds every watcher of a member.
type Hub struct {
	src Source
	cfg Config
	lg  *slog.Logger

	// mu guards the groups and rev. Notify holds it for a batch's matching
	// only; catch-up reads storage without it.
	mu       sync.Mutex
	rev      int64 // last notified revision
	synced   group
	unsynced map[*watcher]struct{}

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// NewHub starts a hub whose store is at revision rev.
func NewHub(src Source, rev int64, cfg Config) *Hub {
	if cfg.StreamBuffer <= 0 {
		cfg.StreamBuffer = 128
	}
	if cfg.CatchUpEvents <= 0 {
		cfg.CatchUpEvents = 10000
	}
	if cfg.CatchUpWatchers <= 0 {
		cfg.CatchUpWatchers = 512
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
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
	h.wg.Add(1)
	go h.catchUpLoop()
	return h
}

// Close stops the catch-up loop and waits for it.
func (h *Hub) Close() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.wg.Wait()
}

// Rev is the last notified revision.
func (h *Hub) Rev() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

// Restore is for a store whose content was replaced (a snapshot install)
// and is now at revision rev: every watcher catches up from storage from
// its next revision on, as after falling behind.
func (h *Hub) Restore(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.synced.all() {
		// A synced watcher has every event up to h.rev.
		w.minRev = max(w.minRev, h.rev+1)
		h.synced.remove(w)
		h.unsynced[w] = struct{}{}
	}
	h.rev = rev
	h.kickLocked()
}

// Notify hands the events of an applied batch, in revision order, to the
// synced watchers; rev is the store revision after the batch. It never
// blocks on a watcher.
func (h *Hub) Notify(rev int64, evs []*mvccpb.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
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

func (h *Hub) notifyRevLocked(rev int64, evs []*mvccpb.Event) {
	matched := map[*watcher][]*mvccpb.Event{}
	for i := range evs {
		h.synced.match(evs[i].Kv.Key, func(w *watcher) {
			if rev >= w.minRev && w.wants(evs[i]) {
				matched[w] = append(matched[w], evs[i])
			}
		})
	}
	for w, wevs := range matched {
		if w.stream.trySend(w, Response{WatchID: w.id, Events: wevs, Revision: rev}) {
			w.minRev = rev + 1
			continue
		}
		// The stream is full: park the watcher at the first revision it missed.
		w.minRev = rev
		h.synced.remove(w)
		h.unsynced[w] = struct{}{}
		h.kickLocked()
	}
}

func (h *Hub) kickLocked() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// add registers w, synced if it starts after the last notified revision.
func (h *Hub) add(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.startRev == 0 || w.startRev > h.rev {
		w.minRev = max(h.rev+1, w.startRev)
		h.synced.add(w)
		return
	}
	w.minRev = w.startRev
	h.unsynced[w] = struct{}{}
	h.kickLocked()
}

// remove unregisters w.
func (h *Hub) remove(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.synced.remove(w)
	delete(h.unsynced, w)
	w.removed = true
}

// progress sends a progress response for id on w's stream if every watcher
// in ws is synced, as etcd's progressIfSync.
func (h *Hub) progress(ws []*watcher, id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	for _, w := range ws {
		if !h.synced.has(w) || h.rev < w.startRev {
			return
		}
	}
	var w *watcher
	if id != InvalidWatchID {
		w = ws[0]
	}
	ws[0].stream.trySend(w, Response{WatchID: id, Revision: h.rev})
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

// catchUpRound reads one chunk of events for a set of unsynced watchers
// and moves those that caught up to synced. It reports whether any watcher
// moved forward and how many remain unsynced.
func (h *Hub) catchUpRound() (progressed bool, left int) {
	h.mu.Lock()
	bound := h.rev
	var ws []*watcher
	minRev := int64(-1)
	for w := range h.unsynced {
		if len(ws) >= h.cfg.CatchUpWatchers {
			break
		}
		ws = append(ws, w)
		if minRev == -1 || w.minRev < minRev {
			minRev = w.minRev
		}
	}
	h.mu.Unlock()
	if len(ws) == 0 {
		return false, 0
	}
	compactRev := h.src.CompactRev()
	var live []*watcher
	for _, w := range ws {
		if w.minRev < compactRev {
			// Its next events are gone: tell the client, as etcd does.
			// Like etcd, the watcher stays on its stream (its ID stays
			// taken and a cancel still answers) but gets nothing more.
			if w.stream.trySend(w, Response{WatchID: w.id, CompactRevision: compactRev}) {
				h.remove(w)
				progressed = true
			}
			continue
		}
		live = append(live, w)
	}
	if len(live) == 0 {
		return progressed, h.unsyncedCount()
	}
	minRev = live[0].minRev
	for _, w := range live {
		minRev = min(minRev, w.minRev)
	}
	var evs []*mvccpb.Event
	last := bound
	if minRev <= bound {
		var err error
		evs, last, err = h.src.Events(context.Background(), minRev, bound, h.cfg.CatchUpEvents)
		if err != nil {
			if !h.cfg.IsCompacted(err) {
				h.lg.Error("watch catch-up read failed", "from", minRev, "error", err)
			}
			return progressed, h.unsyncedCount()
		}
	}
	for _, w := range live {
		if w.minRev > last {
			continue // waits for a future start revision, or nothing new for it
		}
		var wevs []*mvccpb.Event
		for i := range evs {
			if evs[i].Kv.ModRevision >= w.minRev && w.covers(evs[i].Kv.Key) && w.wants(evs[i]) {
				wevs = append(wevs, evs[i])
			}
		}
		next := last + 1
		for len(wevs) > 0 {
			chunk := revisionChunk(wevs, maxRevsPerResponse)
			if !w.stream.trySend(w, Response{WatchID: w.id, Events: wevs[:chunk], Revision: last}) {
				next = wevs[0].Kv.ModRevision // still full; go on from here later
				break
			}
			wevs = wevs[chunk:]
		}
		if next > w.minRev {
			progressed = true
		}
		w.minRev = next
	}
	h.mu.Lock()
	for _, w := range live {
		if _, ok := h.unsynced[w]; ok && w.minRev > h.rev {
			delete(h.unsynced, w)
			h.synced.add(w)
		}
	}
	left = len(h.unsynced)
	h.mu.Unlock()
	return progressed, left
}

// maxRevsPerResponse bounds the revisions in one catch-up response, as
// etcd's watchBatchMaxRevs.
const maxRevsPerResponse = 1000

// revisionChunk is how many of evs (in revision order) make up their
// first max revisions.
func revisionChunk(evs []*mvccpb.Event, max int) int {
	revs := 0
	for i := range evs {
		if i == 0 || evs[i].Kv.ModRevision != evs[i-1].Kv.ModRevision {
			revs++
			if revs > max {
				return i
			}
		}
	}
	return len(evs)
}

func (h *Hub) unsyncedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.unsynced)
}

// watcher is one watch.
type watcher struct {
	id       int64
	key, end []byte // end nil: key alone; empty: every key >= key
	startRev int64
	// minRev is the next revision to deliver. Synced watchers' is guarded
	// by Hub.mu; an unsynced watcher's belongs to the catch-up loop.
	minRev   int64
	noPut    bool
	noDelete bool
	stream   *Stream
	removed  bool
}

func (w *watcher) isPoint() bool { return w.end == nil }

func (w *watcher) covers(key []byte) bool {
	if w.end == nil {
		return bytes.Equal(key, w.key)
	}
	return bytes.Compare(key, w.key) >= 0 && (len(w.end) == 0 || bytes.Compare(key, w.end) < 0)
}

func (w *watcher) wants(ev *mvccpb.Event) bool {
	return !(w.noPut && ev.Type == mvccpb.Event_PUT) && !(w.noDelete && ev.Type == mvccpb.Event_DELETE)
}

// group indexes synced watchers: point watchers by key, range watchers in a list.
type group struct {
	points map[string]map[*watcher]struct{}
	ranges map[*watcher]struct{}
}

func newGroup() group {
	return group{points: map[string]map[*watcher]struct{}{}, ranges: map[*watcher]struct{}{}}
}

func (g *group) add(w *watcher) {
	if !w.isPoint() {
		g.ranges[w] = struct{}{}
		return
	}
	set := g.points[string(w.key)]
	if set == nil {
		set = map[*watcher]struct{}{}
		g.points[string(w.key)] = set
	}
	set[w] = struct{}{}
}

func (g *group) remove(w *watcher) {
	if !w.isPoint() {
		delete(g.ranges, w)
		return
	}
	if set := g.points[string(w.key)]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(g.points, string(w.key))
		}
	}
}

func (g *group) all() []*watcher {
	var out []*watcher
	for _, set := range g.points {
		for w := range set {
			out = append(out, w)
		}
	}
	for w := range g.ranges {
		out = append(out, w)
	}
	return out
}

func (g *group) has(w *watcher) bool {
	if !w.isPoint() {
		_, ok := g.ranges[w]
		return ok
	}
	_, ok := g.points[string(w.key)][w]
	return ok
}

func (g *group) match(key []byte, fn func(*watcher)) {
	for w := range g.points[string(key)] {
		fn(w)
	}
	for w := range g.ranges {
		if w.covers(key) {
			fn(w)
		}
	}
}
