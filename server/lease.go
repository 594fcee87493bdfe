package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/transport"
)

const (
	// leaseRevokeRate bounds expiry revokes per second, as etcd's.
	leaseRevokeRate = 1000
	// leaseCheckpointBatch is the most checkpoints in one proposal.
	leaseCheckpointBatch = 1000
	// leaderDutyTick is how often the leader looks for expired leases.
	leaderDutyTick = 100 * time.Millisecond
	// checkpointTick is how often the leader records remaining TTLs.
	checkpointTick = time.Second
	// applyWaitTimeout bounds how long a keep-alive waits for the member to
	// apply what was committed when it arrived: etcd's applyTimeout.
	applyWaitTimeout = time.Second
)

// minLeaseTTL is etcd's minimum TTL: 1.5 election timeouts, in whole
// seconds rounded up, so a lease outlives a leader election.
func (c *Config) minLeaseTTL() int64 {
	minTTL := time.Duration((3*c.ElectionTicks)/2) * c.TickInterval
	return int64(math.Ceil(minTTL.Seconds()))
}

// LeaseGrant replicates a grant; ID 0 asks the member to choose one (a
// positive int64, as etcd).
func (m *Member) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	m.syncLessorRole()
	if err := m.checkQuota(); err != nil {
		return nil, err
	}
	for r.ID == lease.NoLease {
		r.ID = int64(m.ids.next() & (1<<63 - 1))
	}
	// The effective TTL is decided here, at propose time, and carried in
	// the entry: apply stores it as is, so members whose
	// --election-timeout differ still store the same TTL.
	if minTTL := m.cfg.minLeaseTTL(); r.TTL < minTTL {
		r = proto.Clone(r).(*pb.LeaseGrantRequest)
		r.TTL = minTTL
	}
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{LeaseGrant: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.LeaseGrantResponse), nil
}

// LeaseRevoke replicates a revoke: the lease's keys are deleted in one revision.
func (m *Member) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.LeaseRevokeResponse), nil
}

// LeaseRenew restarts a lease's TTL and returns it, in seconds. A renewal
// is not written through Raft, except once after a checkpoint, to clear the
// recorded remaining TTL. A follower forwards it to the leader.
func (m *Member) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	if err := m.alive(); err != nil {
		return 0, err
	}
	if leader, local := m.leaseLeader(); !local {
		ttl, err := m.transport.LeaseRenew(ctx, leader, id)
		return ttl, m.forwardedErr(err)
	}
	return m.leaseRenewLocal(ctx, id)
}

// leaseLeader tells who answers lease requests: this member (local) when
// it leads or no leader is known (the request then fails as etcd's would).
func (m *Member) leaseLeader() (leader uint64, local bool) {
	if m.syncLessorRole() {
		return m.cluster.LocalID, true
	}
	lead := m.node.Status().Lead
	return lead, lead == 0 || lead == m.cluster.LocalID
}

func (m *Member) forwardedErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, transport.ErrLeaseNotFound):
		return lease.ErrLeaseNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return ErrNoLeader
}

// leaseRenewLocal renews a lease on the leader, for a client or for a
// follower that forwarded the keep-alive. A lease the lessor does not know
// may have its grant committed and not yet applied here (granted through
// another member, or just before an election), so the renewal first waits
// until the member has applied everything committed; with the
// FastLeaseKeepAlive gate off, every renewal waits, as etcd's did before
// 3.7. (etcd's peer handler waits for forwarded keep-alives whatever the
// gate; Cairn applies the gate to them too, since a forwarded keep-alive
// needs the wait no more than a local one.) A keep-alive that reaches a
// member elected so recently that its lessor is not yet primary waits too,
// then renews.
func (m *Member) leaseRenewLocal(ctx context.Context, id int64) (int64, error) {
	if !m.ensureLeadership(ctx) {
		return 0, lease.ErrNotPrimary
	}
	waited := !featureEnabled(m.cfg.FeatureGates, FastLeaseKeepAlive) || !m.lessor.LeaseExists(id)
	if waited {
		if err := m.waitAppliedIndex(ctx); err != nil {
			return 0, err
		}
	}
	m.syncLessorRole()
	for {
		ttl, needsReset, wait, err := m.lessor.Renew(id)
		if errors.Is(err, lease.ErrNotPrimary) && !waited && m.node.Status().Lead == m.cluster.LocalID {
			// Just elected: the lessor becomes primary once this member
			// has applied what was committed before (syncLessorRole), so
			// wait for that, as the gate-off path would have.
			waited = true
			if err := m.waitAppliedIndex(ctx); err != nil {
				return 0, err
			}
			m.syncLessorRole()
			continue
		}
		if wait != nil {
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-m.stopping:
				return 0, ErrStopped
			}
		}
		if err != nil || !needsReset {
			return ttl, err
		}
		cp := &pb.LeaseCheckpointRequest{Checkpoints: []*pb.LeaseCheckpoint{{ID: id, Remaining_TTL: 0}}}
		if _, err := m.propose(ctx, &pb.InternalRaftRequest{LeaseCheckpoint: cp}); err != nil {
			return 0, err
		}
	}
}

