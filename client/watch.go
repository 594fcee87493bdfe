package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/client/internal/backoff"
)

// EventType says what an Event is.
type EventType int

const (
	// EventCreate is a put that created the key (its Version is 1).
	EventCreate EventType = iota + 1
	// EventModify is a put to a key that already existed.
	EventModify
	// EventDelete is a deletion (or the expiry of the key's lease).
	EventDelete
	// EventReset replaces everything the callback knows: Event.State holds
	// every watched key as of Event.Revision. It is delivered first when
	// the watch was started WithInitialState, and whenever the watcher had
	// to resume from a revision the server had compacted away, in which
	// case the individual events in between are lost and
	// Event.CompactRevision says why.
	EventReset
)

// String returns CREATE, MODIFY, DELETE or RESET.
func (t EventType) String() string {
	switch t {
	case EventCreate:
		return "CREATE"
	case EventModify:
		return "MODIFY"
	case EventDelete:
		return "DELETE"
	case EventReset:
		return "RESET"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change seen by a Watcher.
type Event struct {
	// Type says what happened.
	Type EventType
	// KV is the key after the change. For EventDelete only Key and
	// ModRevision (the revision of the deletion) are set. Unset for
	// EventReset.
	KV KeyValue
	// PrevKV is the key before the change, when the watch was started
	// WithPrevKV and the key existed. Unset for EventReset.
	PrevKV *KeyValue
	// Revision is the store revision of the change (KV.ModRevision), or
	// for EventReset the revision State was read at.
	Revision int64
	// LastInRevision is true on the last event of its revision. A Txn
	// changes several keys at one revision; their events are delivered
	// back to back, and a callback that must only act on consistent states
	// waits for this flag. Always true for EventReset.
	LastInRevision bool
	// State is, for EventReset only, every watched key as of Revision, in
	// key order.
	State []KeyValue
	// CompactRevision is, for EventReset only, the compaction that made
	// the watcher start over; 0 for the initial state.
	CompactRevision int64
}

// IsCreate reports whether the event created its key.
func (e Event) IsCreate() bool { return e.Type == EventCreate }

// IsModify reports whether the event changed an existing key. (Unlike
// farseer's WatchEvent.IsModify, it is false for deletions.)
func (e Event) IsModify() bool { return e.Type == EventModify }

// IsDelete reports whether the event deleted its key.
func (e Event) IsDelete() bool { return e.Type == EventDelete }

// IsReset reports whether the event is an EventReset.
func (e Event) IsReset() bool { return e.Type == EventReset }

func eventFromPB(ev *clientv3.Event) Event {
	out := Event{KV: fromPB(ev.Kv), Revision: ev.Kv.ModRevision}
	switch {
	case ev.Type == mvccpb.Event_DELETE:
		out.Type = EventDelete
	case ev.Kv.Version == 1:
		out.Type = EventCreate
	default:
		out.Type = EventModify
	}
	if ev.PrevKv != nil {
		prev := fromPB(ev.PrevKv)
		out.PrevKV = &prev
	}
	return out
}

// A WatchOption changes where and how a watch starts.
type WatchOption func(*watchOptions)

type watchOptions struct {
	startRev     int64
	initialState bool
	prevKV       bool
	onError      func(error)
}

// WithStartRevision starts the watch at rev: every change at rev or later
// is delivered. Use a Range's Revision+1 to continue exactly after a read.
// If rev has been compacted, the watcher starts with an EventReset. By
// default a watch starts after the current revision, read when it starts.
func WithStartRevision(rev int64) WatchOption {
	return func(o *watchOptions) { o.startRev = rev }
}

// WithInitialState makes the first event an EventReset holding the watched
// keys' current state, read atomically with the start of the watch
// (snapshot + watch). It overrides WithStartRevision.
func WithInitialState() WatchOption { return func(o *watchOptions) { o.initialState = true } }

// WithPrevKV fills Event.PrevKV with each key's previous version.
func WithPrevKV() WatchOption { return func(o *watchOptions) { o.prevKV = true } }

// WithErrorHandler calls fn, on the watcher's goroutine, with each error
// that broke the watch before it was re-created (lost leader, a failed
// re-read after compaction...). The watcher keeps going; fn is for logging
// and metrics. Transient disconnects that clientv3 resumes by itself are
// not reported.
func WithErrorHandler(fn func(error)) WatchOption { return func(o *watchOptions) { o.onError = fn } }

// Watcher delivers a key's or a prefix's changes to a callback, in revision
// order, each exactly once, across disconnects and server restarts. Create
// one with Client.Watch or Client.WatchPrefix.
type Watcher struct {
	c      *Client
	key    string
	prefix bool
	opts   watchOptions
	fn     func(Event)
	cancel context.CancelFunc
	done   chan struct{}

	mu struct {
		sync.Mutex
		rev int64 // the last revision delivered (or read, for a reset)
		err error // why the watcher stopped
	}
}

// Watch calls fn with every change to key, one call at a time on the
// watcher's own goroutine, until ctx is done or Stop is called.
//
// The watch starts after the key's current revision (read before Watch
// returns, so any write after Watch returns is seen) unless
// WithStartRevision or WithInitialState say otherwise. If the connection
// breaks, the watch resumes from the revision after the last one delivered,
// so no event is lost or repeated. If that revision was compacted, the
// watcher reads the key afresh and delivers an EventReset with the current
// state, then continues after it.
//
// Watch fails only if the first read fails (ctx expired, server
// unreachable). fn must not call Stop (that waits for fn to return); cancel
// ctx instead. A slow fn delays later events but loses none.
func (c *Client) Watch(ctx context.Context, key string, fn func(Event), opts ...WatchOption) (*Watcher, error) {
	return c.watch(ctx, key, false, fn, opts)
}

// WatchPrefix is Watch for every key that starts with prefix ("" means all
// keys).
func (c *Client) WatchPrefix(ctx context.Context, prefix string, fn func(Event), opts ...WatchOption) (*Watcher, error) {
	return c.watch(ctx, prefix, true, fn, opts)
}

func (c *Client) watch(ctx context.Context, key string, prefix bool, fn func(Event), opts []WatchOption) (*Watcher, error) {
	w := &Watcher{c: c, key: key, prefix: prefix, fn: fn, done: make(chan struct{})}
	for _, o := range opts {
		o(&w.opts)
	}
	var first *Event
	switch {
	case w.opts.initialState:
		reset, err := w.read(ctx, 0)
		if err != nil {
			return nil, err
		}
		first = &reset
		w.mu.rev = reset.Revision
	case w.opts.startRev > 0:
		w.mu.rev = w.opts.startRev - 1
	default:
		resp, err := c.etcd.Get(ctx, key, clientv3.WithCountOnly())
		if err != nil {
			return nil, c.wrap("watch "+key, err)
		}
		w.mu.rev = resp.Header.Revision
	}
	ctx, w.cancel = context.WithCancel(ctx)
	go w.run(ctx, first)
	return w, nil
}

// Stop ends the watch and waits until the callback has returned for the
// last time. It is safe to call more than once, but not from the callback.
func (w *Watcher) Stop() {
	w.cancel()
	<-w.done
}

// Done is closed when the watcher has stopped: its context ended, Stop was
// called, or the Client was closed.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Err says why the watcher stopped: the context's error (context.Canceled
// after Stop), or ErrClosed when the Client was closed. It is nil while the
// watcher runs.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}

// Revision is the revision of the last event delivered (or read, for a
// reset): the watcher resumes after it.
func (w *Watcher) Revision() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.rev
}

// read gets the watched keys' current state as an EventReset.
func (w *Watcher) read(ctx context.Context, compactRev int64) (Event, error) {
	ev := Event{Type: EventReset, LastInRevision: true, CompactRevision: compactRev}
	if w.prefix {
		r, err := w.c.GetPrefix(ctx, w.key)
		if err != nil {
			return Event{}, err
		}
		ev.Revision, ev.State = r.Revision, r.KVs
		return ev, nil
	}
	resp, err := w.c.etcd.Get(ctx, w.key)
	if err != nil {
		return Event{}, w.c.wrap("watch "+w.key, err)
	}
	ev.Revision = resp.Header.Revision
	for _, kv := range resp.Kvs {
		ev.State = append(ev.State, fromPB(kv))
	}
	return ev, nil
}

// errCompacted marks a watch that must start over from a fresh read.
type errCompacted struct{ rev int64 }

func (e errCompacted) Error() string {
	return fmt.Sprintf("required revision has been compacted (compacted at %d)", e.rev)
}

func (w *Watcher) run(ctx context.Context, first *Event) {
	defer close(w.done)
	if first != nil {
		w.fn(*first)
	}
	var bo backoff.Backoff
	var compactRev int64 // non-zero while a reset is owed
	for {
		var err error
		if compactRev != 0 {
			var reset Event
			if reset, err = w.read(ctx, compactRev); err == nil {
				w.setRev(reset.Revision)
				w.fn(reset)
				compactRev = 0
				continue
			}
		} else {
			err = w.stream(ctx, &bo)
			var ce errCompacted
			if errors.As(err, &ce) {
				compactRev = ce.rev
				w.c.lg.Info("watch start revision was compacted; reading the current state",
					"key", w.key, "compact-revision", ce.rev)
				continue
			}
		}
		if w.stopped(ctx) {
			return
		}
		w.c.lg.Warn("watch broken; re-creating it", "key", w.key, "resume-revision", w.Revision()+1, "error", err)
		if w.opts.onError != nil {
			w.opts.onError(err)
		}
		if !bo.Wait(ctx) {
			w.stopped(ctx)
			return
		}
	}
}

// stopped reports whether the watcher must end, recording why.
func (w *Watcher) stopped(ctx context.Context) bool {
	var err error
	switch {
	case w.c.closed():
		err = ErrClosed
	case ctx.Err() != nil:
		err = ctx.Err()
	default:
		return false
	}
	w.mu.Lock()
	w.mu.err = err
	w.mu.Unlock()
	return true
}

func (w *Watcher) setRev(rev int64) {
	w.mu.Lock()
	w.mu.rev = rev
	w.mu.Unlock()
}

// stream runs one clientv3 watch from the revision after the last one
// delivered until it breaks, and returns why. It resets bo once the server
// has accepted the watch.
func (w *Watcher) stream(ctx context.Context, bo *backoff.Backoff) error {
	next := w.Revision() + 1
	opts := []clientv3.OpOption{clientv3.WithRev(next), clientv3.WithCreatedNotify()}
	if w.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if w.opts.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	// Require a leader so that a member cut off from the cluster ends the
	// watch (and we retry elsewhere) instead of going silent.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range w.c.etcd.Watch(wctx, w.key, opts...) {
		if resp.CompactRevision != 0 {
			return errCompacted{resp.CompactRevision}
		}
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Canceled {
			return errors.New("watch canceled by the server")
		}
		if resp.Created {
			bo.Reset()
		}
		evs := resp.Events
		for i, e := range evs {
			if e.Kv.ModRevision < next {
				continue // already delivered before a resume
			}
			ev := eventFromPB(e)
			ev.LastInRevision = i == len(evs)-1 || evs[i+1].Kv.ModRevision != e.Kv.ModRevision
			w.fn(ev)
			if ev.LastInRevision {
				w.setRev(ev.Revision)
			}
		}
		if len(evs) > 0 {
			next = w.Revision() + 1
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("watch channel closed")
}
