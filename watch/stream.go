package watch

import (
	"bytes"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// AutoWatchID asks Watch to choose the ID (etcd's clientv3.AutoWatchID);
// InvalidWatchID marks responses that belong to no watcher.
const (
	AutoWatchID    int64 = 0
	InvalidWatchID int64 = -1
)

// Response is one message for a watch stream, in the order it must be sent.
type Response struct {
	WatchID int64
	// Events are in revision order; each may carry PrevKv, which the
	// sender strips unless PrevKV is set.
	Events []*mvccpb.Event
	// Revision is the store revision the response is at (header.revision).
	Revision int64
	// CompactRevision is set when the watcher's next revision was compacted;
	// the watcher is then gone.
	CompactRevision int64

	Created, Canceled bool
	CancelReason      string

	// PrevKV and Fragment are the watcher's options, for the sender.
	PrevKV, Fragment bool
}

// Request describes a new watcher (etcd's WatchCreateRequest, after the
// API layer's key normalization).
type Request struct {
	ID       int64  // AutoWatchID to let the stream choose
	Key, End []byte // End nil: Key alone; empty: every key >= Key
	// StartRev is the first revision to deliver; 0 means after the current one.
	StartRev         int64
	NoPut, NoDelete  bool
	PrevKV, Fragment bool
	ProgressNotify   bool
}

// Stream is one client watch stream: many watchers, one ordered channel of
// responses.
type Stream struct {
	hub *Hub
	ch  chan Response

	mu       sync.Mutex
	watchers map[int64]*watcher
	opts     map[int64]Request
	nextID   int64
	closed   bool
	done     chan struct{}
}

// NewStream opens a stream.
func (h *Hub) NewStream() *Stream {
	return &Stream{hub: h, ch: make(chan Response, h.cfg.StreamBuffer), watchers: map[int64]*watcher{}, opts: map[int64]Request{}, done: make(chan struct{})}
}

// Rev is the hub's last notified revision.
func (s *Stream) Rev() int64 { return s.hub.Rev() }

// Chan delivers the stream's responses in order.
func (s *Stream) Chan() <-chan Response { return s.ch }

// Watch creates a watcher and queues its created response (or, if the
// request is refused, a created-and-canceled response naming the reason).
// It returns the watcher's ID, or InvalidWatchID and the error.
func (s *Stream) Watch(r Request) (int64, error) {
	if len(r.End) != 0 && bytes.Compare(r.Key, r.End) >= 0 {
		return InvalidWatchID, s.refuse(ErrEmptyRange)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return InvalidWatchID, ErrEmptyRange
	}
	id := r.ID
	if id == AutoWatchID {
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		id = s.nextID
		s.nextID++
	} else if _, dup := s.watchers[id]; dup {
		s.mu.Unlock()
		return InvalidWatchID, s.refuse(ErrDuplicateID)
	}
	w := &watcher{id: id, key: r.Key, end: r.End, startRev: r.StartRev, noPut: r.NoPut, noDelete: r.NoDelete, stream: s}
	s.watchers[id] = w
	s.opts[id] = r
	s.mu.Unlock()
	// The created response goes first; the watcher's events can only
	// follow, as it is registered with the hub after.
	if !s.send(Response{WatchID: id, Created: true, Revision: s.hub.Rev()}) {
		return id, nil
	}
	s.hub.add(w)
	return id, nil
}

func (s *Stream) refuse(err error) error {
	s.send(Response{WatchID: InvalidWatchID, Created: true, Canceled: true, CancelReason: err.Error(), Revision: s.hub.Rev()})
	return err
}

// Cancel removes a watcher and queues its canceled response; events queued
// before it stay ahead of it, none follow it.
func (s *Stream) Cancel(id int64) error {
	s.mu.Lock()
	w, ok := s.watchers[id]
	if ok && !s.closed {
		delete(s.watchers, id)
		delete(s.opts, id)
	}
	s.mu.Unlock()
	if !ok {
		return ErrNotExist
	}
	s.hub.remove(w)
	s.send(Response{WatchID: id, Canceled: true, Revision: s.hub.Rev()})
	return nil
}

// Options returns the request a watcher was created with.
func (s *Stream) Options(id int64) (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.opts[id]
	return r, ok
}

// RequestProgress queues a progress response for one watcher if it is synced.
func (s *Stream) RequestProgress(id int64) {
	s.mu.Lock()
	w, ok := s.watchers[id]
	s.mu.Unlock()
	if ok {
		s.hub.progress([]*watcher{w}, id)
	}
}

// RequestProgressAll queues one progress response (watch ID -1) if every
// watcher of the stream is synced.
func (s *Stream) RequestProgressAll() {
	s.mu.Lock()
	ws := make([]*watcher, 0, len(s.watchers))
	for _, w := range s.watchers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	s.hub.progress(ws, InvalidWatchID)
}

// Close removes every watcher. Chan is not closed: the reader stops on its own.
func (s *Stream) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	ws := s.watchers
	s.watchers = map[int64]*watcher{}
	s.mu.Unlock()
	for _, w := range ws {
		s.hub.remove(w)
	}
}

// send queues a control response, waiting for room; false if the stream closed.
func (s *Stream) send(r Response) bool {
	select {
	case s.ch <- r:
		return true
	case <-s.done:
		return false
	}
}

// trySend queues watcher w's response without waiting; false if the
// buffer is full. A response for a watcher no longer on the stream (its ID
// may since name another) is dropped and reported as sent. w is nil for a
// response that belongs to no watcher.
func (s *Stream) trySend(w *watcher, r Response) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w != nil {
		if s.watchers[w.id] != w {
			return true
		}
		if o, ok := s.opts[r.WatchID]; ok {
			r.PrevKV, r.Fragment = o.PrevKV, o.Fragment
		}
	}
	select {
	case s.ch <- r:
		return true
	default:
		return false
	}
}