// waitAppliedIndex waits until the member has applied every entry
// committed when it was called, for at most applyWaitTimeout; past that it
// fails with ErrTimeoutReadIndex, etcd's "waiting for the applied index
// took too long" (etcd's EtcdServer.waitAppliedIndex).
func (m *Member) waitAppliedIndex(ctx context.Context) error {
	commit := m.node.Status().Commit
	if m.applied.Get() >= commit {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, applyWaitTimeout)
	defer cancel()
	if m.applied.Wait(wctx.Done(), commit) {
		return nil
	}
	select {
	case <-m.stopping:
		return ErrStopped
	default:
	}
	if ctx.Err() != nil {
		return m.ctxErr(ctx, ctx.Err())
	}
	return ErrTimeoutReadIndex
}

// exceedsRequestLimit reports whether a proposal must fail with
// ErrTooManyRequests because the apply backlog (committed minus applied
// entries) is too long: over maxGapBetweenApplyAndCommitIndex, or, for a
// lease revoke with the PriorityRequest gate on, over twice that, so
// leases keep expiring and freeing their keys under overload. This is
// etcd 3.7.4's exceedsRequestLimit (etcdserver/util.go).
func exceedsRequestLimit(applied, committed uint64, req *pb.InternalRaftRequest, priority bool) bool {
	if committed <= applied+maxGapBetweenApplyAndCommitIndex {
		return false
	}
	if priority && req.GetLeaseRevoke() != nil {
		return committed > applied+2*maxGapBetweenApplyAndCommitIndex
	}
	return true
}

// LeaseTimeToLive reports a lease's remaining TTL (whole seconds), granted
// TTL and, if asked, its keys in key order.
func (m *Member) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := m.alive(); err != nil {
		return nil, err
	}
	if leader, local := m.leaseLeader(); !local {
		resp, err := m.transport.LeaseTimeToLive(ctx, leader, r)
		return resp, m.forwardedErr(err)
	}
	return m.leaseTimeToLiveLocal(ctx, r)
}

func (m *Member) leaseTimeToLiveLocal(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	m.syncLessorRole()
	l, ok := m.lessor.Lookup(r.ID)
	if !ok {
		return nil, lease.ErrLeaseNotFound
	}
	left, _ := m.lessor.Remaining(r.ID)
	resp := &pb.LeaseTimeToLiveResponse{Header: &pb.ResponseHeader{}, ID: r.ID, TTL: int64(left.Seconds()), GrantedTTL: l.TTL}
	if r.Keys {
		keys, err := lease.Keys(m.eng.DB, r.ID)
		if err != nil {
			return nil, err
		}
		resp.Keys = keys
	}
	return resp, nil
}

// LeaseLeases lists the leases.
func (m *Member) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if leader, local := m.leaseLeader(); !local {
		resp, err := m.transport.LeaseLeases(ctx, leader)
		return resp, m.forwardedErr(err)
	}
	return m.leaseLeasesLocal(ctx)
}

func (m *Member) leaseLeasesLocal(ctx context.Context) (*pb.LeaseLeasesResponse, error) {
	m.syncLessorRole()
	ls := m.lessor.Leases()
	resp := &pb.LeaseLeasesResponse{Header: &pb.ResponseHeader{}, Leases: make([]*pb.LeaseStatus, len(ls))}
	for i, l := range ls {
		resp.Leases[i] = &pb.LeaseStatus{ID: l.ID}
	}
	return resp, nil
}

