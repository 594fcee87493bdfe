package watch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/storage"
	"github.com/cairn-kv/cairn/watch"
)

// env is a real mvcc store with a hub over it; writes go through batches
// and Notify as the apply loop does.
type env struct {
	t   *testing.T
	s   *mvcc.Store
	hub *watch.Hub
}

func newEnv(t *testing.T, cfg watch.Config) *env {
	t.Helper()
	eng, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := mvcc.Open(eng, lg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.IsCompacted = func(err error) bool { return errors.Is(err, mvcc.ErrCompacted) }
	cfg.Logger = lg
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 5 * time.Millisecond
	}
	h := watch.NewHub(s, s.Rev(), cfg)
	t.Cleanup(func() { h.Close(); s.Close(); eng.Close() })
	return &env{t: t, s: s, hub: h}
}

// txn applies one write transaction; ops are "put K V" or "del K".
func (e *env) txn(ops ...string) int64 {
	e.t.Helper()
	wb := e.s.NewBatch()
	tw := wb.Write()
	for _, op := range ops {
		var verb, k, v string
		fmt.Sscan(op, &verb, &k, &v)
		var err error
		if verb == "put" {
			_, _, err = tw.Put([]byte(k), []byte(v), 0)
		} else {
			_, _, err = tw.DeleteRange(t0ctx, []byte(k), nil)
		}
		if err != nil {
			e.t.Fatal(err)
		}
	}
	tw.End()
	if err := e.s.Commit(wb); err != nil {
		e.t.Fatal(err)
	}
	e.hub.Notify(wb.Rev(), wb.Events)
	return wb.Rev()
}

// put applies a one-put transaction.
func (e *env) put(key, value string) int64 {
	e.t.Helper()
	wb := e.s.NewBatch()
	tw := wb.Write()
	if _, _, err := tw.Put([]byte(key), []byte(value), 0); err != nil {
		e.t.Fatal(err)
	}
	tw.End()
	if err := e.s.Commit(wb); err != nil {
		e.t.Fatal(err)
	}
	e.hub.Notify(wb.Rev(), wb.Events)
	return wb.Rev()
}

func (e *env) compact(rev int64) {
	wb := e.s.NewBatch()
	if err := wb.Compact(rev); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.Commit(wb); err != nil {
		e.t.Fatal(err)
	}
	e.hub.Notify(wb.Rev(), nil)
}

// sync waits until the notifier has matched every batch handed to the
// hub so far, using a throwaway stream's progress request (answered only
// after them).
func (e *env) sync() {
	e.t.Helper()
	st := e.hub.NewStream()
	defer st.Close()
	mustWatch(e.t, st, watch.Request{Key: []byte("\xff-sync")})
	st.RequestProgressAll()
	if r := next(e.t, st); r.WatchID != watch.InvalidWatchID {
		e.t.Fatalf("got %+v, want a progress response", r)
	}
}

// next receives the next response or fails after a generous timeout.
func next(t *testing.T, st *watch.Stream) watch.Response {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if r, ok := st.Next(); ok {
			return r
		}
		select {
		case <-st.Ready():
		case <-deadline:
			t.Fatal("no watch response")
			return watch.Response{}
		}
	}
}

// collect reads responses until it has n events for watch id.
func collect(t *testing.T, st *watch.Stream, id int64, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		r := next(t, st)
		if r.WatchID != id {
			t.Fatalf("response for watch %d, want %d: %+v", r.WatchID, id, r)
		}
		if r.CompactRevision != 0 || r.Canceled {
			t.Fatalf("unexpected cancel: %+v", r)
		}
		for _, ev := range r.Events {
			out = append(out, evString(ev))
		}
	}
	return out
}

