package clock

import (
	"context"
	"testing"
	"time"
)

var epoch = time.Unix(1_700_000_000, 0)

func fired(ch <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-ch:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestFakeAfterAndTimer(t *testing.T) {
	f := NewFake(epoch)
	after := f.After(time.Second)
	timer := f.NewTimer(2 * time.Second)
	stopped := f.NewTimer(time.Second)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer = false, want true")
	}
	f.Advance(999 * time.Millisecond)
	if _, ok := fired(after); ok {
		t.Fatal("After(1s) fired at 999ms")
	}
	f.Advance(time.Millisecond)
	if got, ok := fired(after); !ok || !got.Equal(epoch.Add(time.Second)) {
		t.Fatalf("After(1s) at 1s: got %v, %v; want %v", got, ok, epoch.Add(time.Second))
	}
	if _, ok := fired(stopped.C()); ok {
		t.Fatal("a stopped timer fired")
	}
	f.Advance(time.Second)
	if _, ok := fired(timer.C()); !ok {
		t.Fatal("NewTimer(2s) did not fire at 2s")
	}
	if timer.Stop() {
		t.Fatal("Stop of a fired timer = true, want false")
	}
	if got := f.Since(epoch); got != 2*time.Second {
		t.Fatalf("Since(start) = %v, want 2s", got)
	}
	if f.Waiters() != 0 {
		t.Fatalf("Waiters() = %d, want 0", f.Waiters())
	}
}

func TestFakeTickerDropsMissedTicks(t *testing.T) {
	f := NewFake(epoch)
	tk := f.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	f.Advance(350 * time.Millisecond) // three ticks due, one kept
	if got, ok := fired(tk.C()); !ok || !got.Equal(epoch.Add(100*time.Millisecond)) {
		t.Fatalf("first tick: got %v, %v", got, ok)
	}
	if _, ok := fired(tk.C()); ok {
		t.Fatal("a missed tick was kept")
	}
	f.Advance(50 * time.Millisecond) // 400ms
	if got, ok := fired(tk.C()); !ok || !got.Equal(epoch.Add(400*time.Millisecond)) {
		t.Fatalf("tick at 400ms: got %v, %v", got, ok)
	}
	tk.Stop()
	f.Advance(time.Second)
	if _, ok := fired(tk.C()); ok {
		t.Fatal("a stopped ticker ticked")
	}
}

func TestFakeBlockUntil(t *testing.T) {
	f := NewFake(epoch)
	go func() { <-f.After(time.Minute) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.BlockUntil(ctx, 1); err != nil {
		t.Fatalf("BlockUntil(1): %v", err)
	}
	short, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := f.BlockUntil(short, 2); err == nil {
		t.Fatal("BlockUntil(2) with one waiter and a done context returned nil")
	}
	f.Advance(time.Minute)
}

func TestRealClock(t *testing.T) {
	c := OrReal(nil)
	tk := c.NewTicker(time.Millisecond)
	defer tk.Stop()
	<-tk.C()
	if c.Since(c.Now()) > time.Hour {
		t.Fatal("Since(Now()) is over an hour")
	}
}
