package server

import (
	"context"
	"errors"
	"net/url"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/apply"
	"github.com/cairn-kv/cairn/membership"
)

// Errors of membership changes, as etcd's.
var (
	ErrLearnerNotReady = errors.New("server: can only promote a learner member which is in sync with leader")
	ErrMemberBadURLs   = errors.New("server: given member URLs are invalid")
	ErrMemberRemoved   = errors.New("server: the member has been permanently removed from the cluster")
	// ErrNotEnoughStartedMembers refuses a change that would leave fewer
	// started voters than a quorum (etcd's --strict-reconfig-check).
	ErrNotEnoughStartedMembers = errors.New("server: re-configuration failed due to not enough started members")
	ErrNotLeader               = errors.New("server: not leader")
	ErrBadLeaderTransferee     = errors.New("server: bad leader transferee")
	ErrTimeoutLeaderTransfer   = errors.New("server: request timed out, leader transfer took too long")
)

// MoveLeader hands leadership to member target (a voter); only the leader
// may be asked, as etcd's. It returns once target leads.
func (m *Member) MoveLeader(ctx context.Context, target uint64) error {
	if m.node.Status().Lead != m.cluster.LocalID {
		return ErrNotLeader
	}
	if mem, ok := m.cluster.Member(target); !ok || mem.IsLearner {
		return ErrBadLeaderTransferee
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.reqTimeout())
	defer cancel()
	if err := m.node.TransferLeader(ctx, target); err != nil {
		return ErrStopped
	}
	for m.node.Status().Lead != target {
		select {
		case <-ctx.Done():
			return ErrTimeoutLeaderTransfer
		case <-time.After(m.cfg.TickInterval):
		}
	}
	return nil
}

// maxLearners is etcd's default --max-learners.
const maxLearners = 1

// learnerReadyPercent is how close to the leader's log a learner must be
// to be promoted, as etcd's readyPercentThreshold.
const learnerReadyPercent = 0.9

// Leader is the current leader's member ID, 0 if there is none.
func (m *Member) Leader() uint64 { return m.node.Status().Lead }

// IsLearner reports whether this member is a learner.
func (m *Member) IsLearner() bool {
	self, ok := m.cluster.Member(m.cluster.LocalID)
	return ok && self.IsLearner
}

// MemberAdd adds a member (a learner if asked) with the given peer URLs and
// returns it and the new member list. Its ID is etcd's: from the peer URLs
// and the time.
func (m *Member) MemberAdd(ctx context.Context, peerURLs []string, isLearner bool) (membership.Member, []membership.Member, error) {
	if err := checkURLs(peerURLs); err != nil {
		return membership.Member{}, nil, err
	}
	nm := membership.Member{ID: membership.AddedMemberID(peerURLs, "", time.Now().Unix()), PeerURLs: peerURLs, IsLearner: isLearner}
	typ := raftpb.ConfChangeAddNode
	if isLearner {
		typ = raftpb.ConfChangeAddLearnerNode
	}
	members, err := m.configure(ctx, membership.Change{Op: "add", Member: nm}, typ)
	return nm, members, err
}

// MemberRemove removes a member.
func (m *Member) MemberRemove(ctx context.Context, id uint64) ([]membership.Member, error) {
	return m.configure(ctx, membership.Change{Op: "remove", Member: membership.Member{ID: id}}, raftpb.ConfChangeRemoveNode)
}

// MemberUpdate changes a member's peer URLs.
func (m *Member) MemberUpdate(ctx context.Context, id uint64, peerURLs []string) ([]membership.Member, error) {
	if err := checkURLs(peerURLs); err != nil {
		return nil, err
	}
	return m.configure(ctx, membership.Change{Op: "update", Member: membership.Member{ID: id, PeerURLs: peerURLs}}, raftpb.ConfChangeUpdateNode)
}

// MemberPromote makes a learner a voter, once it is in sync with the
// leader (checked when this member leads).
func (m *Member) MemberPromote(ctx context.Context, id uint64) ([]membership.Member, error) {
	if match, last, ok := m.node.Progress(ctx); ok {
		if mem, found := m.cluster.Member(id); found && mem.IsLearner && float64(match[id]) < learnerReadyPercent*float64(last) {
			return nil, ErrLearnerNotReady
		}
	}
	return m.configure(ctx, membership.Change{Op: "promote", Member: membership.Member{ID: id}}, raftpb.ConfChangeAddNode)
}

