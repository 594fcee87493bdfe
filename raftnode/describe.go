package raftnode

import (
	"fmt"
	"strings"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The short forms of Raft's values in the Raft loop's trace (Config.trace),
// which the interaction tests print.

// tracePersist describes what handleReady has just made durable.
func (n *Node) tracePersist(rd raft.Ready) {
	if len(rd.Entries) == 0 && raft.IsEmptyHardState(rd.HardState) {
		return
	}
	var b strings.Builder
	b.WriteString("persist")
	if hs := rd.HardState; !raft.IsEmptyHardState(hs) {
		fmt.Fprintf(&b, " hs=term:%d,vote:%x,commit:%d", hs.GetTerm(), hs.GetVote(), hs.GetCommit())
	}
	if len(rd.Entries) > 0 {
		b.WriteString(" entries=" + describeEntries(rd.Entries))
	}
	if rd.MustSync {
		b.WriteString(" sync")
	}
	n.cfg.trace(b.String())
}

// describeEntries is "[index/term kind, ...]".
func describeEntries(ents []*raftpb.Entry) string {
	parts := make([]string, len(ents))
	for i, e := range ents {
		parts[i] = fmt.Sprintf("%d/%d %s", e.GetIndex(), e.GetTerm(), describeEntry(e))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func describeEntry(e *raftpb.Entry) string {
	switch e.GetType() {
	case raftpb.EntryConfChangeV2:
		cc := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.Data, cc); err != nil {
			return "conf(bad)"
		}
		return "conf(" + describeConfChange(cc) + ")"
	case raftpb.EntryConfChange:
		cc := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.Data, cc); err != nil {
			return "conf(bad)"
		}
		return "conf(" + describeConfChange(cc.AsV2()) + ")"
	}
	if len(e.Data) == 0 {
		return "empty"
	}
	return fmt.Sprintf("%q", e.Data)
}

// describeConfChange is "add 4, learner 5, remove 3" ("leave-joint" for
// none).
func describeConfChange(cc *raftpb.ConfChangeV2) string {
	if len(cc.Changes) == 0 {
		return "leave-joint"
	}
	parts := make([]string, len(cc.Changes))
	for i, c := range cc.Changes {
		op := map[raftpb.ConfChangeType]string{
			raftpb.ConfChangeAddNode: "add", raftpb.ConfChangeAddLearnerNode: "learner",
			raftpb.ConfChangeRemoveNode: "remove", raftpb.ConfChangeUpdateNode: "update",
		}[c.GetType()]
		if c.GetNodeId() == raft.None {
			parts[i] = "no-op"
			continue
		}
		parts[i] = fmt.Sprintf("%s %x", op, c.GetNodeId())
	}
	return strings.Join(parts, ", ")
}

// describeConfState is "voters=(1 2 3) learners=(4)".
func describeConfState(cs *raftpb.ConfState) string {
	ids := func(l []uint64) string {
		s := make([]string, len(l))
		for i, id := range l {
			s[i] = fmt.Sprintf("%x", id)
		}
		return "(" + strings.Join(s, " ") + ")"
	}
	out := "voters=" + ids(cs.GetVoters())
	if len(cs.GetLearners()) > 0 {
		out += " learners=" + ids(cs.GetLearners())
	}
	return out
}

// describeMessage is "from->to type term=T" and what matters for the type.
func describeMessage(m *raftpb.Message) string {
	s := fmt.Sprintf("%x->%x %s term=%d", m.GetFrom(), m.GetTo(), m.GetType(), m.GetTerm())
	switch m.GetType() {
	case raftpb.MsgApp:
		s += fmt.Sprintf(" log=%d/%d commit=%d entries=%s", m.GetIndex(), m.GetLogTerm(), m.GetCommit(), describeEntries(m.Entries))
	case raftpb.MsgAppResp:
		s += fmt.Sprintf(" index=%d", m.GetIndex())
		if m.GetReject() {
			s += fmt.Sprintf(" rejected hint=%d", m.GetRejectHint())
		}
	case raftpb.MsgVote, raftpb.MsgPreVote:
		s += fmt.Sprintf(" log=%d/%d", m.GetIndex(), m.GetLogTerm())
	case raftpb.MsgVoteResp, raftpb.MsgPreVoteResp:
		if m.GetReject() {
			s += " rejected"
		}
	case raftpb.MsgHeartbeat:
		s += fmt.Sprintf(" commit=%d", m.GetCommit())
	case raftpb.MsgSnap:
		s += fmt.Sprintf(" snap=%d/%d", m.GetSnapshot().GetMetadata().GetIndex(), m.GetSnapshot().GetMetadata().GetTerm())
	}
	return s
}
