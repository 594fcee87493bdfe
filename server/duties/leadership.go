package duties

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairn-kv/cairn/pkg/clock"
)

// PausedTicks is how many Raft ticks a leader may miss before
// EnsureLeadership confirms its leadership with a quorum round (etcd's
// ensureLeadership: three ticks).
const PausedTicks = 3

// LeaderCheck is what EnsureLeadership needs of the member.
type LeaderCheck interface {
	// Lead is the leader Raft knows (0: none); ID is this member's.
	Lead() uint64
	ID() uint64
	// LastTick is when the Raft loop last ticked.
	LastTick() time.Time
	// ReadIndex returns once a quorum confirmed the member's log (a
	// linearizable read round), or with an error.
	ReadIndex(ctx context.Context) error
}

// EnsureLeadership confirms, as etcd's (since 3.5.13), that a member that
// believes it leads still does before it renews a lease: a leader that was
// paused (its Raft loop has not ticked for PausedTicks ticks of
// tickInterval on clk) may have been deposed without knowing it, and a
// keep-alive it acknowledged would be one the real leader never saw, so
// the lease could expire early. It then does a linearizable read (a quorum
// round) and checks the leader again. A member that does not believe it
// leads answers true: the lessor refuses its renewals anyway.
func EnsureLeadership(ctx context.Context, l LeaderCheck, clk clock.Clock, tickInterval time.Duration, lg *slog.Logger) bool {
	if l.Lead() != l.ID() {
		return true
	}
	if clk.Since(l.LastTick()) < PausedTicks*tickInterval {
		return true
	}
	if err := l.ReadIndex(ctx); err != nil {
		lg.Warn("failed to check current member's leadership", "error", err)
		return false
	}
	if lead := l.Lead(); lead != l.ID() {
		lg.Warn("current member isn't a leader", "new-lead", fmt.Sprintf("%x", lead))
		return false
	}
	return true
}
