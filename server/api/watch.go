package api

import (
	"errors"
	"io"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/watch"
)

// Watchable is what the Watch service needs from the member.
type Watchable interface {
	Headers
	NewWatchStream() *watch.Stream
}

// DefaultProgressNotifyInterval is etcd's --watch-progress-notify-interval.
const DefaultProgressNotifyInterval = 10 * time.Minute

type watchServer struct {
	pb.UnimplementedWatchServer
	w               Watchable
	maxRequestBytes uint
	progressEvery   time.Duration
	metrics         *watchMetrics
	x               *authn // nil: no auth
}

// Watch serves one watch stream: a receive loop turns requests into
// watchers; a send loop forwards their responses in order.
func (s *watchServer) Watch(gs pb.Watch_WatchServer) error {
	st := s.w.NewWatchStream()
	ws := &watchStream{srv: s, gs: gs, st: st, progress: map[int64]bool{}, stop: make(chan struct{}), sendEnd: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ws.sendLoop()
	}()
	errc := make(chan error, 1)
	go func() {
		// A client that closes its send side keeps receiving events, as
		// with etcd; only a receive error ends the stream.
		if err := ws.recvLoop(); err != nil {
			errc <- err
		}
	}()
	var err error
	select {
	case err = <-errc:
	case <-gs.Context().Done():
		err = gs.Context().Err()
	case <-ws.sendEnd:
	}
	close(ws.stop)
	st.Close()
	wg.Wait()
	return err
}

type watchStream struct {
	srv *watchServer
	gs  pb.Watch_WatchServer
	st  *watch.Stream

	// mu guards progress: watch ID -> whether it had no events since the
	// last progress tick (etcd's per-watcher progress_notify state).
	mu       sync.Mutex
	progress map[int64]bool

	stop    chan struct{}
	sendEnd chan struct{} // closed when the send loop ends
}

// recvLoop reads requests until the client closes its side (nil: the
// stream goes on sending) or the stream fails.
func (ws *watchStream) recvLoop() error {
	for {
		req, err := ws.gs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case req.GetCreateRequest() != nil:
			ws.create(req.GetCreateRequest())
		case req.GetCancelRequest() != nil:
			id := req.GetCancelRequest().WatchId
			if ws.st.Cancel(id) == nil {
				ws.mu.Lock()
				delete(ws.progress, id)
				ws.mu.Unlock()
			}
		case req.GetProgressRequest() != nil:
			ws.st.RequestProgressAll()
		}
	}
}

// permitted is etcd's isWatchPermitted: the caller needs read permission
// on the whole watched range (the key, "\x00" for an empty one, to the
// range end as sent), so a watcher never gets events of keys it may not
// read. The error is the cancel reason etcd sends.
func (ws *watchStream) permitted(key, rangeEnd []byte) error {
	x := ws.srv.x
	if x == nil {
		return nil
	}
	ai, err := x.info(ws.gs.Context())
	if err == nil {
		if ai == nil {
			ai = &auth.Info{}
		}
		err = x.a.AuthStore().IsRangePermitted(ai, key, rangeEnd)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrInvalidAuthToken):
		return rpctypes.ErrGRPCInvalidAuthToken
	case errors.Is(err, auth.ErrAuthOldRevision):
		return rpctypes.ErrGRPCAuthOldRevision
	case errors.Is(err, auth.ErrUserEmpty):
		return rpctypes.ErrGRPCUserEmpty
	default:
		return rpctypes.ErrGRPCPermissionDenied
	}
}

func (ws *watchStream) create(cr *pb.WatchCreateRequest) {
	key, end := cr.Key, cr.RangeEnd
	if len(key) == 0 {
		key = []byte{0}
	}
	switch {
	case len(end) == 0:
		end = nil
	case len(end) == 1 && end[0] == 0:
		end = []byte{}
	}
	if cr.StartRevision < 0 {
		// Through the stream's queue: the send loop is the only sender.
		ws.st.Refuse(rpctypes.ErrCompacted.Error())
		return
	}
	if err := ws.permitted(key, cr.RangeEnd); err != nil {
		ws.st.Refuse(err.Error())
		return
	}
	r := watch.Request{ID: cr.WatchId, Key: key, End: end, StartRev: cr.StartRevision,
		PrevKV: cr.PrevKv, Fragment: cr.Fragment, ProgressNotify: cr.ProgressNotify}
	for _, f := range cr.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			r.NoPut = true
		case pb.WatchCreateRequest_NODELETE:
			r.NoDelete = true
		}
	}
	id, err := ws.st.Watch(r)
	if err == nil && cr.ProgressNotify {
		ws.mu.Lock()
		ws.progress[id] = true
		ws.mu.Unlock()
	}
}

