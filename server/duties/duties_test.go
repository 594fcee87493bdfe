package duties

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/pkg/clock"
	"github.com/cairn-kv/cairn/storage"
)

var (
	epoch   = time.Unix(1_700_000_000, 0)
	discard = slog.New(slog.NewTextHandler(io.Discard, nil))
	// wait bounds every wait for the loop: generous, as the machine may be loaded.
	wait = 30 * time.Second
)

// harness runs Duties on a fake clock over a real lessor. Its proposer
// applies each request to the lessor at once, as a one-member Raft group
// would, and records it; its leadership is set by the test.
type harness struct {
	t   *testing.T
	clk *clock.Fake
	eng *storage.Engine
	le  *lease.Lessor
	d   *Duties

	leading, caughtUp atomic.Bool
	changed           chan struct{}
	rounds            chan Round
	proposed          chan *pb.InternalRaftRequest
	// hold, if set, blocks revoke proposals until it is closed or their
	// context ends.
	hold chan struct{}
}

func newHarness(t *testing.T, extend time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(epoch), changed: make(chan struct{}, 1),
		rounds: make(chan Round, 1), proposed: make(chan *pb.InternalRaftRequest, 1024)}
	var err error
	if h.eng, err = storage.Open(t.TempDir(), storage.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.eng.Close() })
	if h.le, err = lease.Open(h.eng, lease.Config{Now: h.clk.Now}); err != nil {
		t.Fatal(err)
	}
	h.leading.Store(true)
	h.caughtUp.Store(true)
	h.d = New(Config{Lessor: h.le, Proposer: h, Leadership: h, Extend: extend, RequestTimeout: 5 * time.Second,
		Quiet: func(err error) bool { return errors.Is(err, lease.ErrLeaseNotFound) }, Clock: h.clk, Logger: discard})
	h.d.observe = func(r Round) { h.rounds <- r }
	return h
}

func (h *harness) start() {
	h.d.Start()
	h.t.Cleanup(h.d.Stop)
}

func (h *harness) Leading() bool            { return h.leading.Load() }
func (h *harness) CaughtUp() bool           { return h.caughtUp.Load() }
func (h *harness) Changed() <-chan struct{} { return h.changed }

