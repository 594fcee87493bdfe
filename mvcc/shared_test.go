package mvcc

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/cairn-kv/cairn/storage"
)

func (h *harness) get(rt *ReadTxn, key string) string {
	h.t.Helper()
	rr, err := rt.Range(context.Background(), []byte(key), nil, RangeOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(rr.KVs) == 0 {
		return "<none>"
	}
	return string(rr.KVs[0].Value)
}

func (h *harness) put(key, value string) {
	h.t.Helper()
	h.mustWrite(func(tw *TxnWrite) error {
		_, _, err := tw.Put([]byte(key), []byte(value), 0)
		return err
	})
}

// TestReadsShareSnapshotPerRevision checks that reads at one revision
// share a snapshot, that a read keeps its revision's view after later
// commits, and that a snapshot install or a finished physical compaction
// at an unchanged revision is never hidden behind a shared snapshot.
func TestReadsShareSnapshotPerRevision(t *testing.T) {
	h := newHarness(t)
	defer h.close()
	h.put("a", "1")
	r1, r2 := h.s.Read(), h.s.Read()
	if r1.sh != r2.sh {
		t.Fatal("two reads at one revision took two snapshots")
	}
	h.put("a", "2")
	r3 := h.s.Read()
	if r3.sh == r1.sh {
		t.Fatal("a read after a commit shares the snapshot of before it")
	}
	if got := h.get(r1, "a"); got != "1" {
		t.Fatalf("old read sees %q, want 1", got)
	}
	r1.End()
	if got := h.get(r2, "a"); got != "1" {
		t.Fatalf("old read sees %q after another's End, want 1", got)
	}
	r2.End()
	if got := h.get(r3, "a"); got != "2" {
		t.Fatalf("new read sees %q, want 2", got)
	}
	r3.End()

	// Physical compaction changes no revision; once it is done a read
	// must not share a snapshot from before it.
	wb := h.s.NewBatch()
	if err := wb.Compact(h.s.Rev()); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Commit(wb); err != nil {
		t.Fatal(err)
	}
	before := h.s.Read()
	if err := h.s.WaitCompacted(context.Background(), h.s.Rev()); err != nil {
		t.Fatal(err)
	}
	after := h.s.Read()
	if after.sh == before.sh {
		t.Fatal("a read after physical compaction shares the snapshot of before it")
	}
	before.End()
	after.End()

	// A snapshot install at the same revisions replaces the content.
	h = newHarness(t)
	defer h.close()
	h.put("a", "1")
	h.put("b", "1")
	src := newHarness(t)
	defer src.close()
	for src.s.Rev() < h.s.Rev() {
		src.put("a", "other")
	}
	if src.s.Rev() != h.s.Rev() {
		t.Fatalf("revisions %d and %d differ", src.s.Rev(), h.s.Rev())
	}
	r := h.s.Read() // the shared snapshot at this revision
	r.End()
	f, err := h.eng.CreateSnapshotFile(nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := src.eng.DB.NewSnapshot()
	err = storage.ForEachState(snap, f.Add)
	snap.Close()
	if err != nil {
		t.Fatal(err)
	}
	path, err := f.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.Restore(func() error { return h.eng.IngestSnapshot(path) }); err != nil {
		t.Fatal(err)
	}
	r = h.s.Read()
	defer r.End()
	if got := h.get(r, "a"); got != "other" {
		t.Fatalf("after the install a read sees %q, want other", got)
	}
}

// TestSharedSnapshotUnderConcurrentWrites reads from several goroutines
// while a writer commits: every read must see the value written at its
// own revision (the writer puts k = its revision), never an older or
// newer one. Run it with -race.
func TestSharedSnapshotUnderConcurrentWrites(t *testing.T) {
	h := newHarness(t)
	defer h.close()
	h.put("k", "2")
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				rt := h.s.Read()
				rr, err := rt.Range(context.Background(), []byte("k"), nil, RangeOptions{})
				rev := rt.Rev()
				rt.End()
				if err != nil {
					errs <- err
					return
				}
				if got, want := string(rr.KVs[0].Value), strconv.FormatInt(rev, 10); got != want {
					errs <- fmt.Errorf("read at revision %d sees %s", rev, got)
					return
				}
			}
		}()
	}
	for range 300 {
		h.put("k", strconv.FormatInt(h.s.Rev()+1, 10))
	}
	close(done)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
