package apply

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/storage"
)

// Errors of conf changes rejected at apply time (besides membership's).
var (
	// ErrRemoveLastVoter refuses a change that would leave Raft without a
	// voter (Raft itself panics on it).
	ErrRemoveLastVoter = errors.New("apply: cannot remove the last voting member")
	// ErrBadConfChange refuses a conf change entry whose Raft change does
	// not match the membership change it carries.
	ErrBadConfChange = errors.New("apply: conf change does not match its membership change")
)

// DefaultMaxLearners is etcd's default --max-learners.
const DefaultMaxLearners = 1

// confVerdictKey records, in the meta keyspace, the change handed to Raft
// for the conf change entry at index, so a restart replays Raft's
// configuration exactly as it was decided.
func confVerdictKey(index uint64) []byte {
	return storage.MetaKey(fmt.Sprintf("confverdict/%016x", index))
}

// ConfVerdict reads from r the change the apply loop handed Raft for the
// conf change entry at index; ok is false if none was recorded.
func ConfVerdict(r pebble.Reader, index uint64) (cc *raftpb.ConfChangeV2, ok bool, err error) {
	v, ok, err := storage.GetCopy(r, confVerdictKey(index))
	if err != nil || !ok {
		return nil, false, err
	}
	cc = &raftpb.ConfChangeV2{}
	if err := proto.Unmarshal(v, cc); err != nil {
		return nil, false, fmt.Errorf("apply: corrupt conf change verdict at index %d: %w", index, err)
	}
	return cc, true, nil
}

// noopConfChange is the verdict on a rejected change: a change of node 0,
// which Raft applies as nothing (etcd sets NodeID to raft.None). It is not
// the empty ConfChangeV2, which means "leave the joint configuration".
func noopConfChange() *raftpb.ConfChangeV2 {
	return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{
		Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(0),
	}}}
}

// confChangeFor is the Raft change that makes membership change ch.
func confChangeFor(ch membership.Change) (raftpb.ConfChangeType, bool) {
	switch ch.Op {
	case "add":
		if ch.Member.IsLearner {
			return raftpb.ConfChangeAddLearnerNode, true
		}
		return raftpb.ConfChangeAddNode, true
	case "promote":
		return raftpb.ConfChangeAddNode, true
	case "remove":
		return raftpb.ConfChangeRemoveNode, true
	case "update":
		return raftpb.ConfChangeUpdateNode, true
	}
	return 0, false
}

// applyConfChange decides a committed conf change entry against the
// replicated membership, as etcd's apply loop does: a change that still
// fits is made in the member list and handed to Raft; one that does not
// (proposed on a stale view, say) is handed to Raft as a no-op and its
// proposer gets the error. The verdict is recorded in the batch. The
// Result (ok true) answers the proposer; its Resp is the membership.Change
// so the member can update its peers. A non-nil error is a storage
// failure: the member must stop.
func (a *Applier) applyConfChange(wb *pebble.Batch, e *raftpb.Entry) (res Result, ok bool, verdict *raftpb.ConfChangeV2, err error) {
	ch, cc, rerr := a.decideConfChange(e)
	if rerr != nil {
		verdict = noopConfChange()
		if cc != nil {
			res, ok = Result{ID: ch.RequestID, Err: rerr}, true
		}
	} else {
		if err := a.members.Apply(wb, ch); err != nil {
			return Result{}, false, nil, fmt.Errorf("apply: conf change %d: %w", e.GetIndex(), err)
		}
		verdict, res, ok = cc, Result{ID: ch.RequestID, Resp: ch}, true
	}
	v, err := proto.Marshal(verdict)
	if err != nil {
		return Result{}, false, nil, err
	}
	if err := wb.Set(confVerdictKey(e.GetIndex()), v, nil); err != nil {
		return Result{}, false, nil, err
	}
	return res, ok, verdict, nil
}

// decideConfChange validates entry e. It returns the change and the Raft
// change to apply, or the reason to reject it (cc is then non-nil when the
// entry carried a request someone waits for).
func (a *Applier) decideConfChange(e *raftpb.Entry) (membership.Change, *raftpb.ConfChangeV2, error) {
	if e.GetType() != raftpb.EntryConfChangeV2 {
		return membership.Change{}, nil, ErrBadConfChange // Cairn proposes only V2
	}
	in := &raftpb.ConfChangeV2{}
	if err := proto.Unmarshal(e.Data, in); err != nil || len(in.Context) == 0 {
		return membership.Change{}, nil, ErrBadConfChange
	}
	ch, err := membership.DecodeChange(in.Context)
	if err != nil {
		return membership.Change{}, nil, ErrBadConfChange
	}
	typ, known := confChangeFor(ch)
	cc := &raftpb.ConfChangeV2{
		Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(ch.Member.ID)}},
		Context: in.Context,
	}
	if !known || ch.Member.ID == 0 || in.GetTransition() != raftpb.ConfChangeTransitionAuto || len(in.Changes) != 1 ||
		in.Changes[0].GetType() != typ || in.Changes[0].GetNodeId() != ch.Member.ID {
		return ch, cc, ErrBadConfChange
	}
	maxLearners := a.MaxLearners
	if maxLearners == 0 {
		maxLearners = DefaultMaxLearners
	}
	if err := a.members.Validate(ch, maxLearners); err != nil {
		return ch, cc, err
	}
	if ch.Op == "remove" {
		voters := 0
		for _, m := range a.members.List() {
			if !m.IsLearner && m.ID != ch.Member.ID {
				voters++
			}
		}
		if voters == 0 {
			return ch, cc, ErrRemoveLastVoter
		}
	}
	return ch, cc, nil
}
