package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/pkg/codec"
)

const testClusterID = 0xc1

// steps records the messages a transport steps.
type steps struct {
	mu  sync.Mutex
	got []*raftpb.Message
}

func (s *steps) step(m *raftpb.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, m)
}

func (s *steps) list() []*raftpb.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*raftpb.Message(nil), s.got...)
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(codec.Codec{}), grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// withSender names the sender and cluster as a peer does.
func withSender(from, cluster uint64) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(),
		mdFrom, strconv.FormatUint(from, 16), mdClusterID, strconv.FormatUint(cluster, 16))
}

// streamTo sends msgs on a message stream and returns how it ended: nil
// if the member read them all, else its status.
func streamTo(t *testing.T, conn *grpc.ClientConn, ctx context.Context, msgs ...*raftpb.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// As a server stream too, so a clean end reads as io.EOF.
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/"+serviceName+"/Send")
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := s.SendMsg(m); err != nil {
			break // the status comes from RecvMsg
		}
	}
	_ = s.CloseSend()
	err = s.RecvMsg(&blob{})
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func msg(typ raftpb.MessageType, from, to uint64) *raftpb.Message {
	return &raftpb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(1)}
}

// A peer's message stream is accepted only from a member this one knows,
// of its cluster, and carries only messages Raft exchanges between
// members, from that member to this one; anything else ends the stream
// and nothing of it is stepped.
func TestPeerStreamRefusesForeignInput(t *testing.T) {
	var st steps
	addr, _ := serveTransport(t, 2, Handlers{Step: st.step, ClusterID: testClusterID,
		IsRemoved: func(id uint64) bool { return id == 7 }})
	conn := dial(t, addr)
	snap := snapMsg()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		msgs []*raftpb.Message
		code codes.Code
	}{
		{"no metadata", context.Background(), []*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2)}, codes.FailedPrecondition},
		{"another cluster", withSender(1, 0xbad), []*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2)}, codes.FailedPrecondition},
		{"unknown sender", withSender(9, testClusterID), []*raftpb.Message{msg(raftpb.MsgHeartbeat, 9, 2)}, codes.NotFound},
		{"removed sender", withSender(7, testClusterID), []*raftpb.Message{msg(raftpb.MsgHeartbeat, 7, 2)}, codes.PermissionDenied},
		{"forged From", withSender(1, testClusterID), []*raftpb.Message{msg(raftpb.MsgHeartbeat, 3, 2)}, codes.InvalidArgument},
		{"wrong To", withSender(1, testClusterID), []*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 3)}, codes.InvalidArgument},
		{"snapshot on the message stream", withSender(1, testClusterID), []*raftpb.Message{snap}, codes.InvalidArgument},
		{"local message", withSender(1, testClusterID), []*raftpb.Message{msg(raftpb.MsgHup, 1, 2)}, codes.InvalidArgument},
	} {
		err := streamTo(t, conn, tc.ctx, tc.msgs...)
		if status.Code(err) != tc.code {
			t.Errorf("%s: stream ended with %v, want code %v", tc.name, err, tc.code)
		}
	}
	if got := st.list(); len(got) != 0 {
		t.Fatalf("stepped %d refused messages: %v", len(got), got)
	}
	// A member's own messages are stepped, in order.
	if err := streamTo(t, conn, withSender(1, testClusterID), msg(raftpb.MsgHeartbeat, 1, 2), msg(raftpb.MsgApp, 1, 2)); err != nil {
		t.Fatal(err)
	}
	got := st.list()
	if len(got) != 2 || got[0].GetType() != raftpb.MsgHeartbeat || got[1].GetType() != raftpb.MsgApp {
		t.Fatalf("stepped %v, want a heartbeat then an append", got)
	}
}

// Every peer request is bounded: a forwarded lease call carries an ID, and
// a message is at most MaxMessageBytes.
func TestPeerRequestsAreBounded(t *testing.T) {
	var st steps
	addr, _ := serveTransport(t, 2, Handlers{Step: st.step, ClusterID: testClusterID,
		LeaseTimeToLive: func(context.Context, *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
			return &pb.LeaseTimeToLiveResponse{}, nil
		}})
	conn := dial(t, addr)
	ctx, cancel := context.WithTimeout(withSender(1, testClusterID), 10*time.Second)
	defer cancel()
	var resp pb.LeaseTimeToLiveResponse
	if err := conn.Invoke(ctx, "/"+serviceName+"/LeaseTimeToLive", &pb.LeaseTimeToLiveRequest{ID: 5}, &resp); err != nil {
		t.Fatalf("a small lease call: %v", err)
	}
	big := &pb.LeaseTimeToLiveRequest{ID: 5}
	// An unknown field is kept when decoded: the body stays large.
	big.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 100, protowire.BytesType), make([]byte, 64<<10)))
	err := conn.Invoke(ctx, "/"+serviceName+"/LeaseTimeToLive", big, &resp)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a 64 KiB lease call: got %v, want InvalidArgument", err)
	}
	if err := conn.Invoke(withSender(1, 0xbad), "/"+serviceName+"/LeaseTimeToLive", &pb.LeaseTimeToLiveRequest{ID: 5}, &resp); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a lease call from another cluster: got %v, want FailedPrecondition", err)
	}
	huge := msg(raftpb.MsgApp, 1, 2)
	huge.Entries = []*raftpb.Entry{{Data: make([]byte, MaxMessageBytes(4<<20)+1)}}
	if err := streamTo(t, conn, withSender(1, testClusterID), huge); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a message over MaxMessageBytes: got %v, want ResourceExhausted", err)
	}
}

