package compactor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/pkg/clock"
)

// fakeClock is the shared fake clock (pkg/clock) with the two helpers the
// tests below use.
type fakeClock struct{ *clock.Fake }

func newFakeClock() *fakeClock { return &fakeClock{clock.NewFake(time.Unix(1_700_000_000, 0))} }

// blockUntilWaiting returns once someone waits on the clock.
func (f *fakeClock) blockUntilWaiting(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.BlockUntil(ctx, 1); err != nil {
		t.Fatal("the compactor never waited on the clock")
	}
}

func (f *fakeClock) advance(d time.Duration) { f.Advance(d) }

// harness runs a Compactor on a fake clock, one tick at a time.
type harness struct {
	t       *testing.T
	clk     *fakeClock
	rev     atomic.Int64
	leading atomic.Bool
	mu      sync.Mutex
	fail    error   // what Compact returns, if not nil
	got     []int64 // revisions compacted, in order
	c       *Compactor
}

var errAlreadyCompacted = errors.New("mvcc: required revision has been compacted")

func start(t *testing.T, cfg Config, rev int64, leading bool) *harness {
	h := &harness{t: t, clk: newFakeClock()}
	h.rev.Store(rev)
	h.leading.Store(leading)
	cfg.Rev = h.rev.Load
	cfg.Leading = h.leading.Load
	cfg.IsCompacted = func(err error) bool { return errors.Is(err, errAlreadyCompacted) }
	cfg.Compact = func(_ context.Context, rev int64) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		switch {
		case h.fail == nil:
			h.got = append(h.got, rev)
		case errors.Is(h.fail, errAlreadyCompacted):
			h.got = append(h.got, -rev) // a compacted-already answer
		}
		return h.fail
	}
	cfg.Clock = h.clk
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	t.Cleanup(c.Stop)
	return h
}

func (h *harness) setFail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail = err
}

// tick waits for the compactor to wait, sets the revision it records next,
// and moves the clock by d: the compactor then does one round.
func (h *harness) tick(d time.Duration, nextRev int64) {
	h.clk.blockUntilWaiting(h.t)
	h.rev.Store(nextRev)
	h.clk.advance(d)
}