// leaderLoop runs the leader's lease duties: promote the lessor when this
// member leads (extending every expiry by an election timeout, as etcd),
// revoke expired leases at a bounded rate, and checkpoint remaining TTLs.
func (m *Member) leaderLoop() {
	defer m.wg.Done()
	tick := time.NewTicker(leaderDutyTick)
	defer tick.Stop()
	lastCheckpoint := time.Now()
	revoking := map[int64]time.Time{} // lease -> when its revoke was proposed
	sem := make(chan struct{}, 64)    // revokes in flight
	for {
		select {
		case <-m.stopping:
			return
		case <-tick.C:
		case <-m.node.LeaderChanged():
		}
		if !m.syncLessorRole() {
			continue
		}
		now := time.Now()
		budget := int(leaseRevokeRate * leaderDutyTick / time.Second)
		for _, id := range m.lessor.Expired(budget + len(revoking)) {
			if t, ok := revoking[id]; ok && now.Sub(t) < m.cfg.reqTimeout() {
				continue
			}
			if budget == 0 {
				break
			}
			budget--
			revoking[id] = now
			m.goRevoke(id, sem)
		}
		for id, t := range revoking {
			if now.Sub(t) >= m.cfg.reqTimeout() || !m.lessor.LeaseExists(id) {
				delete(revoking, id)
			}
		}
		if now.Sub(lastCheckpoint) >= checkpointTick {
			lastCheckpoint = now
			m.checkpointLeases()
		}
	}
}

// SyncLeaderDuties brings the leader's duties (the primary lessor) in line
// with the current leadership at once; embed calls it before announcing
// that the member is ready.
func (m *Member) SyncLeaderDuties() { m.syncLessorRole() }

// syncLessorRole makes the lessor primary while this member leads and not
// otherwise, and reports whether it leads. The leader loop calls it every
// tick; requests that need a primary call it too, so they do not wait for
// the tick after an election.
func (m *Member) syncLessorRole() bool {
	m.lessorRoleMu.Lock()
	defer m.lessorRoleMu.Unlock()
	st := m.node.Status()
	leader := st.Lead == m.cluster.LocalID
	switch {
	case leader && !m.lessor.IsPrimary():
		// Only once everything committed is applied: expiries come from
		// the leases' state, which the log replay after a restart (or the
		// apply backlog of a new leader) may still be changing.
		if m.applied.Get() < st.Commit {
			return false
		}
		m.lessor.Promote(m.leaseExtend())
	case !leader && m.lessor.IsPrimary():
		m.lessor.Demote()
	}
	return leader
}

// goRevoke proposes the revoke of an expired lease without holding up the loop.
func (m *Member) goRevoke(id int64, sem chan struct{}) {
	select {
	case sem <- struct{}{}:
	case <-m.stopping:
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() { <-sem }()
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.reqTimeout())
		defer cancel()
		_, err := m.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
		if err != nil && !errors.Is(err, lease.ErrLeaseNotFound) && !errors.Is(err, ErrStopped) {
			m.lg.Warn("failed to revoke expired lease", "lease", id, "error", err)
		}
	}()
}

func (m *Member) checkpointLeases() {
	due := m.lessor.CheckpointDue(leaseCheckpointBatch)
	if len(due) == 0 {
		return
	}
	cp := &pb.LeaseCheckpointRequest{}
	ids := make([]int64, 0, len(due))
	for id, left := range due {
		cp.Checkpoints = append(cp.Checkpoints, &pb.LeaseCheckpoint{ID: id, Remaining_TTL: left})
		ids = append(ids, id)
	}
	defer m.lessor.CheckpointDone(ids)
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.reqTimeout())
	defer cancel()
	if _, err := m.propose(ctx, &pb.InternalRaftRequest{LeaseCheckpoint: cp}); err != nil && !errors.Is(err, lease.ErrLeaseNotFound) && !errors.Is(err, ErrStopped) {
		m.lg.Warn("failed to checkpoint leases", "count", len(cp.Checkpoints), "error", err)
	}
}

// ensureLeadership confirms, as etcd's (since 3.5.13), that a member that
// believes it leads still does before it renews a lease: a leader that was
// paused (its Raft loop has not ticked for three ticks) may have been
// deposed without knowing it, and a keep-alive it acknowledged would be one
// the real leader never saw, so the lease could expire early. It then does
// a linearizable read (a quorum round) and checks the leader again. A
// member that does not believe it leads answers true: Renew refuses it.
func (m *Member) ensureLeadership(ctx context.Context) bool {
	if m.node.Status().Lead != m.cluster.LocalID {
		return true
	}
	if time.Since(m.node.LastTick()) < 3*m.cfg.TickInterval {
		return true
	}
	if err := m.linearizableReadNotify(ctx); err != nil {
		m.lg.Warn("failed to check current member's leadership", "error", err)
		return false
	}
	if lead := m.node.Status().Lead; lead != m.cluster.LocalID {
		m.lg.Warn("current member isn't a leader", "new-lead", fmt.Sprintf("%x", lead))
		return false
	}
	return true
}
