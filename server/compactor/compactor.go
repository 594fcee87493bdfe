// Package compactor compacts the key-value history automatically, on the
// schedule of etcd's --auto-compaction-mode and --auto-compaction-retention
// (etcd's server/etcdserver/api/v3compactor).
//
// Every member runs a Compactor, but only the one that leads compacts: on
// the others each tick is skipped. In periodic mode the revision history is
// recorded on every member all the same, so a member that becomes leader
// compacts on the schedule the old leader kept, not one that starts over.
// A compaction is a normal Compact request through Raft; one that finds the
// revision already compacted counts as done.
package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/cairn-kv/cairn/pkg/clock"
)

// The modes of --auto-compaction-mode.
const (
	// ModePeriodic keeps the history of the last Period: it compacts to the
	// revision that was current one Period ago.
	ModePeriodic = "periodic"
	// ModeRevision keeps the last Retention revisions.
	ModeRevision = "revision"
)

// RevisionInterval is how often revision mode compacts (etcd's revInterval).
const RevisionInterval = 5 * time.Minute

// retryDivisor: periodic mode records a revision, and may compact, every
// tenth of its period (at most an hour), as etcd's retryDivisor.
const retryDivisor = 10

// Config says what to compact, when, and through what.
type Config struct {
	// Mode is ModePeriodic or ModeRevision.
	Mode string
	// Period is how much history periodic mode keeps (> 0).
	Period time.Duration
	// Retention is how many revisions revision mode keeps (> 0).
	Retention int64

	// Rev returns the current revision.
	Rev func() int64
	// Compact compacts the history up to rev through Raft.
	Compact func(ctx context.Context, rev int64) error
	// IsCompacted reports whether an error of Compact means the revision
	// was compacted already (a success for the schedule). Nil: never.
	IsCompacted func(error) bool
	// Leading reports whether this member leads; only the leader compacts.
	Leading func() bool

	// Clock defaults to the real one (tests pass a clock.Fake); Logger to
	// slog.Default().
	Clock  clock.Clock
	Logger *slog.Logger
}

// Validate checks the fields Start relies on; its messages name the flag.
func (c *Config) Validate() error {
	switch c.Mode {
	case ModePeriodic:
		if c.Period <= 0 {
			return fmt.Errorf("compactor: --auto-compaction-retention must be a positive duration in periodic mode, got %v", c.Period)
		}
		if interval(c.Period)/retryDivisor <= 0 {
			return fmt.Errorf("compactor: --auto-compaction-retention %v is too short", c.Period)
		}
	case ModeRevision:
		if c.Retention <= 0 {
			return fmt.Errorf("compactor: --auto-compaction-retention must be a positive revision count in revision mode, got %d", c.Retention)
		}
	case "":
		return errors.New("compactor: undefined auto-compaction-mode")
	default:
		return fmt.Errorf("compactor: unknown auto-compaction-mode %q", c.Mode)
	}
	if c.Rev == nil || c.Compact == nil || c.Leading == nil {
		return errors.New("compactor: Rev, Compact and Leading are required")
	}
	return nil
}

