// Package duties runs what only the leader does on a schedule: it makes
// the lessor primary while this member leads (extending every lease by an
// election timeout, as etcd), proposes the revoke of each lease whose TTL
// ran out, at a bounded rate, and proposes checkpoints of remaining TTLs,
// so a new leader does not grant a lease its full TTL again. It also holds
// etcd's ensureLeadership check, which a leader runs before it renews a
// lease.
//
// It sees the member only through the narrow interfaces it declares
// (Lessor, Proposer, Leadership) and a clock.Clock, so its tests run on a
// fake clock with fakes of the three, without a Raft group and without
// sleeping. Automatic compaction, the other scheduled leader duty, is
// server/compactor, which takes the same kind of interfaces.
package duties

import (
	"context"
	"log/slog"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/pkg/clock"
)

const (
	// RevokeRate bounds expiry revokes per second, as etcd's
	// leaseRevokeRate.
	RevokeRate = 1000
	// CheckpointBatch is the most checkpoints in one proposal (etcd's
	// maxLeaseCheckpointBatchSize).
	CheckpointBatch = 1000
	// Tick is how often the leader looks for expired leases.
	Tick = 100 * time.Millisecond
	// CheckpointInterval is how often the leader records remaining TTLs.
	CheckpointInterval = time.Second
	// maxRevokesInFlight bounds the revoke proposals waiting for Raft.
	maxRevokesInFlight = 64
)

// Lessor is the leader's view of the leases: lease.Lessor.
type Lessor interface {
	// Promote makes the lessor primary: every lease expires its remaining
	// TTL plus extend from now. Demote stops expiry tracking.
	Promote(extend time.Duration)
	Demote()
	IsPrimary() bool
	// Expired lists up to limit leases whose TTL ran out, earliest first.
	Expired(limit int) []int64
	LeaseExists(id int64) bool
	// CheckpointDue lists up to limit leases due a checkpoint with their
	// remaining TTL in seconds; they count as in flight until
	// CheckpointDone.
	CheckpointDue(limit int) map[int64]int64
	CheckpointDone(ids []int64)
}

// Proposer replicates a request through Raft and waits for its result.
type Proposer interface {
	Propose(ctx context.Context, req *pb.InternalRaftRequest) error
}

// Leadership is what the duties need to know of Raft.
type Leadership interface {
	// Leading reports whether Raft says this member leads. CaughtUp
	// reports whether it has applied everything committed.
	Leading() bool
	CaughtUp() bool
	// Changed receives a value after the leader or this member's role
	// changed (coalesced).
	Changed() <-chan struct{}
}

// Config is what Start needs. Every field but Clock and Logger is required.
type Config struct {
	Lessor     Lessor
	Proposer   Proposer
	Leadership Leadership
	// Extend is how long a newly primary lessor adds to every lease: one
	// election timeout, as etcd.
	Extend time.Duration
	// RequestTimeout bounds each proposal; a revoke not applied within it
	// may be proposed again.
	RequestTimeout time.Duration
	// Quiet reports proposal errors not worth a warning (the lease is
	// gone, the member is stopping). Nil: none.
	Quiet func(error) bool
	// Clock defaults to the real one; Logger to slog.Default().
	Clock  clock.Clock
	Logger *slog.Logger
}

// Duties is the leader's duty loop. Create it with New; SyncRole works at
// once, the loop runs from Start until Stop.
type Duties struct {
	cfg   Config
	clock clock.Clock
	lg    *slog.Logger

	// roleMu serializes promoting and demoting the lessor.
	roleMu sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the loop and the revokes in flight
	sem    chan struct{}  // revokes in flight

	// observe, if set (by tests), is called after each round of the loop.
	observe func(Round)
}

// Round is what one round of the loop did, for tests.
type Round struct {
	Leading    bool
	Revokes    []int64
	Checkpoint bool
}

