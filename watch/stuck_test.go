package watch_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/watch"
)

// A client that stops reading must cost only itself (issue 13, item 1):
// watcher A's stream is full and never read; after many more writes than
// one catch-up read holds, a watcher B a few revisions behind the head and
// a watcher C far behind get all their events, in order, while A stays
// stuck. Before the fix every catch-up read started at A's position.
func TestStuckWatcherDoesNotStarveOthers(t *testing.T) {
	e := newEnv(t, watch.Config{StreamBuffer: 4, CatchUpEvents: 100})
	stuck := e.hub.NewStream()
	defer stuck.Close()
	mustWatch(t, stuck, watch.Request{Key: []byte("a")})
	for i := range 10 {
		e.txn(fmt.Sprintf("put a %d", i)) // fills A's stream: A is parked
	}
	first := e.txn("put x0000 v")
	var want []string
	want = append(want, fmt.Sprintf("PUT x0000=v@%d", first))
	var head int64
	for i := 1; i <= 1010; i++ {
		head = e.txn(fmt.Sprintf("put x%04d v", i))
		want = append(want, fmt.Sprintf("PUT x%04d=v@%d", i, head))
	}
	bst, cst := e.hub.NewStream(), e.hub.NewStream()
	defer bst.Close()
	defer cst.Close()
	b := mustWatch(t, bst, watch.Request{Key: []byte("x"), End: []byte("y"), StartRev: head - 4})
	c := mustWatch(t, cst, watch.Request{Key: []byte("x"), End: []byte("y"), StartRev: first})
	equal(t, collect(t, bst, b, 5), want[len(want)-5:])
	equal(t, collect(t, cst, c, len(want)), want)
	// Both are synced now: a new write reaches them directly.
	rev := e.txn("put x9999 last")
	equal(t, collect(t, bst, b, 1), []string{fmt.Sprintf("PUT x9999=last@%d", rev)})
	equal(t, collect(t, cst, c, 1), []string{fmt.Sprintf("PUT x9999=last@%d", rev)})
}

// A parked watcher holds at most StreamBytes of events (plus one
// response), however much is written to its keys; once its client reads
// again it gets everything, in order.
func TestStuckWatcherMemoryIsBounded(t *testing.T) {
	const bound = 1 << 20
	e := newEnv(t, watch.Config{StreamBytes: bound})
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{Key: []byte("a"), End: []byte("b")})
	big := strings.Repeat("v", 32<<10)
	var want []string
	for i := range 160 { // 5 MiB of values
		rev := e.put(fmt.Sprintf("a%03d", i), big)
		want = append(want, fmt.Sprintf("a%03d@%d", i, rev))
	}
	e.sync()
	if got := st.QueuedBytes(); got > bound+(32<<10)+1024 {
		t.Fatalf("a stuck stream holds %d bytes of events, want at most about %d", got, bound)
	}
	var got []string
	for len(got) < len(want) {
		r := next(t, st)
		if r.WatchID != id {
			t.Fatalf("response %+v", r)
		}
		for _, ev := range r.Events {
			got = append(got, fmt.Sprintf("%s@%d", ev.Kv.Key, ev.Kv.ModRevision))
		}
	}
	equal(t, got, want)
}

// The created response's revision and the watcher's registration are one
// step (issue 13, item 2): clientv3 resumes from the created revision, so
// every event after it must come, even when the created response had to
// wait for room on a full stream while a write applied.
func TestNoEventLostBetweenCreatedAndRegistration(t *testing.T) {
	e := newEnv(t, watch.Config{StreamBuffer: 1})
	st := e.hub.NewStream()
	defer st.Close()
	// A refusal fills the one slot, so the next Watch waits for room.
	if _, err := st.Watch(watch.Request{Key: []byte("b"), End: []byte("a")}); err == nil {
		t.Fatal("inverted range accepted")
	}
	ids := make(chan int64, 1)
	go func() {
		id, _ := st.Watch(watch.Request{Key: []byte("k")})
		ids <- id
	}()
	// Not a wait for a condition: it only gives the Watch above time to
	// block, which made the old code lose the event below.
	time.Sleep(20 * time.Millisecond)
	wrote := e.txn("put k 1")
	if r := next(t, st); !r.Canceled {
		t.Fatalf("got %+v, want the refusal", r)
	}
	created := next(t, st)
	id := <-ids
	if !created.Created || created.WatchID != id {
		t.Fatalf("got %+v, want created for %d", created, id)
	}
	if created.Revision < wrote {
		equal(t, collect(t, st, id, 1), []string{fmt.Sprintf("PUT k=1@%d", wrote)})
	}
	again := e.txn("put k 2")
	equal(t, collect(t, st, id, 1), []string{fmt.Sprintf("PUT k=2@%d", again)})
}

// A watcher created after a write (start revision 0) starts after it, even
// if the notifier has not matched that write yet: its created revision is
// the write's, and the write is not one of its events.
func TestWatchAfterWriteStartsAfterIt(t *testing.T) {
	e := newEnv(t, watch.Config{})
	st := e.hub.NewStream()
	defer st.Close()
	for i := range 50 {
		wrote := e.txn(fmt.Sprintf("put k %d", i))
		id, err := st.Watch(watch.Request{Key: []byte("k")})
		if err != nil {
			t.Fatal(err)
		}
		if c := next(t, st); !c.Created || c.Revision != wrote {
			t.Fatalf("created %+v, want revision %d", c, wrote)
		}
		again := e.txn(fmt.Sprintf("put k %d.", i))
		evs := collect(t, st, id, 1)
		if want := fmt.Sprintf("PUT k=%d.@%d", i, again); !strings.HasPrefix(evs[0], want) {
			t.Fatalf("first event %q, want %q", evs[0], want)
		}
		if err := st.Cancel(id); err != nil {
			t.Fatal(err)
		}
		if r := next(t, st); !r.Canceled {
			t.Fatalf("got %+v, want canceled", r)
		}
	}
}

// A progress response never runs ahead of the events it covers, though
// the notifier matches batches after Notify returns: every event at or
// below its revision is queued before it (issue 13, item 3).
func TestProgressNeverAheadOfEvents(t *testing.T) {
	e := newEnv(t, watch.Config{})
	st := e.hub.NewStream()
	defer st.Close()
	id := mustWatch(t, st, watch.Request{Key: []byte("k")})
	const n = 200
	var wrote []int64
	for i := range n {
		wrote = append(wrote, e.txn(fmt.Sprintf("put k %d", i)))
		st.RequestProgressAll()
	}
	got, progress := 0, 0
	for got < n {
		r := next(t, st)
		if r.WatchID == id {
			got += len(r.Events)
			continue
		}
		progress++
		// Every write at or below the progress revision was received.
		for _, rev := range wrote {
			if rev <= r.Revision && got < int(rev-wrote[0])+1 {
				t.Fatalf("progress at revision %d after %d events: the event at %d is not there yet", r.Revision, got, rev)
			}
		}
	}
	if progress == 0 {
		t.Fatal("no progress response")
	}
}