func (h *harness) compacted() []int64 {
	h.clk.blockUntilWaiting(h.t) // the round after the last tick is over
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// TestPeriodic follows etcd's schedule for a 1 h period: a revision is
// recorded every 6 min; the first compaction comes an hour after start, to
// the revision of start; then one an hour, to the oldest revision kept.
func TestPeriodic(t *testing.T) {
	const retry = 6 * time.Minute
	h := start(t, Config{Mode: ModePeriodic, Period: time.Hour}, 100, true)
	for k := int64(1); k <= 30; k++ {
		h.tick(retry, 100+k) // the revision at minute 6k is 100+k
	}
	// At tick 10 (60 min) revs hold minutes 0..54: compact 100. At tick 20
	// they hold minutes 54..114 (11 kept): compact 109; at tick 30, 119.
	if got, want := h.compacted(), []int64{100, 109, 119}; !slices.Equal(got, want) {
		t.Errorf("compacted %v, want %v", got, want)
	}
}

// TestPeriodicLongPeriod: a 10 h period records every 6 min (a tenth of an
// hour, the cap), compacts first after 10 h, then hourly.
func TestPeriodicLongPeriod(t *testing.T) {
	const retry = 6 * time.Minute
	h := start(t, Config{Mode: ModePeriodic, Period: 10 * time.Hour}, 1000, true)
	for k := int64(1); k <= 110; k++ {
		h.tick(retry, 1000+k)
	}
	// 101 revisions kept; tick 100 (10 h) compacts minute 0's; tick 110
	// (11 h) the one kept longest: minute 6*(110-101) = 54, revision 1009.
	if got, want := h.compacted(), []int64{1000, 1009}; !slices.Equal(got, want) {
		t.Errorf("compacted %v, want %v", got, want)
	}
}

// TestPeriodicFollowerKeepsSchedule: a follower records revisions but never
// compacts; once it leads it compacts at once, to the revision of one
// period ago, as the old leader would have.
func TestPeriodicFollowerKeepsSchedule(t *testing.T) {
	const retry = 6 * time.Minute
	h := start(t, Config{Mode: ModePeriodic, Period: time.Hour}, 100, false)
	for k := int64(1); k <= 24; k++ {
		h.tick(retry, 100+k)
	}
	if got := h.compacted(); len(got) != 0 {
		t.Fatalf("a follower compacted %v", got)
	}
	h.leading.Store(true)
	for k := int64(25); k <= 35; k++ {
		h.tick(retry, 100+k)
	}
	// Tick 25 holds minutes 84..144 (revisions 114..124): compact 114; an
	// hour later (tick 35) 124.
	if got, want := h.compacted(), []int64{114, 124}; !slices.Equal(got, want) {
		t.Errorf("compacted %v, want %v", got, want)
	}
}

// TestPeriodicRetry: a failed compaction is tried again a tick later; an
// "already compacted" answer counts as done.
func TestPeriodicRetry(t *testing.T) {
	const retry = 6 * time.Minute
	h := start(t, Config{Mode: ModePeriodic, Period: time.Hour}, 100, true)
	h.setFail(errors.New("etcdserver: no leader"))
	for k := int64(1); k <= 10; k++ {
		h.tick(retry, 100+k)
	}
	if got := h.compacted(); len(got) != 0 {
		t.Fatalf("compacted %v while every compaction failed", got)
	}
	h.setFail(errAlreadyCompacted)
	h.tick(retry, 111) // tick 11: revs hold minutes 0..60
	h.clk.blockUntilWaiting(t)
	h.setFail(nil)
	for k := int64(12); k <= 21; k++ {
		h.tick(retry, 100+k)
	}
	// Tick 11 found 100 compacted already (a success): the next is an hour
	// later, tick 21, to the oldest of minutes 60..120: 110.
	if got, want := h.compacted(), []int64{-100, 110}; !slices.Equal(got, want) {
		t.Errorf("compacted %v, want %v", got, want)
	}
}

// TestRevision: every 5 min the leader compacts to the current revision less
// the retention, when that is positive and new.
func TestRevision(t *testing.T) {
	h := start(t, Config{Mode: ModeRevision, Retention: 10}, 5, true)
	steps := []struct {
		rev     int64 // current revision at the tick
		leading bool
	}{
		{5, true},    // 5-10 <= 0: nothing
		{50, true},   // 40
		{50, true},   // 40 again: nothing
		{60, false},  // a follower: nothing
		{70, true},   // 60
		{1000, true}, // 990
	}
	h.clk.blockUntilWaiting(t)
	for _, s := range steps {
		h.clk.blockUntilWaiting(t)
		h.rev.Store(s.rev)
		h.leading.Store(s.leading)
		h.clk.advance(RevisionInterval)
	}
	if got, want := h.compacted(), []int64{40, 60, 990}; !slices.Equal(got, want) {
		t.Errorf("compacted %v, want %v", got, want)
	}
}

// TestStopWhileCompacting: Stop cancels a compaction in flight and returns.
func TestStopWhileCompacting(t *testing.T) {
	clk := newFakeClock()
	entered := make(chan struct{})
	c, err := Start(Config{
		Mode: ModeRevision, Retention: 1,
		Rev:     func() int64 { return 10 },
		Leading: func() bool { return true },
		Compact: func(ctx context.Context, _ int64) error {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		},
		Clock:  clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	clk.blockUntilWaiting(t)
	clk.advance(RevisionInterval)
	<-entered
	c.Stop() // hangs if the compaction's context is not cancelled
}

func TestParseRetention(t *testing.T) {
	for _, tc := range []struct {
		mode, retention string
		period          time.Duration
		revisions       int64
		err             string
	}{
		{ModePeriodic, "0", 0, 0, ""},
		{ModePeriodic, "", 0, 0, ""},
		{ModePeriodic, "1", time.Hour, 0, ""},
		{ModePeriodic, "72", 72 * time.Hour, 0, ""},
		{ModePeriodic, "5m", 5 * time.Minute, 0, ""},
		{ModePeriodic, "1h30m", 90 * time.Minute, 0, ""},
		{ModePeriodic, "0s", 0, 0, ""},
		{ModeRevision, "1000", 0, 1000, ""},
		{ModeRevision, "0", 0, 0, ""},
		{ModeRevision, "5m", 0, 0, `invalid --auto-compaction-retention "5m": revision mode takes a revision count`},
		{ModePeriodic, "-1", 0, 0, `invalid --auto-compaction-retention "-1": must not be negative`},
		{ModePeriodic, "-5m", 0, 0, `invalid --auto-compaction-retention "-5m": must not be negative`},
		{ModePeriodic, "abc", 0, 0, `invalid --auto-compaction-retention "abc": time: invalid duration "abc"`},
		{"", "1", 0, 0, "--auto-compaction-mode is undefined"},
		{"weekly", "1", 0, 0, `unknown auto-compaction-mode "weekly"`},
		{"weekly", "1h", 0, 0, `unknown auto-compaction-mode "weekly"`},
	} {
		p, r, err := ParseRetention(tc.mode, tc.retention)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if p != tc.period || r != tc.revisions || gotErr != tc.err {
			t.Errorf("ParseRetention(%q, %q) = %v, %d, %q; want %v, %d, %q", tc.mode, tc.retention, p, r, gotErr, tc.period, tc.revisions, tc.err)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Rev: func() int64 { return 0 }, Leading: func() bool { return false }, Compact: func(context.Context, int64) error { return nil }}
	for _, tc := range []struct {
		mutate func(*Config)
		err    string
	}{
		{func(c *Config) { c.Mode, c.Period = ModePeriodic, time.Hour }, ""},
		{func(c *Config) { c.Mode, c.Retention = ModeRevision, 5 }, ""},
		{func(c *Config) { c.Mode = ModePeriodic }, "compactor: --auto-compaction-retention must be a positive duration in periodic mode, got 0s"},
		{func(c *Config) { c.Mode, c.Period = ModePeriodic, 5 }, "compactor: --auto-compaction-retention 5ns is too short"},
		{func(c *Config) { c.Mode = ModeRevision }, "compactor: --auto-compaction-retention must be a positive revision count in revision mode, got 0"},
		{func(c *Config) { c.Mode = "" }, "compactor: undefined auto-compaction-mode"},
		{func(c *Config) { c.Mode = "x" }, `compactor: unknown auto-compaction-mode "x"`},
		{func(c *Config) { c.Mode, c.Retention, c.Rev = ModeRevision, 5, nil }, "compactor: Rev, Compact and Leading are required"},
	} {
		c := ok
		tc.mutate(&c)
		gotErr := ""
		if err := c.Validate(); err != nil {
			gotErr = err.Error()
		}
		if gotErr != tc.err {
			t.Errorf("Validate(%+v): got %q, want %q", c.Mode, gotErr, tc.err)
		}
	}
}
