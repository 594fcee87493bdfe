// Package clock is the time that time-dependent code runs on: Real in
// production, Fake in tests, which moves only when the test advances it
// (tailscale's tstime style). Code that expires leases, schedules
// checkpoints or compactions, or ticks Raft takes a Clock instead of
// calling the time package, so its tests advance time instead of sleeping.
package clock

import "time"

// Clock tells the time and makes timers and tickers on it.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// Since is the time elapsed since t (Now().Sub(t)).
	Since(t time.Time) time.Duration
	// After delivers the time on the channel once d has elapsed.
	After(d time.Duration) <-chan time.Time
	// NewTicker delivers the time every d (> 0), dropping ticks a slow
	// reader misses, as time.Ticker.
	NewTicker(d time.Duration) Ticker
	// NewTimer delivers the time once d has elapsed, as time.Timer.
	NewTimer(d time.Duration) Timer
}

// Ticker is a time.Ticker of a Clock.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Timer is a time.Timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did so.
	Stop() bool
}

// Real is the system clock.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) Since(t time.Time) time.Duration        { return time.Since(t) }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) NewTicker(d time.Duration) Ticker       { return realTicker{time.NewTicker(d)} }
func (realClock) NewTimer(d time.Duration) Timer         { return realTimer{time.NewTimer(d)} }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// OrReal is c, or the real clock if c is nil: the default of a Config's
// Clock field.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}
