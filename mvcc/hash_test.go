package mvcc

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func (h *harness) hashKV(rev int64) (uint32, int64, error) {
	rt := h.s.Read()
	defer rt.End()
	return rt.HashKV(context.Background(), rev)
}

func (h *harness) mustWrite(fn func(tw *TxnWrite) error) {
	h.t.Helper()
	if out := h.write(fn); len(out) > 6 && out[:6] == "error:" {
		h.t.Fatal(out)
	}
}

// countedVersions lists what HashKV hashes, as "key@rev".
func (h *harness) countedVersions(rev, compactRev int64) []string {
	var out []string
	err := hashVersions(context.Background(), h.eng.DB, rev, compactRev, func(key []byte, rev, sub int64, rec []byte) {
		out = append(out, fmt.Sprintf("%s@%d", key, rev))
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// HashKV counts what a read can still see: compacted versions count for
// nothing whether or not compaction has removed them yet, so two members
// agree whatever their compaction's progress; a change to visible data
// changes the hash.
func TestHashKV(t *testing.T) {
	h := newHarness(t)
	defer h.close()
	put := func(k, v string) {
		h.mustWrite(func(tw *TxnWrite) error { _, _, err := tw.Put([]byte(k), []byte(v), 0); return err })
	}
	del := func(k string) {
		h.mustWrite(func(tw *TxnWrite) error {
			_, _, err := tw.DeleteRange(context.Background(), []byte(k), nil)
			return err
		})
	}
	put("a", "1") // rev 2
	put("a", "2") // 3
	put("b", "1") // 4
	del("b")      // 5
	put("c", "1") // 6
	put("a", "3") // 7

	// Before any compaction: every version up to the revision, oldest first per key.
	if got, want := fmt.Sprint(h.countedVersions(7, -1)), "[a@2 a@3 a@7 b@4 b@5 c@6]"; got != want {
		t.Errorf("versions hashed at 7: %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(h.countedVersions(4, -1)), "[a@2 a@3 b@4]"; got != want {
		t.Errorf("versions hashed at 4: %s, want %s", got, want)
	}
	// As if compacted at 5 but not yet physically: a@3 is a's newest at or
	// below 5 and stays; b's newest is a deletion, so b goes.
	if got, want := fmt.Sprint(h.countedVersions(7, 5)), "[a@3 a@7 c@6]"; got != want {
		t.Errorf("versions hashed at 7 after compaction at 5: %s, want %s", got, want)
	}

	full, rev, err := h.hashKV(0)
	if err != nil || rev != 7 {
		t.Fatalf("HashKV(0) = %x at %d, %v; want the current revision 7", full, rev, err)
	}
	at4, _, _ := h.hashKV(4)
	if at4 == full {
		t.Errorf("HashKV(4) = HashKV(7) = %x", full)
	}
	if again, _, _ := h.hashKV(7); again != full {
		t.Errorf("HashKV(7) = %x, then %x", full, again)
	}

	pre5, _, _ := h.hashKV(5)
	// Compact at 5: the hash at 7 is the same before and after the
	// physical removal, and different from the uncompacted one.
	wb := h.s.NewBatch()
	if err := wb.Compact(5); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Commit(wb); err != nil {
		t.Fatal(err)
	}
	logical := h.countedVersions(7, 5)
	if err := h.s.WaitCompacted(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
	if got := h.countedVersions(7, 5); fmt.Sprint(got) != fmt.Sprint(logical) {
		t.Errorf("versions hashed after physical compaction %s, before %s", got, logical)
	}
	compacted, _, err := h.hashKV(7)
	if err != nil || compacted == full {
		t.Errorf("HashKV(7) after compaction = %x, %v; want a new hash (was %x)", compacted, err, full)
	}

	// At the compaction's own revision, the answer is the one the
	// compaction computed before removing anything, as etcd's: the hash of
	// revision 5 as it was, with the previous compacted revision.
	if got, err := h.s.HashKV(context.Background(), 5); err != nil || got != (KVHash{Hash: pre5, CompactRevision: -1, Revision: 5}) {
		t.Errorf("Store.HashKV(5) after compaction at 5 = %+v, %v; want hash %x, compact revision -1", got, err, pre5)
	}
	if got, err := h.s.HashKV(context.Background(), 0); err != nil || got != (KVHash{Hash: compacted, CompactRevision: 5, Revision: 7}) {
		t.Errorf("Store.HashKV(0) = %+v, %v; want hash %x at 7, compact revision 5", got, err, compacted)
	}
	// Revisions out of range, as Range.
	if _, _, err := h.hashKV(8); !errors.Is(err, ErrFutureRev) {
		t.Errorf("HashKV(8): %v, want ErrFutureRev", err)
	}
	if _, _, err := h.hashKV(4); !errors.Is(err, ErrCompacted) {
		t.Errorf("HashKV(4) after compaction at 5: %v, want ErrCompacted", err)
	}
	// A value change shows.
	put("c", "2")
	if changed, _, _ := h.hashKV(0); changed == compacted {
		t.Errorf("HashKV unchanged after a put: %x", changed)
	}
}