func (h *harness) Propose(ctx context.Context, req *pb.InternalRaftRequest) error {
	if req.LeaseRevoke != nil && h.hold != nil {
		select {
		case <-h.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b := h.eng.DB.NewIndexedBatch()
	defer b.Close()
	var err error
	switch {
	case req.LeaseRevoke != nil:
		err = h.le.Revoke(b, req.LeaseRevoke.ID)
	case req.LeaseCheckpoint != nil:
		for _, cp := range req.LeaseCheckpoint.Checkpoints {
			if err = h.le.Checkpoint(b, cp.ID, cp.Remaining_TTL); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	h.proposed <- req
	return err
}

func (h *harness) grant(id, ttl int64) {
	h.t.Helper()
	b := h.eng.DB.NewIndexedBatch()
	defer b.Close()
	if _, err := h.le.Grant(b, id, ttl); err != nil {
		h.t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		h.t.Fatal(err)
	}
}

// round waits for the loop's next round.
func (h *harness) round() Round {
	h.t.Helper()
	select {
	case r := <-h.rounds:
		return r
	case <-time.After(wait):
		h.t.Fatal("the duty loop did not run a round")
		return Round{}
	}
}

// tick advances the clock by one Tick and returns the round it caused.
func (h *harness) tick() Round {
	h.t.Helper()
	h.clk.Advance(Tick)
	return h.round()
}

// leaderChanged signals a leader change and returns the round it caused.
func (h *harness) leaderChanged() Round {
	h.t.Helper()
	h.changed <- struct{}{}
	return h.round()
}

func (h *harness) nextProposal() *pb.InternalRaftRequest {
	h.t.Helper()
	select {
	case req := <-h.proposed:
		return req
	case <-time.After(wait):
		h.t.Fatal("nothing was proposed")
		return nil
	}
}

func (h *harness) noProposal() {
	h.t.Helper()
	select {
	case req := <-h.proposed:
		h.t.Fatalf("unexpected proposal %v at +%v", req, h.clk.Since(epoch))
	default:
	}
}

// elapsed is the fake time since the harness started.
func (h *harness) elapsed() time.Duration { return h.clk.Since(epoch) }

// TestExpiryAndCheckpoint follows one lease the leader never sees renewed:
// a checkpoint once half its TTL has run down, and a revoke once all of it
// has, proposed in the first round after expiry and not before.
func TestExpiryAndCheckpoint(t *testing.T) {
	h := newHarness(t, 0)
	h.grant(1, 5)
	h.start()
	if r := h.tick(); !r.Leading || len(r.Revokes) != 0 || !h.le.IsPrimary() {
		t.Fatalf("first round %+v, primary %v: want leading, primary, no revokes", r, h.le.IsPrimary())
	}
	// Promoted at +100ms: expires at +5.1s. CheckpointDue names a lease
	// whose rounded-up remaining TTL is down by TTL/2 (2 s) from the last
	// one recorded, on the checkpoint interval: at +3s (3 s left), then
	// at +5s (1 s left).
	for h.elapsed()+Tick < 5100*time.Millisecond {
		r := h.tick()
		if len(r.Revokes) != 0 {
			t.Fatalf("revoke %v at +%v, before the lease expired at +5.1s", r.Revokes, h.elapsed())
		}
		wantCheckpoint := h.elapsed()%CheckpointInterval == 0
		if r.Checkpoint != wantCheckpoint {
			t.Fatalf("checkpoint round at +%v = %v, want %v", h.elapsed(), r.Checkpoint, wantCheckpoint)
		}
		if left, ok := map[time.Duration]int64{3 * time.Second: 3, 5 * time.Second: 1}[h.elapsed()]; ok {
			cp := h.nextProposal().GetLeaseCheckpoint()
			if len(cp.GetCheckpoints()) != 1 || cp.Checkpoints[0].ID != 1 || cp.Checkpoints[0].Remaining_TTL != left {
				t.Fatalf("checkpoint at +%v: got %v, want lease 1 with %d s left", h.elapsed(), cp, left)
			}
		}
		h.noProposal()
	}
	r := h.tick()
	if h.elapsed() != 5100*time.Millisecond || len(r.Revokes) != 1 || r.Revokes[0] != 1 {
		t.Fatalf("round at +%v revoked %v, want lease 1 at +5.1s", h.elapsed(), r.Revokes)
	}
	if got := h.nextProposal().GetLeaseRevoke().GetID(); got != 1 {
		t.Fatalf("revoke proposed for lease %d, want 1", got)
	}
	if h.le.LeaseExists(1) {
		t.Fatal("lease 1 exists after its revoke applied")
	}
	if r := h.tick(); len(r.Revokes) != 0 {
		t.Fatalf("revoked %v again after the revoke applied", r.Revokes)
	}
}

// TestRevokeInFlightNotRepeated: a revoke not yet applied is not proposed
// again until a request timeout has passed.
func TestRevokeInFlightNotRepeated(t *testing.T) {
	h := newHarness(t, 0)
	h.hold = make(chan struct{})
	h.grant(7, 2)
	h.start()
	var first time.Duration
	for first == 0 {
		if r := h.tick(); len(r.Revokes) > 0 {
			first = h.elapsed()
		}
		if h.elapsed() > time.Minute {
			t.Fatal("lease 7 never revoked")
		}
	}
	for h.elapsed()+Tick < first+5*time.Second {
		if r := h.tick(); len(r.Revokes) != 0 {
			t.Fatalf("revoke proposed again at +%v while the first (at +%v) is in flight", h.elapsed(), first)
		}
	}
	if r := h.tick(); len(r.Revokes) != 1 || r.Revokes[0] != 7 {
		t.Fatalf("after the request timeout: revoked %v, want [7] again", r.Revokes)
	}
	close(h.hold)
	for {
		req := h.nextProposal()
		if req.LeaseRevoke == nil {
			continue // a checkpoint
		}
		if got := req.LeaseRevoke.ID; got != 7 {
			t.Fatalf("revoked lease %d, want 7", got)
		}
		break
	}
}

// TestPromoteAfterLeaderChange: a member elected leader makes its lessor
// primary only once caught up, and extends every lease by Extend, as
// etcd; it drops expiry tracking when it stops leading.
func TestPromoteAfterLeaderChange(t *testing.T) {
	h := newHarness(t, 2*time.Second)
	h.leading.Store(false)
	h.grant(3, 5)
	h.start()
	for h.elapsed() < 10*time.Second {
		if r := h.tick(); r.Leading || h.le.IsPrimary() {
			t.Fatalf("follower at +%v: round %+v, primary %v", h.elapsed(), r, h.le.IsPrimary())
		}
	}
	h.leading.Store(true)
	h.caughtUp.Store(false)
	if r := h.leaderChanged(); r.Leading || h.le.IsPrimary() {
		t.Fatalf("elected, not caught up: round %+v, primary %v; want neither", r, h.le.IsPrimary())
	}
	h.caughtUp.Store(true)
	if r := h.leaderChanged(); !r.Leading || !h.le.IsPrimary() {
		t.Fatalf("elected, caught up: round %+v, primary %v; want both", r, h.le.IsPrimary())
	}
	// Primary at +10s: lease 3 expires at +10s + 5s + 2s.
	if left, _ := h.le.Remaining(3); left != 7*time.Second {
		t.Fatalf("remaining TTL after promotion = %v, want 7s (TTL 5s + extend 2s)", left)
	}
	for h.elapsed()+Tick < 17*time.Second {
		if r := h.tick(); len(r.Revokes) != 0 {
			t.Fatalf("revoked at +%v, before +17s", h.elapsed())
		}
	}
	if r := h.tick(); len(r.Revokes) != 1 {
		t.Fatalf("round at +%v revoked %v, want lease 3", h.elapsed(), r.Revokes)
	}
	h.leading.Store(false)
	if r := h.leaderChanged(); r.Leading || h.le.IsPrimary() {
		t.Fatalf("deposed: round %+v, primary %v; want neither", r, h.le.IsPrimary())
	}
}

// TestStopCancelsRevokes: Stop does not wait out a proposal that Raft
// never answers.
func TestStopCancelsRevokes(t *testing.T) {
	h := newHarness(t, 0)
	h.hold = make(chan struct{})
	h.grant(9, 1)
	h.d.Start()
	for len(h.tick().Revokes) == 0 {
	}
	stopped := make(chan struct{})
	go func() { h.d.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(wait):
		t.Fatal("Stop hangs on a revoke in flight")
	}
}

type leaderCheck struct {
	lead, id uint64
	lastTick time.Time
	readErr  error
	reads    int
	// after, if set, is the leader once the read returns.
	after uint64
}

func (c *leaderCheck) Lead() uint64        { return c.lead }
func (c *leaderCheck) ID() uint64          { return c.id }
func (c *leaderCheck) LastTick() time.Time { return c.lastTick }
func (c *leaderCheck) ReadIndex(context.Context) error {
	c.reads++
	if c.after != 0 {
		c.lead = c.after
	}
	return c.readErr
}

// TestEnsureLeadership: only a leader that missed PausedTicks ticks asks a
// quorum, and it renews only if the quorum still has it lead.
func TestEnsureLeadership(t *testing.T) {
	const tick = 100 * time.Millisecond
	for _, tc := range []struct {
		name      string
		lead      uint64
		sinceTick time.Duration
		readErr   error
		after     uint64
		want      bool
		wantReads int
	}{
		{"follower", 2, time.Hour, nil, 0, true, 0},
		{"leader ticking", 1, 2 * tick, nil, 0, true, 0},
		{"paused leader still leads", 1, 3 * tick, nil, 0, true, 1},
		{"paused leader deposed", 1, 10 * tick, nil, 2, false, 1},
		{"paused leader without quorum", 1, 10 * tick, errors.New("etcdserver: request timed out"), 0, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(epoch)
			c := &leaderCheck{lead: tc.lead, id: 1, lastTick: epoch, readErr: tc.readErr, after: tc.after}
			clk.Advance(tc.sinceTick)
			got := EnsureLeadership(context.Background(), c, clk, tick, discard)
			if got != tc.want || c.reads != tc.wantReads {
				t.Fatalf("got %v after %d reads, want %v after %d", got, c.reads, tc.want, tc.wantReads)
			}
		})
	}
}

// TestRevokeRate: expired leases are revoked at most RevokeRate a second
// (a tick's share per round), as etcd's leaseRevokeRate, until all are.
func TestRevokeRate(t *testing.T) {
	h := newHarness(t, 0)
	const n = 250
	for id := int64(1); id <= n; id++ {
		h.grant(id, 1)
	}
	h.start()
	h.tick()                   // promoted: every lease expires at +1.1s
	h.clk.Advance(time.Second) // +1.1s, one round
	perRound := int(RevokeRate * Tick / time.Second)
	revoked := map[int64]bool{}
	for r := h.round(); ; r = h.tick() {
		if len(r.Revokes) > perRound {
			t.Fatalf("%d revokes in one round, want at most %d", len(r.Revokes), perRound)
		}
		if len(revoked) == 0 && len(r.Revokes) != perRound {
			t.Fatalf("first round revoked %d, want %d", len(r.Revokes), perRound)
		}
		for _, id := range r.Revokes {
			revoked[id] = true
		}
		if len(revoked) == n {
			break
		}
		if h.elapsed() > time.Minute {
			t.Fatalf("revoked %d of %d leases in a minute", len(revoked), n)
		}
	}
	for i := 0; i < n; i++ {
		if h.nextProposal().LeaseRevoke == nil {
			i-- // a checkpoint
		}
	}
}
