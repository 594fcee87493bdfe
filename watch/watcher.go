package watch

import (
	"bytes"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/pkg/adt"
)

// watcherState is where a watcher is in the hub (see Hub).
type watcherState uint8

const (
	stateNew watcherState = iota
	stateSynced
	stateUnsynced
	stateParked
	stateRemoved
)

// watcher is one watch.
type watcher struct {
	id       int64
	key, end []byte // end nil: key alone; empty: every key >= key
	startRev int64
	// minRev is the next revision to deliver. A synced watcher's belongs to
	// the notifier (under Hub.mu); an unsynced one's to the catch-up loop.
	minRev   int64
	noPut    bool
	noDelete bool
	prevKV   bool
	stream   *Stream
	state    watcherState         // guarded by Hub.mu
	entry    *adt.Entry[*watcher] // a synced range watcher's place in the tree
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

// group indexes synced watchers: point watchers by key, range watchers in
// an interval tree, so matching a key costs O(log ranges + matches).
type group struct {
	points map[string]map[*watcher]struct{}
	ranges adt.Tree[*watcher]
}

func newGroup() group {
	return group{points: map[string]map[*watcher]struct{}{}}
}

func (g *group) add(w *watcher) {
	if !w.isPoint() {
		w.entry = g.ranges.Insert(adt.Interval{Begin: w.key, End: w.end}, w)
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
		if w.entry != nil {
			g.ranges.Delete(w.entry)
			w.entry = nil
		}
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
	g.ranges.Visit(func(e *adt.Entry[*watcher]) { out = append(out, e.Value) })
	return out
}

func (g *group) match(key []byte, fn func(*watcher)) {
	for w := range g.points[string(key)] {
		fn(w)
	}
	g.ranges.Stab(key, func(e *adt.Entry[*watcher]) { fn(e.Value) })
}
