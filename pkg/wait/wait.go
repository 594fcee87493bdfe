// Package wait lets goroutines wait for an ID to be triggered or for a
// monotonically increasing index to reach a value.
package wait

import (
	"errors"
	"sync"
	"time"
)

// Registry maps request IDs to the channel their result is delivered on.
type Registry[T any] struct {
	mu sync.Mutex
	m  map[uint64]chan T
}

// Register returns the channel that Trigger(id, v) delivers v on. The
// channel has room for one value, so Trigger never blocks.
func (r *Registry[T]) Register(id uint64) <-chan T {
	ch := make(chan T, 1)
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[uint64]chan T)
	}
	r.m[id] = ch
	r.mu.Unlock()
	return ch
}

// Trigger delivers v to id's waiter, if any, and forgets id. It reports
// whether there was a waiter.
func (r *Registry[T]) Trigger(id uint64, v T) bool {
	r.mu.Lock()
	ch, ok := r.m[id]
	delete(r.m, id)
	r.mu.Unlock()
	if ok {
		ch <- v
	}
	return ok
}

// Cancel forgets id without delivering anything.
func (r *Registry[T]) Cancel(id uint64) {
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

// Index is a value that only grows, with a way to wait for it.
type Index struct {
	mu      sync.Mutex
	v       uint64
	changed chan struct{}
}

// Set raises the index to v (a lower v is ignored) and wakes waiters.
func (x *Index) Set(v uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if v <= x.v {
		return
	}
	x.v = v
	if x.changed != nil {
		close(x.changed)
		x.changed = nil
	}
}

// Get returns the current value.
func (x *Index) Get() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.v
}

// Wait blocks until the index is at least v (true) or cancel is closed
// (false).
func (x *Index) Wait(cancel <-chan struct{}, v uint64) bool {
	return x.WaitDeadline(cancel, nil, v) == nil
}

// Errors of WaitDeadline.
var (
	ErrCanceled = errors.New("wait: canceled")
	ErrDeadline = errors.New("wait: deadline reached")
)

// WaitDeadline blocks until the index is at least v (nil), cancel is
// closed (ErrCanceled) or deadline fires (ErrDeadline; a nil deadline
// never does).
func (x *Index) WaitDeadline(cancel <-chan struct{}, deadline <-chan time.Time, v uint64) error {
	for {
		x.mu.Lock()
		if x.v >= v {
			x.mu.Unlock()
			return nil
		}
		if x.changed == nil {
			x.changed = make(chan struct{})
		}
		ch := x.changed
		x.mu.Unlock()
		select {
		case <-ch:
		case <-cancel:
			return ErrCanceled
		case <-deadline:
			return ErrDeadline
		}
	}
}
