package server

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/server/duties"
)

// newDuties builds the leader's duties (server/duties) over this member:
// its lessor, its proposals and its Raft node's leadership.
func (m *Member) newDuties() *duties.Duties {
	return duties.New(duties.Config{
		Lessor:         m.lessor,
		Proposer:       memberProposer{m},
		Leadership:     memberLeadership{m},
		Extend:         m.leaseExtend(),
		RequestTimeout: m.cfg.reqTimeout(),
		Quiet: func(err error) bool {
			return errors.Is(err, lease.ErrLeaseNotFound) || errors.Is(err, ErrStopped)
		},
		Clock:  m.clock,
		Logger: m.lg,
	})
}

// memberProposer proposes through the member, as a client request. An
// expired lease's revoke goes as root, so apply's auth check lets it
// delete the lease's keys (etcd's authStore.WithRoot).
type memberProposer struct{ m *Member }

func (p memberProposer) Propose(ctx context.Context, req *pb.InternalRaftRequest) error {
	if req.LeaseRevoke != nil {
		ctx = p.m.asRoot(ctx)
	}
	_, err := p.m.propose(ctx, req)
	return err
}

// memberLeadership is the member's Raft leadership, as the duties see it.
type memberLeadership struct{ m *Member }

func (l memberLeadership) Leading() bool            { return l.m.node.Status().Lead == l.m.cluster.LocalID }
func (l memberLeadership) CaughtUp() bool           { return l.m.applied.Get() >= l.m.node.Status().Commit }
func (l memberLeadership) Changed() <-chan struct{} { return l.m.node.LeaderChanged() }

// SyncLeaderDuties brings the leader's duties (the primary lessor) in line
// with the current leadership at once; embed calls it before announcing
// that the member is ready.
func (m *Member) SyncLeaderDuties() { m.syncLessorRole() }

// syncLessorRole makes the lessor primary while this member leads and not
// otherwise, and reports whether it leads (duties.Duties.SyncRole).
func (m *Member) syncLessorRole() bool { return m.duties.SyncRole() }

// ensureLeadership is duties.EnsureLeadership for this member: a leader
// whose Raft loop missed ticks confirms it still leads before it renews a
// lease.
func (m *Member) ensureLeadership(ctx context.Context) bool {
	return duties.EnsureLeadership(ctx, leaderCheck{m}, m.clock, m.cfg.TickInterval, m.lg)
}

type leaderCheck struct{ m *Member }

func (c leaderCheck) Lead() uint64                        { return c.m.node.Status().Lead }
func (c leaderCheck) ID() uint64                          { return c.m.cluster.LocalID }
func (c leaderCheck) LastTick() time.Time                 { return c.m.node.LastTick() }
func (c leaderCheck) ReadIndex(ctx context.Context) error { return c.m.linearizableReadNotify(ctx) }