// Peers of one cluster talk: the metadata a transport sends is what the
// other accepts.
func TestPeersOfOneClusterTalk(t *testing.T) {
	var st steps
	addr, _ := serveTransport(t, 2, Handlers{Step: st.step, ClusterID: testClusterID})
	tr := New(1, Handlers{Step: func(*raftpb.Message) {}, ClusterID: testClusterID}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err := tr.SetPeer(2, []string{"http://" + addr}); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2)})
	deadline := time.Now().Add(10 * time.Second)
	for len(st.list()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the heartbeat never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m := st.list()[0]; m.GetType() != raftpb.MsgHeartbeat || m.GetFrom() != 1 {
		t.Fatalf("stepped %v, want member 1's heartbeat", m)
	}
}

// FuzzReceive feeds the peer message handler arbitrary bytes: it must
// never panic, and what it steps is a member-to-member Raft message from
// the stream's sender to this member, never a snapshot. The seed corpus
// runs with every `go test`; `go test -fuzz FuzzReceive ./transport`
// explores further.
func FuzzReceive(f *testing.F) {
	for _, m := range []*raftpb.Message{
		msg(raftpb.MsgApp, 1, 2), msg(raftpb.MsgHeartbeat, 1, 2), msg(raftpb.MsgVote, 1, 2),
		snapMsg(), msg(raftpb.MsgHup, 1, 2), msg(raftpb.MsgApp, 3, 2),
		{Type: raftpb.MsgApp.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Entries: []*raftpb.Entry{{Index: proto.Uint64(1), Data: []byte("x")}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var st steps
		tr := New(2, Handlers{Step: st.step}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		err := tr.receive(1, b)
		got := st.list()
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("refused (%v) but stepped %v", err, got)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("accepted but stepped %d messages", len(got))
		}
		m := got[0]
		if m.GetFrom() != 1 || m.GetTo() != 2 || m.GetType() == raftpb.MsgSnap || !peerMessage(m.GetType()) {
			t.Fatalf("stepped %v", m)
		}
	})
}

// HashKV and ReportCorrupt reach the peer's handlers with the caller's
// authenticated ID; a handler's error comes back with its text (the
// corruption checks tell ErrCompacted apart by it); a sender from another
// cluster is refused before any handler runs.
func TestHashKVAndReportCorrupt(t *testing.T) {
	var reportedBy atomic.Uint64
	addr, _ := serveTransport(t, 2, Handlers{Step: func(*raftpb.Message) {}, ClusterID: testClusterID,
		HashKV: func(_ context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
			if r.Revision == 99 {
				return nil, errors.New("mvcc: required revision has been compacted")
			}
			return &pb.HashKVResponse{Hash: 42, HashRevision: r.Revision}, nil
		},
		CorruptReported: func(_ context.Context, from uint64) error { reportedBy.Store(from); return nil },
	})
	tr := New(1, Handlers{Step: func(*raftpb.Message) {}, ClusterID: testClusterID}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err := tr.SetPeer(2, []string{"http://" + addr}); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tr.HashKV(ctx, 2, &pb.HashKVRequest{Revision: 7})
	if err != nil || resp.Hash != 42 || resp.HashRevision != 7 {
		t.Fatalf("HashKV: %v, %v; want hash 42 at revision 7", resp, err)
	}
	if _, err := tr.HashKV(ctx, 2, &pb.HashKVRequest{Revision: 99}); status.Convert(err).Message() != "mvcc: required revision has been compacted" {
		t.Fatalf("HashKV of a compacted revision: %v, want the handler's error text", err)
	}
	if err := tr.ReportCorrupt(ctx, 2); err != nil || reportedBy.Load() != 1 {
		t.Fatalf("ReportCorrupt: %v, reported by %x; want member 1", err, reportedBy.Load())
	}
	foreign := New(1, Handlers{Step: func(*raftpb.Message) {}, ClusterID: 0xbad}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err := foreign.SetPeer(2, []string{"http://" + addr}); err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	reportedBy.Store(0)
	if err := foreign.ReportCorrupt(ctx, 2); status.Code(err) != codes.FailedPrecondition || reportedBy.Load() != 0 {
		t.Fatalf("ReportCorrupt from another cluster: %v (handler ran for %x), want FailedPrecondition", err, reportedBy.Load())
	}
}