func evString(ev *mvccpb.Event) string {
	s := fmt.Sprintf("%s %s=%s@%d", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
	if ev.PrevKv != nil {
		s += fmt.Sprintf(" prev=%s@%d", ev.PrevKv.Value, ev.PrevKv.ModRevision)
	}
	return s
}

func mustWatch(t *testing.T, st *watch.Stream, r watch.Request) int64 {
	t.Helper()
	id, err := st.Watch(r)
	if err != nil {
		t.Fatal(err)
	}
	if c := next(t, st); !c.Created || c.WatchID != id {
		t.Fatalf("first response %+v, want created for %d", c, id)
	}
	return id
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

var t0ctx = context.Background()

func TestSyncedWatchersGetEventsInOrder(t *testing.T) {
	e := newEnv(t, watch.Config{})
	pst, rst := e.hub.NewStream(), e.hub.NewStream()
	defer pst.Close()
	defer rst.Close()
	point := mustWatch(t, pst, watch.Request{Key: []byte("a"), PrevKV: true})
	prefix := mustWatch(t, rst, watch.Request{Key: []byte("a"), End: []byte("b"), PrevKV: true})
	e.txn("put a 1")
	e.txn("put ab 2", "put a 3", "put z 9")
	e.txn("del a")
	// A put's PrevKv is read for watchers that ask for it; the API layer
	// strips it from events for those that did not.
	equal(t, collect(t, pst, point, 3), []string{"PUT a=1@2", "PUT a=3@3 prev=1@2", "DELETE a=@4 prev=3@3"})
	equal(t, collect(t, rst, prefix, 4), []string{"PUT a=1@2", "PUT ab=2@3", "PUT a=3@3 prev=1@2", "DELETE a=@4 prev=3@3"})
}

func TestTxnEventsShareOneResponse(t *testing.T) {
	e := newEnv(t, watch.Config{})
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{Key: []byte("\x00"), End: []byte{}})
	rev := e.txn("put a 1", "put b 2", "del a")
	r := next(t, st)
	if r.WatchID != id || r.Revision != rev || len(r.Events) != 3 {
		t.Fatalf("got %+v, want one response at revision %d with 3 events", r, rev)
	}
}

func TestPastStartRevisionCatchesUpFromStorage(t *testing.T) {
	e := newEnv(t, watch.Config{CatchUpEvents: 2}) // small chunks: several reads
	for i := 0; i < 5; i++ {
		e.txn(fmt.Sprintf("put k %d", i))
	}
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{Key: []byte("k"), StartRev: 3, PrevKV: true})
	e.txn("put k 5")
	equal(t, collect(t, st, id, 5), []string{
		"PUT k=1@3 prev=0@2", "PUT k=2@4 prev=1@3", "PUT k=3@5 prev=2@4", "PUT k=4@6 prev=3@5", "PUT k=5@7 prev=4@6",
	})
}

// A stream that is not read fills up; its watcher is parked and later
// caught up from storage with every event exactly once, in order, while
// writes never wait.
func TestSlowWatcherLosesNothing(t *testing.T) {
	e := newEnv(t, watch.Config{StreamBuffer: 2})
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{Key: []byte("k"), End: []byte("l")})
	const n = 200
	var want []string
	for i := 0; i < n; i++ {
		rev := e.txn(fmt.Sprintf("put k%03d v", i))
		want = append(want, fmt.Sprintf("PUT k%03d=v@%d", i, rev))
	}
	equal(t, collect(t, st, id, n), want)
	e.txn("put k999 last")
	equal(t, collect(t, st, id, 1), []string{fmt.Sprintf("PUT k999=last@%d", n+2)})
}

// A catch-up response holds at most 1000 revisions, as etcd's.
func TestCatchUpSplitsAt1000Revisions(t *testing.T) {
	e := newEnv(t, watch.Config{})
	for i := 0; i < 1200; i++ {
		e.txn(fmt.Sprintf("put m%04d v", i))
	}
	e.sync() // one catch-up read up to the head
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{Key: []byte("m"), End: []byte("n"), StartRev: 1})
	var sizes []int
	for total := 0; total < 1200; {
		r := next(t, st)
		if r.WatchID != id || r.Revision != 1201 {
			t.Fatalf("got watch %d at revision %d, want %d at 1201", r.WatchID, r.Revision, id)
		}
		sizes = append(sizes, len(r.Events))
		total += len(r.Events)
	}
	if fmt.Sprint(sizes) != "[1000 200]" {
		t.Fatalf("response sizes %v, want [1000 200]", sizes)
	}
}

func TestFutureStartRevisionWaits(t *testing.T) {
	e := newEnv(t, watch.Config{})
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{Key: []byte("k"), StartRev: 4, PrevKV: true})
	e.txn("put k 1") // rev 2: before the start
	e.txn("put k 2") // rev 3
	e.txn("put k 3") // rev 4
	equal(t, collect(t, st, id, 1), []string{"PUT k=3@4 prev=2@3"})
}

