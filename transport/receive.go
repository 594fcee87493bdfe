package transport

import (
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// recv steps the messages a peer streams to us (see receive).
func (t *Transport) recv(s grpc.ServerStream) error {
	from, err := t.sender(s.Context())
	if err != nil {
		return err
	}
	for {
		var b blob
		if err := s.RecvMsg(&b); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := t.receive(from, b.b); err != nil {
			t.lg.Warn("refusing a peer's message stream", "from", fmt.Sprintf("%x", from), "error", err)
			return err
		}
	}
}

// receive decodes one Raft message streamed by member from and steps it.
// A message must come from its stream's sender, to this member, and be one
// that Raft exchanges between members; a snapshot never comes this way (it
// has its own stream: Snapshot), nor does a message Raft keeps local.
func (t *Transport) receive(from uint64, b []byte) error {
	m := &raftpb.Message{}
	if err := proto.Unmarshal(b, m); err != nil {
		return status.Errorf(codes.InvalidArgument, "transport: bad Raft message: %v", err)
	}
	switch {
	case m.GetFrom() != from:
		return status.Errorf(codes.InvalidArgument, "transport: a message from %x on the stream of %x", m.GetFrom(), from)
	case m.GetTo() != t.id:
		return status.Errorf(codes.InvalidArgument, "transport: a message to %x sent to %x", m.GetTo(), t.id)
	case !peerMessage(m.GetType()):
		return status.Errorf(codes.InvalidArgument, "transport: %s is not accepted on the message stream", m.GetType())
	}
	if t.h.IsRemoved != nil && t.h.IsRemoved(from) {
		return status.Error(codes.PermissionDenied, "the member has been permanently removed from the cluster")
	}
	if t.h.ReceivedBytes != nil {
		t.h.ReceivedBytes(from, len(b))
	}
	t.h.Step(m)
	return nil
}

// peerMessage reports whether members send messages of type typ to each
// other on the message stream (raft's non-local messages, but MsgSnap).
func peerMessage(typ raftpb.MessageType) bool {
	switch typ {
	case raftpb.MsgApp, raftpb.MsgAppResp, raftpb.MsgVote, raftpb.MsgVoteResp,
		raftpb.MsgPreVote, raftpb.MsgPreVoteResp, raftpb.MsgHeartbeat, raftpb.MsgHeartbeatResp,
		raftpb.MsgProp, raftpb.MsgTransferLeader, raftpb.MsgTimeoutNow,
		raftpb.MsgReadIndex, raftpb.MsgReadIndexResp:
		return true
	}
	return false
}
