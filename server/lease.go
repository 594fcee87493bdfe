package server

import (
	"context"
	"errors"
	"math"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/transport"
)

const (
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