func TestCompactedStartRevisionCancels(t *testing.T) {
	e := newEnv(t, watch.Config{})
	for i := 0; i < 4; i++ {
		e.txn(fmt.Sprintf("put k %d", i))
	}
	e.compact(4)
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{ID: 5, Key: []byte("k"), StartRev: 2})
	r := next(t, st)
	if r.WatchID != id || r.CompactRevision != 4 || len(r.Events) != 0 {
		t.Fatalf("got %+v, want a compaction response with CompactRevision 4", r)
	}
	// As in etcd, the compacted watcher keeps its ID until canceled.
	if _, err := st.Watch(watch.Request{ID: id, Key: []byte("x")}); !errors.Is(err, watch.ErrDuplicateID) {
		t.Fatalf("reusing a compacted watcher's ID: %v, want ErrDuplicateID", err)
	}
	next(t, st) // the refusal
	if err := st.Cancel(id); err != nil {
		t.Fatalf("cancel of a compacted watcher: %v", err)
	}
	if r := next(t, st); !r.Canceled || r.WatchID != id {
		t.Fatalf("got %+v, want canceled for %d", r, id)
	}
	// At the compacted revision itself the history is still there, but
	// not the version before it: no prev_kv for that event.
	id2 := mustWatch(t, st, watch.Request{Key: []byte("k"), StartRev: 4, PrevKV: true})
	equal(t, collect(t, st, id2, 2), []string{"PUT k=2@4", "PUT k=3@5 prev=2@4"})
}

func TestFiltersAndCancel(t *testing.T) {
	e := newEnv(t, watch.Config{})
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{Key: []byte("k"), NoPut: true})
	e.txn("put k 1")
	e.txn("del k")
	equal(t, collect(t, st, id, 1), []string{"DELETE k=@3 prev=1@2"})
	if err := st.Cancel(id); err != nil {
		t.Fatal(err)
	}
	if r := next(t, st); !r.Canceled || r.WatchID != id {
		t.Fatalf("got %+v, want canceled for %d", r, id)
	}
	e.txn("put k 2")
	if err := st.Cancel(id); !errors.Is(err, watch.ErrNotExist) {
		t.Fatalf("second cancel: %v, want ErrNotExist", err)
	}
	e.sync()
	if r, ok := st.Next(); ok {
		t.Fatalf("response after cancel: %+v", r)
	}
}

func TestWatchRefusals(t *testing.T) {
	e := newEnv(t, watch.Config{})
	st := e.hub.NewStream()
	defer st.Close()
	if _, err := st.Watch(watch.Request{Key: []byte("b"), End: []byte("a")}); !errors.Is(err, watch.ErrEmptyRange) {
		t.Fatalf("inverted range: %v, want ErrEmptyRange", err)
	}
	if r := next(t, st); !r.Created || !r.Canceled || r.WatchID != watch.InvalidWatchID || r.CancelReason != watch.ErrEmptyRange.Error() {
		t.Fatalf("got %+v, want created+canceled with the reason", r)
	}
	mustWatch(t, st, watch.Request{ID: 7, Key: []byte("a")})
	if _, err := st.Watch(watch.Request{ID: 7, Key: []byte("a")}); !errors.Is(err, watch.ErrDuplicateID) {
		t.Fatalf("duplicate ID: %v, want ErrDuplicateID", err)
	}
	if r := next(t, st); r.CancelReason != watch.ErrDuplicateID.Error() {
		t.Fatalf("got %+v, want the duplicate ID reason", r)
	}
}

func TestProgress(t *testing.T) {
	e := newEnv(t, watch.Config{})
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{Key: []byte("k")})
	rev := e.txn("put other 1")
	st.RequestProgress(id)
	if r := next(t, st); r.WatchID != id || r.Revision != rev || len(r.Events) != 0 {
		t.Fatalf("got %+v, want progress for %d at %d", r, id, rev)
	}
	st.RequestProgressAll()
	if r := next(t, st); r.WatchID != watch.InvalidWatchID || r.Revision != rev {
		t.Fatalf("got %+v, want progress for all (-1) at %d", r, rev)
	}
}
