package wait

import (
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	var r Registry[string]
	ch := r.Register(1)
	if !r.Trigger(1, "done") {
		t.Fatal("Trigger(1) found no waiter")
	}
	if got := <-ch; got != "done" {
		t.Fatalf("got %q, want done", got)
	}
	if r.Trigger(1, "again") {
		t.Fatal("Trigger(1) twice found a waiter the second time")
	}
	r.Register(2)
	r.Cancel(2)
	if r.Trigger(2, "x") {
		t.Fatal("Trigger after Cancel found a waiter")
	}
}

func TestIndex(t *testing.T) {
	var x Index
	x.Set(5)
	x.Set(3) // lower values are ignored
	if got := x.Get(); got != 5 {
		t.Fatalf("Get = %d, want 5", got)
	}
	done := make(chan bool)
	go func() { done <- x.Wait(nil, 7) }()
	x.Set(6)
	select {
	case <-done:
		t.Fatal("Wait(7) returned at 6")
	case <-time.After(20 * time.Millisecond):
	}
	x.Set(7)
	if !<-done {
		t.Fatal("Wait(7) = false, want true")
	}
	cancel := make(chan struct{})
	close(cancel)
	if x.Wait(cancel, 100) {
		t.Fatal("Wait with a closed cancel = true, want false")
	}
}

func TestIndexWaitDeadline(t *testing.T) {
	var x Index
	x.Set(3)
	if err := x.WaitDeadline(nil, nil, 3); err != nil {
		t.Fatalf("WaitDeadline(3) at 3 = %v, want nil", err)
	}
	fired := make(chan time.Time, 1)
	fired <- time.Time{}
	if err := x.WaitDeadline(nil, fired, 4); err != ErrDeadline {
		t.Fatalf("WaitDeadline past its deadline = %v, want %v", err, ErrDeadline)
	}
	cancel := make(chan struct{})
	close(cancel)
	if err := x.WaitDeadline(cancel, nil, 4); err != ErrCanceled {
		t.Fatalf("WaitDeadline canceled = %v, want %v", err, ErrCanceled)
	}
}
