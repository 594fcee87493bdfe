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

// Stream is one client watch stream: many watchers, one ordered queue of
// responses, bounded in count (Config.StreamBuffer) and bytes
// (Config.StreamBytes). A reader waits on Ready and takes responses with
// Next until it returns false.
type Stream struct {
	hub *Hub

	ready chan struct{} // signalled when a response is queued
	room  chan struct{} // signalled when a response is taken
	done  chan struct{} // closed by Close

	// parked are the stream's parked watchers; guarded by Hub.mu.
	parked map[*watcher]struct{}

	mu       sync.Mutex
	q        []Response
	qBytes   int // eventsBytes of the queued responses
	wantRoom bool
	watchers map[int64]*watcher
	opts     map[int64]Request
	nextID   int64
	closed   bool
}

// NewStream opens a stream.
func (h *Hub) NewStream() *Stream {
	h.streams.Add(1)
	return &Stream{hub: h, ready: make(chan struct{}, 1), room: make(chan struct{}, 1), done: make(chan struct{}),
		parked: map[*watcher]struct{}{}, watchers: map[int64]*watcher{}, opts: map[int64]Request{}}
}

// Ready is signalled when responses may be waiting for Next.
func (s *Stream) Ready() <-chan struct{} { return s.ready }

// Next takes the next response, if there is one. When it makes room for
// the stream's parked watchers, they start catching up.
func (s *Stream) Next() (Response, bool) {
	s.mu.Lock()
	if len(s.q) == 0 {
		s.mu.Unlock()
		return Response{}, false
	}
	r := s.q[0]
	s.q[0] = Response{}
	s.q = s.q[1:]
	s.qBytes -= eventsBytes(r.Events)
	unpark := false
	if s.wantRoom && s.hasRoomLocked() {
		s.wantRoom, unpark = false, true
	}
	if len(s.q) > 0 {
		signal(s.ready)
	}
	s.mu.Unlock()
	signal(s.room)
	if unpark {
		s.hub.unpark(s)
	}
	return r, true
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// hasRoomLocked tells whether the queue is at most half full, in count
// and bytes: parked watchers resume only then, so they do not go back and
// forth on every response taken.
func (s *Stream) hasRoomLocked() bool {
	return len(s.q) <= s.hub.cfg.StreamBuffer/2 && s.qBytes <= s.hub.cfg.StreamBytes/2
}

// parkLocked records w as parked unless the queue has room again; the
// caller holds Hub.mu. It reports whether w was parked.
func (s *Stream) parkLocked(w *watcher) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hasRoomLocked() {
		return false
	}
	s.wantRoom = true
	s.parked[w] = struct{}{}
	return true
}

// Watch creates a watcher and queues its created response (or, if the
// request is refused, a created-and-canceled response naming the reason).
// It returns the watcher's ID, or InvalidWatchID and the error. The
// created response's revision and the watcher's registration are one
// step: with start revision 0 the watcher gets every event after that
// revision, which is where a client resumes from.
func (s *Stream) Watch(r Request) (int64, error) {
	if len(r.End) != 0 && bytes.Compare(r.Key, r.End) >= 0 {
		return InvalidWatchID, s.refuse(ErrEmptyRange)
	}
	if !s.waitRoom() {
		return InvalidWatchID, ErrEmptyRange
	}
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.Rev()
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
		s.pushLocked(Response{WatchID: InvalidWatchID, Created: true, Canceled: true, CancelReason: ErrDuplicateID.Error(), Revision: cur})
		s.mu.Unlock()
		return InvalidWatchID, ErrDuplicateID
	}
	w := &watcher{id: id, key: r.Key, end: r.End, startRev: r.StartRev, noPut: r.NoPut, noDelete: r.NoDelete, prevKV: r.PrevKV, stream: s}
	s.watchers[id] = w
	s.opts[id] = r
	s.mu.Unlock()
	rev := h.addLocked(w)
	// Under Hub.mu, so the created response is queued before any of the
	// watcher's events.
	s.mu.Lock()
	s.pushLocked(Response{WatchID: id, Created: true, Revision: rev})
	s.mu.Unlock()
	return id, nil
}

// Refuse queues a created-and-canceled response with watch ID -1 for a
// create request the caller refused itself (etcd's answer to a negative
// start revision), in order with the stream's other responses.
func (s *Stream) Refuse(reason string) {
	s.send(Response{WatchID: InvalidWatchID, Created: true, Canceled: true, CancelReason: reason, Revision: s.hub.Rev()})
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
	s.send(Response{WatchID: id, Canceled: true, Revision: s.hub.notifiedRev()})
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

// Close removes every watcher and drops what is queued.
func (s *Stream) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.hub.streams.Add(-1)
	close(s.done)
	ws := s.watchers
	s.watchers = map[int64]*watcher{}
	s.q, s.qBytes = nil, 0
	s.mu.Unlock()
	for _, w := range ws {
		s.hub.remove(w)
	}
}

// waitRoom waits until the queue is below its count bound; false if the
// stream closed. Control responses (created, canceled) wait for it, then
// are queued whatever the bound, so a client that sends requests and
// never reads is held up like etcd's (whose control channel is bounded).
func (s *Stream) waitRoom() bool {
	for {
		s.mu.Lock()
		closed, full := s.closed, len(s.q) >= s.hub.cfg.StreamBuffer
		s.mu.Unlock()
		if closed {
			return false
		}
		if !full {
			return true
		}
		select {
		case <-s.room:
		case <-s.done:
			return false
		}
	}
}

// send queues a control response once there is room; false if the stream closed.
func (s *Stream) send(r Response) bool {
	if !s.waitRoom() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.pushLocked(r)
	return true
}

func (s *Stream) pushLocked(r Response) {
	s.q = append(s.q, r)
	s.qBytes += eventsBytes(r.Events)
	signal(s.ready)
}

// trySend queues watcher w's response if the queue is within its bounds
// (an empty queue takes any response); false if not. A response for a
// watcher no longer on the stream (its ID may since name another) is
// dropped and reported as sent. w is nil for a response that belongs to
// no watcher.
func (s *Stream) trySend(w *watcher, r Response) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	if w != nil {
		if s.watchers[w.id] != w {
			return true
		}
		if o, ok := s.opts[r.WatchID]; ok {
			r.PrevKV, r.Fragment = o.PrevKV, o.Fragment
		}
	}
	size := eventsBytes(r.Events)
	if len(s.q) > 0 && (len(s.q) >= s.hub.cfg.StreamBuffer || s.qBytes+size > s.hub.cfg.StreamBytes) {
		return false
	}
	s.pushLocked(r)
	return true
}
