package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
)

// recorder collects a watcher's events as short strings.
type recorder struct{ ch chan string }

func newRecorder() *recorder { return &recorder{ch: make(chan string, 1000)} }

func (r *recorder) fn(e client.Event) { r.ch <- describe(e) }

func describe(e client.Event) string {
	if e.Type == client.EventReset {
		var kvs []string
		for _, kv := range e.State {
			kvs = append(kvs, kv.Key+"="+kv.Value)
		}
		return fmt.Sprintf("RESET@%d[%s] compact=%d", e.Revision, strings.Join(kvs, " "), e.CompactRevision)
	}
	s := fmt.Sprintf("%s %s=%s@%d", e.Type, e.KV.Key, e.KV.Value, e.Revision)
	if e.PrevKV != nil {
		s += " prev=" + e.PrevKV.Value
	}
	if !e.LastInRevision {
		s += " (more)"
	}
	return s
}

// expect waits for exactly want, in order.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case e := <-r.ch:
			got = append(got, e)
		case <-timeout:
			t.Fatalf("timed out after events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if !equal(got, want) {
		t.Fatalf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// expectNone checks that nothing more arrived (after an event that was
// written later was seen, so anything earlier would have been delivered).
func (r *recorder) expectNone(t *testing.T) {
	t.Helper()
	select {
	case e := <-r.ch:
		t.Fatalf("unexpected event %s", e)
	default:
	}
}

func TestWatchEventTypes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	r := newRecorder()
	w, err := c.Watch(ctx, "/k", r.fn, client.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	c.Put(ctx, "/k", "1")
	c.Put(ctx, "/other", "x")
	c.Put(ctx, "/k", "2")
	c.Delete(ctx, "/k")
	c.Put(ctx, "/k", "3")
	r.expect(t,
		"CREATE /k=1@2",
		"MODIFY /k=2@4 prev=1",
		"DELETE /k=@5 prev=2",
		"CREATE /k=3@6",
	)
	if w.Revision() != 6 {
		t.Fatalf("Revision() = %d, want 6", w.Revision())
	}
}

// farseer's WatchEvent.IsModify returned true for deletions; ours follows
// the type.
func TestEventPredicates(t *testing.T) {
	tests := []struct {
		typ                          client.EventType
		create, modify, del, isReset bool
	}{
		{client.EventCreate, true, false, false, false},
		{client.EventModify, false, true, false, false},
		{client.EventDelete, false, false, true, false},
		{client.EventReset, false, false, false, true},
	}
	for _, tt := range tests {
		e := client.Event{Type: tt.typ}
		if e.IsCreate() != tt.create || e.IsModify() != tt.modify || e.IsDelete() != tt.del || e.IsReset() != tt.isReset {
			t.Errorf("%v: got create=%v modify=%v delete=%v reset=%v, want %v %v %v %v", tt.typ,
				e.IsCreate(), e.IsModify(), e.IsDelete(), e.IsReset(), tt.create, tt.modify, tt.del, tt.isReset)
		}
	}
}

func TestWatchPrefixInitialStateAndTxn(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	c.Put(ctx, "/svc/a", "1") // rev 2
	c.Put(ctx, "/svc/b", "1") // rev 3
	c.Put(ctx, "/sv", "no")   // rev 4
	r := newRecorder()
	w, err := c.WatchPrefix(ctx, "/svc/", r.fn, client.WithInitialState())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// One Txn, one revision, three events.
	if _, err := c.Etcd().Txn(ctx).Then(
		clientv3.OpPut("/svc/a", "2"), clientv3.OpDelete("/svc/b"), clientv3.OpPut("/svc/c", "1"),
	).Commit(); err != nil {
		t.Fatal(err)
	}
	c.Put(ctx, "/svc/d", "1")
	r.expect(t,
		"RESET@4[/svc/a=1 /svc/b=1] compact=0",
		"MODIFY /svc/a=2@5 (more)",
		"DELETE /svc/b=@5 (more)",
		"CREATE /svc/c=1@5",
		"CREATE /svc/d=1@6",
	)
}

func TestWatchFromRevision(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	for i := range 4 {
		c.Put(ctx, "/k", fmt.Sprint(i)) // revs 2..5
	}
	r := newRecorder()
	w, err := c.Watch(ctx, "/k", r.fn, client.WithStartRevision(4))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	r.expect(t, "MODIFY /k=2@4", "MODIFY /k=3@5")
}

// The server restarts under a watcher: it resumes after the last revision
// it delivered, so the writes made while it was reconnecting arrive once,
// in order.
func TestWatchSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	watcher, writer := srv.Client(t), srv.Client(t)
	r := newRecorder()
	w, err := watcher.WatchPrefix(ctx, "/r/", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 1; i <= 3; i++ {
		writer.Put(ctx, "/r/k", fmt.Sprint(i))
	}
	r.expect(t, "CREATE /r/k=1@2", "MODIFY /r/k=2@3", "MODIFY /r/k=3@4")

	for round := 0; round < 2; round++ {
		srv.Restart(t)
		base := 5 + 3*round
		for i := 0; i < 3; i++ {
			if _, err := writer.Put(ctx, "/r/k", fmt.Sprint(base+i)); err != nil {
				t.Fatal(err)
			}
		}
		r.expect(t,
			fmt.Sprintf("MODIFY /r/k=%d@%d", base, base),
			fmt.Sprintf("MODIFY /r/k=%d@%d", base+1, base+1),
			fmt.Sprintf("MODIFY /r/k=%d@%d", base+2, base+2),
		)
	}
	r.expectNone(t)
}

// A watcher cut off from the server misses nothing: the writes made during
// the partition arrive when it is back.
func TestWatchSurvivesPartition(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	proxy := cairntest.NewProxy(t, srv.Endpoints()[0])
	watcher := newClient(t, cairntest.ClientConfig(proxy.Endpoint()))
	writer := srv.Client(t)
	r := newRecorder()
	w, err := watcher.Watch(ctx, "/p", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	writer.Put(ctx, "/p", "a")
	r.expect(t, "CREATE /p=a@2")
	proxy.Cut()
	writer.Put(ctx, "/p", "b")
	writer.Delete(ctx, "/p")
	writer.Put(ctx, "/p", "c")
	proxy.Restore()
	r.expect(t, "MODIFY /p=b@3", "DELETE /p=@4", "CREATE /p=c@5")
	r.expectNone(t)
}

// If the revision a watcher must resume from was compacted while it was
// away, it says so with an EventReset holding the current state, then goes
// on with the events after it.
func TestWatchResetsAfterCompaction(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	proxy := cairntest.NewProxy(t, srv.Endpoints()[0])
	watcher := newClient(t, cairntest.ClientConfig(proxy.Endpoint()))
	writer := srv.Client(t)
	r := newRecorder()
	var errs []error
	w, err := watcher.WatchPrefix(ctx, "/c/", r.fn, client.WithErrorHandler(func(err error) { errs = append(errs, err) }))
	if err != nil {
		t.Fatal(err)
	}
	writer.Put(ctx, "/c/a", "1") // 2
	r.expect(t, "CREATE /c/a=1@2")

	proxy.Cut()
	writer.Put(ctx, "/c/a", "2")  // 3
	writer.Put(ctx, "/c/b", "1")  // 4
	writer.Delete(ctx, "/c/a")    // 5
	writer.Put(ctx, "/c/c", "1")  // 6
	writer.Put(ctx, "/other", "") // 7
	if _, err := writer.Etcd().Compact(ctx, 7); err != nil {
		t.Fatal(err)
	}
	proxy.Restore()
	r.expect(t, "RESET@7[/c/b=1 /c/c=1] compact=7")
	writer.Put(ctx, "/c/b", "2") // 8
	r.expect(t, "MODIFY /c/b=2@8")
	w.Stop()
	if len(errs) != 0 {
		t.Fatalf("error handler saw %v; a compaction is not an error", errs)
	}
}

func TestWatchStops(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	c := srv.Client(t)

	wctx, cancel := context.WithCancel(ctx)
	r := newRecorder()
	w, err := c.Watch(wctx, "/s", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	c.Put(ctx, "/s", "1")
	r.expect(t, "CREATE /s=1@2")
	cancel()
	<-w.Done()
	if !errors.Is(w.Err(), context.Canceled) {
		t.Fatalf("Err() after cancel = %v, want context.Canceled", w.Err())
	}
	c.Put(ctx, "/s", "2")
	r.expectNone(t)

	// Closing the client ends its watchers with ErrClosed.
	other, err := client.New(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	w2, err := other.Watch(ctx, "/s", r.fn)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	select {
	case <-w2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not stop after Close")
	}
	if !errors.Is(w2.Err(), client.ErrClosed) {
		t.Fatalf("Err() after Close = %v, want ErrClosed", w2.Err())
	}

	// Watch fails when its first read does.
	expired, cancel2 := context.WithCancel(ctx)
	cancel2()
	if _, err := c.Watch(expired, "/s", r.fn); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch(canceled ctx) error = %v, want context.Canceled", err)
	}
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
