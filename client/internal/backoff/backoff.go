// Package backoff computes exponential retry delays with jitter for the
// SDK's retry loops (watch re-creation, re-registration).
//
// A Backoff is owned by one goroutine; it is not safe for concurrent use.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields delays that start at Min, double after each failure up to
// Max, and carry up to 20% random jitter so that many clients do not retry
// in step. The zero value uses 100 ms and 5 s.
type Backoff struct {
	// Min is the first delay. Default 100 ms.
	Min time.Duration
	// Max caps the delay. Default 5 s.
	Max time.Duration

	next time.Duration
}

// Next returns the delay to wait before the next attempt and grows the
// following one.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 5 * time.Second
	}
	if hi < lo {
		hi = lo
	}
	if b.next < lo {
		b.next = lo
	}
	d := b.next
	b.next = min(2*b.next, hi)
	// Jitter in [0.8d, d]: never longer than the cap.
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// Reset makes the next delay Min again, after a success.
func (b *Backoff) Reset() { b.next = 0 }

// Wait sleeps for Next() or until ctx is done, and reports whether the full
// delay passed.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