func (ws *watchStream) sendLoop() {
	defer close(ws.sendEnd)
	every := ws.srv.progressEvery
	if every <= 0 {
		every = DefaultProgressNotifyInterval
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ws.st.Ready():
			for {
				r, ok := ws.st.Next()
				if !ok {
					break
				}
				if err := ws.forward(r); err != nil {
					return
				}
			}
		case <-ticker.C:
			start := time.Now()
			ws.mu.Lock()
			for id, idle := range ws.progress {
				if idle {
					ws.st.RequestProgress(id)
				}
				ws.progress[id] = true
			}
			ws.mu.Unlock()
			ws.srv.metrics.observeProgress(start)
		case <-ws.stop:
			return
		}
	}
}

// forward turns a watch.Response into the etcd WatchResponse, fragmenting
// large ones for watchers that asked for it.
func (ws *watchStream) forward(r watch.Response) error {
	start := time.Now()
	out := &pb.WatchResponse{
		Header:          ws.srv.w.Header(r.Revision),
		WatchId:         r.WatchID,
		Created:         r.Created,
		Canceled:        r.Canceled || r.CompactRevision != 0,
		CancelReason:    r.CancelReason,
		CompactRevision: r.CompactRevision,
	}
	if r.Revision == 0 {
		out.Header.Revision = 0 // etcd sends compaction cancels at revision 0
	}
	if len(r.Events) > 0 {
		out.Events = make([]*mvccpb.Event, len(r.Events))
		for i, ev := range r.Events {
			if !r.PrevKV && ev.PrevKv != nil {
				// Events are shared between watchers: strip a copy.
				ev = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
			}
			out.Events[i] = ev
		}
		ws.mu.Lock()
		if _, ok := ws.progress[r.WatchID]; ok {
			ws.progress[r.WatchID] = false
		}
		ws.mu.Unlock()
	}
	if r.Canceled {
		ws.mu.Lock()
		delete(ws.progress, r.WatchID)
		ws.mu.Unlock()
	}
	// Only the send loop sends (refusals go through the stream's queue):
	// gRPC allows one sender per stream at a time.
	var err error
	if !r.Fragment {
		err = ws.gs.Send(out)
	} else {
		// etcd fragments at its gRPC message limit: --max-request-bytes
		// plus the transport overhead.
		err = sendFragments(out, ws.srv.maxRequestBytes+grpcOverheadBytes, ws.gs.Send)
	}
	if err == nil {
		ws.srv.metrics.observeSent(out, start)
	}
	return err
}

// sendFragments splits a response whose size reaches limit into several
// with fragment set on all but the last, each holding at least one event.
func sendFragments(r *pb.WatchResponse, limit uint, send func(*pb.WatchResponse) error) error {
	if uint(proto.Size(r)) < limit || len(r.Events) < 2 {
		return send(r)
	}
	evs := r.Events
	for len(evs) > 0 {
		part := &pb.WatchResponse{
			Header:          r.Header,
			WatchId:         r.WatchId,
			Created:         r.Created,
			Canceled:        r.Canceled,
			CompactRevision: r.CompactRevision,
			CancelReason:    r.CancelReason,
			Fragment:        true,
		}
		n := 0
		for n < len(evs) {
			part.Events = append(part.Events, evs[n])
			if len(part.Events) > 1 && uint(proto.Size(part)) >= limit {
				part.Events = part.Events[:len(part.Events)-1]
				break
			}
			n++
		}
		evs = evs[n:]
		if len(evs) == 0 {
			part.Fragment = false
		}
		if err := send(part); err != nil {
			return err
		}
	}
	return nil
}