// configure proposes one membership change as a Raft conf change and waits
// until it is applied here. Changes are made one at a time.
func (m *Member) configure(ctx context.Context, ch membership.Change, typ raftpb.ConfChangeType) ([]membership.Member, error) {
	if err := m.alive(); err != nil {
		return nil, err
	}
	m.confMu.Lock()
	defer m.confMu.Unlock()
	if err := m.cluster.Validate(ch, maxLearners); err != nil {
		return nil, err
	}
	if !m.quorumSafe(ch) {
		return nil, ErrNotEnoughStartedMembers
	}
	return m.proposeConfChange(ctx, ch, typ)
}

// proposeConfChange proposes ch, validated on this member's view, and
// waits for the apply loop's verdict: the view may be stale (this member
// lags), so the change is decided again, against the replicated
// membership, when it is applied.
func (m *Member) proposeConfChange(ctx context.Context, ch membership.Change, typ raftpb.ConfChangeType) ([]membership.Member, error) {
	ch.RequestID = m.ids.next()
	cc := &raftpb.ConfChangeV2{
		Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(ch.Member.ID)}},
		Context: ch.Encode(),
	}
	wait := m.waits.Register(ch.RequestID)
	ctx, cancel := context.WithTimeout(ctx, m.cfg.reqTimeout())
	defer cancel()
	if err := m.node.ProposeConfChange(ctx, cc); err != nil {
		m.waits.Cancel(ch.RequestID)
		if ctx.Err() != nil {
			return nil, m.ctxErr(ctx, ctx.Err())
		}
		return nil, ErrNoLeader
	}
	select {
	case r := <-wait:
		if r.Err != nil {
			return nil, r.Err
		}
		return m.cluster.List(), nil
	case <-ctx.Done():
		m.waits.Cancel(ch.RequestID)
		return nil, m.ctxErr(ctx, ctx.Err())
	case <-m.stopping:
		return nil, ErrStopped
	case <-m.dead:
		return nil, ErrStopped
	}
}

// removedStopDelay is how long a removed member keeps running (etcd: 1 s).
const removedStopDelay = time.Second

// afterConfChange brings the transport in line with an applied membership
// change; a member that was removed stops.
func (m *Member) afterConfChange(r apply.Result) {
	ch, ok := r.Resp.(membership.Change)
	if !ok {
		return
	}
	switch ch.Op {
	case "add", "update":
		if mem, ok := m.cluster.Member(ch.Member.ID); ok {
			if err := m.transport.SetPeer(mem.ID, mem.PeerURLs); err != nil {
				m.lg.Warn("cannot reach the new peer", "member", mem.ID, "error", err)
			}
		}
	case "remove":
		if ch.Member.ID == m.cluster.LocalID {
			// Not at once, as etcd: a leader removing itself must still
			// tell the others the removal is committed, or they wait for
			// it forever.
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				select {
				case <-time.After(removedStopDelay):
					m.fail(ErrMemberRemoved)
				case <-m.stopping:
				}
			}()
			return
		}
		m.transport.RemovePeer(ch.Member.ID)
	}
}

func checkURLs(urls []string) error {
	if len(urls) == 0 {
		return ErrMemberBadURLs
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix" && u.Scheme != "unixs") {
			return ErrMemberBadURLs
		}
	}
	return nil
}

// quorumSafe reports whether, after change ch, the started voters (those
// that published their client URLs) still make a quorum, as etcd's strict
// reconfiguration check.
func (m *Member) quorumSafe(ch membership.Change) bool {
	voters, started := 0, 0
	for _, mem := range m.cluster.List() {
		isVoter := !mem.IsLearner
		switch {
		case ch.Op == "remove" && mem.ID == ch.Member.ID:
			continue
		case ch.Op == "promote" && mem.ID == ch.Member.ID:
			isVoter = true
		}
		if isVoter {
			voters++
			if len(mem.ClientURLs) > 0 { // published: it runs
				started++
			}
		}
	}
	if ch.Op == "add" && !ch.Member.IsLearner {
		voters++ // not started yet
	}
	return started >= voters/2+1
}