// New returns the duties of cfg, not yet running.
func New(cfg Config) *Duties {
	d := &Duties{cfg: cfg, clock: clock.OrReal(cfg.Clock), lg: cfg.Logger, sem: make(chan struct{}, maxRevokesInFlight)}
	if d.lg == nil {
		d.lg = slog.Default()
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

// Start runs the loop until Stop.
func (d *Duties) Start() {
	// The ticker and the time are taken before the goroutine starts, so
	// that a fake clock's Advance right after Start reaches them.
	tick, now := d.clock.NewTicker(Tick), d.clock.Now()
	d.wg.Add(1)
	go d.run(tick, now)
}

// Stop ends the loop, cancels the proposals in flight and waits for them.
func (d *Duties) Stop() {
	d.cancel()
	d.wg.Wait()
}

// SyncRole makes the lessor primary while this member leads and not
// otherwise, and reports whether it leads. The lessor becomes primary only
// once everything committed is applied: expiries come from the leases'
// state, which the log replay after a restart (or the apply backlog of a
// new leader) may still be changing. The loop calls it every round;
// requests that need a primary call it too, so they do not wait for the
// round after an election.
func (d *Duties) SyncRole() bool {
	d.roleMu.Lock()
	defer d.roleMu.Unlock()
	leader := d.cfg.Leadership.Leading()
	switch {
	case leader && !d.cfg.Lessor.IsPrimary():
		if !d.cfg.Leadership.CaughtUp() {
			return false
		}
		d.cfg.Lessor.Promote(d.cfg.Extend)
	case !leader && d.cfg.Lessor.IsPrimary():
		d.cfg.Lessor.Demote()
	}
	return leader
}

// run is the loop: every Tick (or at once after a leader change) it syncs
// the lessor's role and, while leading, revokes expired leases at
// RevokeRate and checkpoints every CheckpointInterval.
func (d *Duties) run(tick clock.Ticker, lastCheckpoint time.Time) {
	defer d.wg.Done()
	defer tick.Stop()
	revoking := map[int64]time.Time{} // lease -> when its revoke was proposed
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-tick.C():
		case <-d.cfg.Leadership.Changed():
		}
		var r Round
		if r.Leading = d.SyncRole(); r.Leading {
			now := d.clock.Now()
			r.Revokes = d.revokeExpired(now, revoking)
			if now.Sub(lastCheckpoint) >= CheckpointInterval {
				lastCheckpoint = now
				r.Checkpoint = true
				d.checkpoint()
			}
		}
		if d.observe != nil {
			d.observe(r)
		}
	}
}

// revokeExpired proposes the revoke of up to a tick's share of RevokeRate
// expired leases, skipping those whose revoke is in flight for less than
// a request timeout, and returns those it proposed.
func (d *Duties) revokeExpired(now time.Time, revoking map[int64]time.Time) []int64 {
	budget := int(RevokeRate * Tick / time.Second)
	var out []int64
	for _, id := range d.cfg.Lessor.Expired(budget + len(revoking)) {
		if t, ok := revoking[id]; ok && now.Sub(t) < d.cfg.RequestTimeout {
			continue
		}
		if budget == 0 {
			break
		}
		budget--
		revoking[id] = now
		if !d.goRevoke(id) {
			break
		}
		out = append(out, id)
	}
	for id, t := range revoking {
		if now.Sub(t) >= d.cfg.RequestTimeout || !d.cfg.Lessor.LeaseExists(id) {
			delete(revoking, id)
		}
	}
	return out
}

// goRevoke proposes the revoke of an expired lease without holding up the
// loop; false if the duties are stopping.
func (d *Duties) goRevoke(id int64) bool {
	select {
	case d.sem <- struct{}{}:
	case <-d.ctx.Done():
		return false
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() { <-d.sem }()
		ctx, cancel := context.WithTimeout(d.ctx, d.cfg.RequestTimeout)
		defer cancel()
		err := d.cfg.Proposer.Propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
		if err != nil && !d.quiet(err) {
			d.lg.Warn("failed to revoke expired lease", "lease", id, "error", err)
		}
	}()
	return true
}

// checkpoint proposes the remaining TTLs of the leases due a checkpoint,
// and waits for the proposal.
func (d *Duties) checkpoint() {
	due := d.cfg.Lessor.CheckpointDue(CheckpointBatch)
	if len(due) == 0 {
		return
	}
	cp := &pb.LeaseCheckpointRequest{}
	ids := make([]int64, 0, len(due))
	for id, left := range due {
		cp.Checkpoints = append(cp.Checkpoints, &pb.LeaseCheckpoint{ID: id, Remaining_TTL: left})
		ids = append(ids, id)
	}
	defer d.cfg.Lessor.CheckpointDone(ids)
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.RequestTimeout)
	defer cancel()
	if err := d.cfg.Proposer.Propose(ctx, &pb.InternalRaftRequest{LeaseCheckpoint: cp}); err != nil && !d.quiet(err) {
		d.lg.Warn("failed to checkpoint leases", "count", len(cp.Checkpoints), "error", err)
	}
}

func (d *Duties) quiet(err error) bool {
	return d.ctx.Err() != nil || (d.cfg.Quiet != nil && d.cfg.Quiet(err))
}
