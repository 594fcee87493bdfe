package api

import (
	"bytes"
	"io"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/watch"
)

type fakeWatchable struct{}

func (fakeWatchable) Header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: rev, RaftTerm: 3}
}

func (fakeWatchable) NewWatchStream() *watch.Stream { return nil }

// sentWatch records what a watch stream sends.
type sentWatch struct {
	grpc.ServerStream
	sent []*pb.WatchResponse
}

func (s *sentWatch) Send(r *pb.WatchResponse) error {
	s.sent = append(s.sent, r)
	return nil
}

func (s *sentWatch) Recv() (*pb.WatchRequest, error) { return nil, io.EOF }

// The hub hands the same events to every watcher: stripping prev_kv for
// one must not change them for the others.
func TestForwardStripsPrevKVOnACopy(t *testing.T) {
	ev := &mvccpb.Event{Type: mvccpb.Event_PUT,
		Kv:     &mvccpb.KeyValue{Key: []byte("k"), Value: []byte("2"), ModRevision: 5, CreateRevision: 4, Version: 2},
		PrevKv: &mvccpb.KeyValue{Key: []byte("k"), Value: []byte("1"), ModRevision: 4, CreateRevision: 4, Version: 1}}
	gs := &sentWatch{}
	ws := &watchStream{srv: &watchServer{w: fakeWatchable{}, maxRequestBytes: 1 << 20}, gs: gs, progress: map[int64]bool{}}
	for _, prevKV := range []bool{false, true} {
		if err := ws.forward(watch.Response{WatchID: 1, Events: []*mvccpb.Event{ev}, Revision: 5, PrevKV: prevKV}); err != nil {
			t.Fatal(err)
		}
	}
	if ev.PrevKv == nil {
		t.Fatal("forward cleared the shared event's PrevKv")
	}
	if len(gs.sent) != 2 {
		t.Fatalf("sent %d responses, want 2", len(gs.sent))
	}
	without, with := gs.sent[0].Events[0], gs.sent[1].Events[0]
	if want := (&mvccpb.Event{Type: ev.Type, Kv: ev.Kv}); !proto.Equal(without, want) {
		t.Errorf("without prev_kv: got %v, want %v", without, want)
	}
	if !proto.Equal(with, ev) {
		t.Errorf("with prev_kv: got %v, want %v", with, ev)
	}
	if got := gs.sent[0].GetHeader().GetRevision(); got != 5 {
		t.Errorf("header revision: got %d, want 5", got)
	}
}

func TestSendFragments(t *testing.T) {
	var evs []*mvccpb.Event
	for i := range 3 {
		evs = append(evs, &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte{'k', byte('0' + i)}, Value: bytes.Repeat([]byte("v"), 100), ModRevision: 7}})
	}
	r := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 7}, WatchId: 4, Events: evs}
	// Room for one event per response, not two.
	limit := uint(proto.Size(&pb.WatchResponse{Header: r.Header, WatchId: 4, Fragment: true, Events: evs[:2]}) - 1)
	var sent []*pb.WatchResponse
	if err := sendFragments(r, limit, func(p *pb.WatchResponse) error {
		sent = append(sent, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 3 {
		t.Fatalf("sent %d responses, want 3", len(sent))
	}
	for i, p := range sent {
		if want := i < 2; p.Fragment != want {
			t.Errorf("response %d: fragment got %v, want %v", i, p.Fragment, want)
		}
		if len(p.Events) != 1 || p.Events[0] != evs[i] {
			t.Errorf("response %d: got events %v, want [%v]", i, p.Events, evs[i])
		}
		if p.WatchId != 4 || !proto.Equal(p.Header, r.Header) {
			t.Errorf("response %d: got watch %d header %v, want 4 %v", i, p.WatchId, p.Header, r.Header)
		}
	}
	if len(r.Events) != 3 || r.Fragment {
		t.Errorf("sendFragments changed its input: %v", r)
	}

	// Under the limit: sent as is.
	sent = nil
	if err := sendFragments(r, uint(proto.Size(r))+1, func(p *pb.WatchResponse) error {
		sent = append(sent, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0] != r {
		t.Errorf("under the limit: sent %v, want the response itself", sent)
	}
}
