package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchSpec is one watcher on a rawStream: a key alone (end "") or the
// range [key, end), and how many events it must get.
type watchSpec struct {
	key, end string
	want     int
}

func (w watchSpec) covers(key []byte) bool {
	if w.end == "" {
		return string(key) == w.key
	}
	return bytes.Compare(key, []byte(w.key)) >= 0 && bytes.Compare(key, []byte(w.end)) < 0
}

// rawStream is one gRPC watch stream driven without clientv3's watcher, so
// the client holds nothing per watcher but a count. Watcher i has watch ID
// i and watches specs[i]; a receive loop counts and checks their events.
type rawStream struct {
	ws    pb.Watch_WatchClient
	specs []watchSpec

	created   chan int64 // watch IDs, as their created responses arrive
	canceled  chan int64
	allEvents chan struct{} // closed when the stream has want events
	want      int64
	events    atomic.Int64
	broken    chan struct{} // closed when Recv failed, after recvErr is set
	recvErr   error

	// Owned by the receive loop until allEvents is closed.
	counts  []int
	lastRev []int64
	errs    []string
}

// probeID is the watch ID of the watcher that openRawStream creates and
// cancels; specs must be fewer.
const probeID = 1 << 20

// openRawStream opens a watch stream on cli's connection and makes sure
// the member serves it (with a watcher it creates and cancels), so the
// stream's own cost is in the heap before any watcher is created.
func openRawStream(b *testing.B, ctx context.Context, cli *clientv3.Client, specs []watchSpec) *rawStream {
	b.Helper()
	ws, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	r := &rawStream{ws: ws, specs: specs, created: make(chan int64, len(specs)+1), canceled: make(chan int64, 1),
		allEvents: make(chan struct{}), broken: make(chan struct{}),
		counts: make([]int, len(specs)), lastRev: make([]int64, len(specs))}
	for _, s := range specs {
		r.want += int64(s.want)
	}
	go r.recv()
	r.send(b, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("probe"), WatchId: probeID}}})
	if id := r.await(b, r.created); id != probeID {
		b.Fatalf("created watch %d, want %d", id, probeID)
	}
	r.send(b, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: probeID}}})
	r.await(b, r.canceled)
	return r
}

// createWatchers sends a create request for every spec.
func (r *rawStream) createWatchers(b *testing.B) {
	b.Helper()
	for i, s := range r.specs {
		cr := &pb.WatchCreateRequest{Key: []byte(s.key), WatchId: int64(i)}
		if s.end != "" {
			cr.RangeEnd = []byte(s.end)
		}
		r.send(b, &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}})
	}
}

// waitCreated waits for every spec's created response.
func (r *rawStream) waitCreated(b *testing.B) {
	b.Helper()
	for range r.specs {
		r.await(b, r.created)
	}
}

// waitEvents waits until the stream has all its events.
func (r *rawStream) waitEvents(b *testing.B, deadline <-chan time.Time) {
	b.Helper()
	select {
	case <-r.allEvents:
	case <-r.broken:
		b.Fatalf("watch stream: %v after %d events of %d", r.recvErr, r.events.Load(), r.want)
	case <-deadline:
		b.Fatalf("watch stream: %d events of %d after %v", r.events.Load(), r.want, eventsTimeout)
	}
}

// await returns the next watch ID from ch (created or canceled).
func (r *rawStream) await(b *testing.B, ch chan int64) int64 {
	b.Helper()
	select {
	case id := <-ch:
		return id
	case <-r.broken:
		b.Fatalf("watch stream: %v", r.recvErr)
	case <-time.After(eventsTimeout):
		b.Fatalf("watch stream: no answer after %v", eventsTimeout)
	}
	return 0
}

func (r *rawStream) send(b *testing.B, req *pb.WatchRequest) {
	b.Helper()
	if err := r.ws.Send(req); err != nil {
		b.Fatalf("watch stream: send: %v", err)
	}
}

func (r *rawStream) recv() {
	for {
		resp, err := r.ws.Recv()
		if err != nil {
			r.recvErr = err
			close(r.broken)
			return
		}
		switch {
		case resp.Created:
			r.created <- resp.WatchId
		case resp.Canceled:
			r.canceled <- resp.WatchId
		}
		if len(resp.Events) == 0 {
			continue
		}
		id := resp.WatchId
		if id < 0 || id >= int64(len(r.specs)) {
			r.errs = append(r.errs, fmt.Sprintf("events for unknown watch %d", id))
			continue
		}
		for _, ev := range resp.Events {
			if !r.specs[id].covers(ev.Kv.Key) {
				r.errs = append(r.errs, fmt.Sprintf("watch %d on %q got an event on %q", id, r.specs[id].key, ev.Kv.Key))
			}
			if ev.Kv.ModRevision <= r.lastRev[id] {
				r.errs = append(r.errs, fmt.Sprintf("watch %d got revision %d after %d", id, ev.Kv.ModRevision, r.lastRev[id]))
			}
			r.lastRev[id] = ev.Kv.ModRevision
			r.counts[id]++
		}
		if r.events.Add(int64(len(resp.Events))) == r.want {
			close(r.allEvents)
		}
	}
}

// check runs after allEvents: every watcher got exactly its events, each
// on its key or range, in revision order.
func (r *rawStream) check(b *testing.B) {
	b.Helper()
	for _, e := range r.errs {
		b.Error(e)
	}
	for id, n := range r.counts {
		if n != r.specs[id].want {
			b.Errorf("watch %d on %q: %d events, want %d", id, r.specs[id].key, n, r.specs[id].want)
		}
	}
}
