package clock

import (
	"context"
	"sync"
	"time"
)

// Fake is a Clock that moves only when Advance or Set moves it. Timers,
// tickers and After channels fire during the Advance that reaches their
// time, in time order; a ticker whose reader is behind drops ticks, as a
// real one does. Safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
	// changed is closed and replaced whenever a waiter is added, so
	// BlockUntil can wait for one without polling.
	changed chan struct{}
}

type fakeWaiter struct {
	at     time.Time
	period time.Duration // > 0 for a ticker
	ch     chan time.Time
}

// NewFake returns a Fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// Now is the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Since is Now().Sub(t).
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// After fires once the clock has advanced by d.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	return f.add(d, 0).ch
}

// NewTicker fires every d of fake time.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	return fakeTicker{f, f.add(d, d)}
}

// NewTimer fires once the clock has advanced by d.
func (f *Fake) NewTimer(d time.Duration) Timer { return fakeTimer{f, f.add(d, 0)} }

func (f *Fake) add(d, period time.Duration) *fakeWaiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWaiter{at: f.now.Add(d), period: period, ch: make(chan time.Time, 1)}
	if d <= 0 {
		w.ch <- f.now
		if period == 0 {
			return w
		}
		w.at = f.now.Add(period)
	}
	f.waiters = append(f.waiters, w)
	close(f.changed)
	f.changed = make(chan struct{})
	return w
}

func (f *Fake) remove(w *fakeWaiter) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.waiters {
		if x == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the clock forward by d, firing what comes due.
func (f *Fake) Advance(d time.Duration) { f.Set(f.Now().Add(d)) }

// Set moves the clock to t (never backwards), firing what comes due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.Before(f.now) {
		return
	}
	f.now = t
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(t) {
			kept = append(kept, w)
			continue
		}
		select {
		case w.ch <- w.at:
		default: // the reader is behind: drop the tick
		}
		if w.period > 0 {
			for !w.at.After(t) {
				w.at = w.at.Add(w.period)
			}
			kept = append(kept, w)
		}
	}
	clear(f.waiters[len(kept):])
	f.waiters = kept
}

// Waiters is how many timers, tickers and After calls wait on the clock.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// BlockUntil returns once at least n timers, tickers or After calls wait
// on the clock (so an Advance then reaches them), or ctx is done; it
// returns ctx's error in that case.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		got, changed := len(f.waiters), f.changed
		f.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type fakeTicker struct {
	f *Fake
	w *fakeWaiter
}

func (t fakeTicker) C() <-chan time.Time { return t.w.ch }
func (t fakeTicker) Stop()               { t.f.remove(t.w) }

type fakeTimer struct {
	f *Fake
	w *fakeWaiter
}

func (t fakeTimer) C() <-chan time.Time { return t.w.ch }
func (t fakeTimer) Stop() bool          { return t.f.remove(t.w) }