// Compactor runs one schedule in its own goroutine until Stop.
type Compactor struct {
	cfg    Config
	lg     *slog.Logger
	clock  clock.Clock
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// Start validates cfg and starts the schedule.
func Start(cfg Config) (*Compactor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Compactor{cfg: cfg, lg: cfg.Logger, clock: cfg.Clock, done: make(chan struct{})}
	if c.lg == nil {
		c.lg = slog.Default()
	}
	c.clock = clock.OrReal(c.clock)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.Mode == ModePeriodic {
		go c.runPeriodic()
	} else {
		go c.runRevision()
	}
	return c, nil
}

// Stop ends the schedule, cancelling a compaction in flight, and waits.
func (c *Compactor) Stop() {
	c.cancel()
	<-c.done
}

// interval is how often periodic mode may compact once it has: its period,
// but at least hourly (etcd's getCompactInterval).
func interval(period time.Duration) time.Duration {
	return min(period, time.Hour)
}

// runPeriodic is etcd's Periodic.Run: every tenth of the interval it
// records the current revision, keeping one period's worth, and the leader
// compacts to the oldest recorded once a whole period has passed since the
// start (afterwards, an interval since the last success).
func (c *Compactor) runPeriodic() {
	defer close(c.done)
	period := c.cfg.Period
	compactInterval := interval(period)
	retry := compactInterval / retryDivisor
	retentions := int(period/retry) + 1
	revs := make([]int64, 0, retentions+1)
	var lastRevision int64
	lastSuccess := c.clock.Now()
	baseInterval := period
	for {
		revs = append(revs, c.cfg.Rev())
		if len(revs) > retentions {
			revs = revs[1:] // revs[0] is the revision of one period ago
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.clock.After(retry):
		}
		if c.ctx.Err() != nil {
			return
		}
		if !c.cfg.Leading() {
			continue
		}
		rev := revs[0]
		if c.clock.Now().Sub(lastSuccess) < baseInterval || rev == lastRevision {
			continue
		}
		baseInterval = compactInterval
		c.lg.Info("starting auto periodic compaction", "revision", rev, "compact-period", period)
		start := c.clock.Now()
		err := c.cfg.Compact(c.ctx, rev)
		if err == nil || c.isCompacted(err) {
			c.lg.Info("completed auto periodic compaction", "revision", rev, "compact-period", period, "took", c.clock.Now().Sub(start))
			lastRevision = rev
			lastSuccess = c.clock.Now()
			continue
		}
		c.lg.Warn("failed auto periodic compaction", "revision", rev, "compact-period", period, "retry-interval", retry, "error", err)
	}
}

// runRevision is etcd's Revision.Run: every RevisionInterval the leader
// compacts to the current revision less the retention.
func (c *Compactor) runRevision() {
	defer close(c.done)
	var prev int64
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.clock.After(RevisionInterval):
		}
		if c.ctx.Err() != nil {
			return
		}
		if !c.cfg.Leading() {
			continue
		}
		rev := c.cfg.Rev() - c.cfg.Retention
		if rev <= 0 || rev == prev {
			continue
		}
		c.lg.Info("starting auto revision compaction", "revision", rev, "revision-compaction-retention", c.cfg.Retention)
		start := c.clock.Now()
		err := c.cfg.Compact(c.ctx, rev)
		if err == nil || c.isCompacted(err) {
			prev = rev
			c.lg.Info("completed auto revision compaction", "revision", rev, "revision-compaction-retention", c.cfg.Retention, "took", c.clock.Now().Sub(start))
			continue
		}
		c.lg.Warn("failed auto revision compaction", "revision", rev, "revision-compaction-retention", c.cfg.Retention, "retry-interval", RevisionInterval, "error", err)
	}
}

func (c *Compactor) isCompacted(err error) bool {
	return c.cfg.IsCompacted != nil && c.cfg.IsCompacted(err)
}

// ParseRetention reads --auto-compaction-retention for mode as etcd does
// (embed's parseCompactionRetention): a whole number is hours in periodic
// mode and a revision count in revision mode; anything else must be a Go
// duration ("30m", "1h30m"), periodic mode only. "0" (or "") turns automatic
// compaction off: both results are then zero.
func ParseRetention(mode, retention string) (period time.Duration, revisions int64, err error) {
	if retention == "" {
		retention = "0"
	}
	if n, perr := strconv.ParseInt(retention, 10, 64); perr == nil {
		if n < 0 {
			return 0, 0, fmt.Errorf("invalid --auto-compaction-retention %q: must not be negative", retention)
		}
		if n == 0 {
			return 0, 0, nil
		}
		switch mode {
		case ModeRevision:
			return 0, n, nil
		case ModePeriodic:
			if n > int64(math.MaxInt64/time.Hour) {
				return 0, 0, fmt.Errorf("invalid --auto-compaction-retention %q: too many hours", retention)
			}
			return time.Duration(n) * time.Hour, 0, nil
		case "":
			return 0, 0, errors.New("--auto-compaction-mode is undefined")
		default:
			return 0, 0, fmt.Errorf("unknown auto-compaction-mode %q", mode)
		}
	}
	d, derr := time.ParseDuration(retention)
	if derr != nil {
		return 0, 0, fmt.Errorf("invalid --auto-compaction-retention %q: %w", retention, derr)
	}
	switch {
	case d < 0:
		return 0, 0, fmt.Errorf("invalid --auto-compaction-retention %q: must not be negative", retention)
	case d == 0:
		return 0, 0, nil
	case mode == ModeRevision:
		// etcd would take the duration's nanoseconds as a revision count.
		return 0, 0, fmt.Errorf("invalid --auto-compaction-retention %q: revision mode takes a revision count", retention)
	case mode != ModePeriodic:
		return 0, 0, fmt.Errorf("unknown auto-compaction-mode %q", mode)
	}
	return d, 0, nil
}
