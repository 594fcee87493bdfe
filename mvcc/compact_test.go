package mvcc

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

// referenceCompact is the compaction Cairn had before it was driven by
// events, kept as the reference: a scan of every key that removes each
// version older than the key's newest at or below rev (and that one too if
// it is a deletion), then every event below rev.
func referenceCompact(t *testing.T, db *pebble.DB, rev int64) {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceVersions},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceVersions),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	b := db.NewBatch()
	defer b.Close()
	ok := it.First()
	for ok {
		k, _, _, err := decodeVersionKey(it.Key())
		if err != nil {
			t.Fatal(err)
		}
		prefix := versionKeyPrefix(nil, k)
		ok = it.SeekGE(versionKey(nil, k, rev, math.MaxInt64))
		first := true
		for ; ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
			if first {
				first = false
				if !isTombstone(it.Value()) {
					continue
				}
			}
			if err := b.Delete(bytes.Clone(it.Key()), nil); err != nil {
				t.Fatal(err)
			}
		}
		if !ok {
			ok = it.SeekGE(nextKeyPrefix(prefix))
		}
	}
	if err := b.DeleteRange(eventKey(0, 0), eventKey(rev, 0), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
}

// historyOp is one write transaction of a random history.
type historyOp struct {
	puts []putOp
	dels [][2]string // key, end ("" for the key alone)
}

type putOp struct {
	key, value string
	lease      int64
}

var historyKeys = []string{"a", "a\x00", "b", "c", "c\x00x", "d", "e", "f"}

// randomHistory makes n transactions over a few keys: puts with and without
// leases, deletions of one key and of ranges (which may delete a key put
// earlier in the same transaction), re-creations, several changes in one
// revision.
func randomHistory(rng *rand.Rand, n int) []historyOp {
	ops := make([]historyOp, n)
	for i := range ops {
		var op historyOp
		used := map[string]bool{}
		for range 1 + rng.IntN(3) {
			switch r := rng.IntN(10); {
			case r < 6:
				k := historyKeys[rng.IntN(len(historyKeys))]
				if !used[k] {
					used[k] = true
					op.puts = append(op.puts, putOp{k, fmt.Sprintf("v%d", i), int64(rng.IntN(3))})
				}
			case r < 9:
				op.dels = append(op.dels, [2]string{historyKeys[rng.IntN(len(historyKeys))], ""})
			default:
				a, b := rng.IntN(len(historyKeys)), rng.IntN(len(historyKeys))
				op.dels = append(op.dels, [2]string{historyKeys[min(a, b)], historyKeys[max(a, b)]})
			}
		}
		ops[i] = op
	}
	return ops
}

func (h *harness) apply(op historyOp) {
	h.t.Helper()
	h.mustWrite(func(tw *TxnWrite) error {
		for _, p := range op.puts {
			if _, _, err := tw.Put([]byte(p.key), []byte(p.value), p.lease); err != nil {
				return err
			}
		}
		for _, d := range op.dels {
			var end []byte
			if d[1] != "" {
				end = []byte(d[1])
			}
			if _, _, err := tw.DeleteRange(context.Background(), []byte(d[0]), end); err != nil {
				return err
			}
		}
		return nil
	})
}

// keyspace lists the raw keys and values of one keyspace.
func (h *harness) keyspace(ks byte) string {
	h.t.Helper()
	it, err := h.eng.DB.NewIter(&pebble.IterOptions{LowerBound: []byte{ks}, UpperBound: storage.KeyspaceEnd(ks)})
	if err != nil {
		h.t.Fatal(err)
	}
	defer it.Close()
	var b strings.Builder
	for ok := it.First(); ok; ok = it.Next() {
		fmt.Fprintf(&b, "%q=%q\n", it.Key(), it.Value())
	}
	return b.String()
}

// refHash is HashKV by a scan of every version, the reference.
func (h *harness) refHash(rev, compactRev int64) uint32 {
	h.t.Helper()
	sum, err := scanSum(context.Background(), h.eng.DB, rev, compactRev)
	if err != nil {
		h.t.Fatal(err)
	}
	return foldHash(sum)
}

func (h *harness) commitCompact(rev int64) {
	h.t.Helper()
	wb := h.s.NewBatch()
	if err := wb.Compact(rev); err != nil {
		h.t.Fatal(err)
	}
	if err := h.s.Commit(wb); err != nil {
		h.t.Fatal(err)
	}
}

// readAll reads every key at rev.
func (h *harness) readAll(rev int64) string {
	h.t.Helper()
	rt := h.s.Read()
	defer rt.End()
	rr, err := rt.Range(context.Background(), []byte{0}, []byte{}, RangeOptions{Rev: rev})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, kv := range rr.KVs {
		fmt.Fprintf(&b, "%q=%s c%d m%d v%d l%d\n", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	return b.String()
}

// checkHashes compares HashKV at several revisions with the reference scan.
func checkHashes(t *testing.T, h *harness, rng *rand.Rand, when string) {
	t.Helper()
	compactRev, cur := h.s.CompactRev(), h.s.Rev()
	for _, rev := range []int64{0, max(compactRev, 1), max(compactRev, 1) + rng.Int64N(cur-max(compactRev, 1)+1)} {
		rt := h.s.Read()
		got, hashRev, err := rt.HashKV(context.Background(), rev)
		rt.End()
		if err != nil {
			t.Fatalf("%s: HashKV(%d): %v", when, rev, err)
		}
		if want := h.refHash(hashRev, compactRev); got != want {
			t.Fatalf("%s: HashKV(%d) = %x, reference scan %x (compacted at %d, current %d)", when, hashRev, got, want, compactRev, cur)
		}
	}
}

// TestCompactionAgainstReference runs random histories on two stores,
// compacts one with the compactor and the other with the reference full
// scan at random revisions (deletions included), and compares what they
// keep, what they read, and HashKV with a full-scan hash.
func TestCompactionAgainstReference(t *testing.T) {
	forEachCompactionMode(t, testCompactionAgainstReference)
}

// forEachCompactionMode runs test with compaction forced to visit keys by
// their events, then by a scan.
func forEachCompactionMode(t *testing.T, test func(t *testing.T)) {
	defer func(m int) { compactionMode = m }(compactionMode)
	for _, m := range []struct {
		name string
		mode int
	}{{"events", compactByEvents}, {"scan", compactByScan}} {
		compactionMode = m.mode
		t.Run(m.name, test)
	}
}

func testCompactionAgainstReference(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			if seed%2 == 1 {
				defer func(n, e int) { compactionChunk, eventsPerSlice = n, e }(compactionChunk, eventsPerSlice)
				compactionChunk, eventsPerSlice = 1+rng.IntN(4), 3+rng.IntN(20)
			}
			a, b := newHarness(t), newHarness(t)
			defer a.close()
			defer b.close()
			prevDone := int64(-1)
			for round := range 6 {
				for _, op := range randomHistory(rng, 5+rng.IntN(40)) {
					a.apply(op)
					b.apply(op)
				}
				checkHashes(t, a, rng, fmt.Sprintf("round %d before compaction", round))
				cur := a.s.Rev()
				if cur <= max(prevDone, 1) {
					continue
				}
				rev := max(prevDone, 1) + 1 + rng.Int64N(cur-max(prevDone, 1))
				want := KVHash{Hash: a.refHash(rev, prevDone), CompactRevision: prevDone, Revision: rev}
				var reads []string
				for r := rev; r <= cur; r++ {
					reads = append(reads, b.readAll(r))
				}
				a.commitCompact(rev)
				if err := a.s.WaitCompacted(context.Background(), rev); err != nil {
					t.Fatal(err)
				}
				referenceCompact(t, b.eng.DB, rev)
				for _, ks := range []byte{storage.KeyspaceVersions, storage.KeyspaceEvents, storage.KeyspaceLatest} {
					if got, want := a.keyspace(ks), b.keyspace(ks); got != want {
						t.Fatalf("round %d, compaction at %d: keyspace %c\n%s\nreference:\n%s", round, rev, ks, got, want)
					}
				}
				for r := rev; r <= cur; r++ {
					if got := a.readAll(r); got != reads[r-rev] {
						t.Fatalf("round %d, compaction at %d: read at %d\n%s\nwant\n%s", round, rev, r, got, reads[r-rev])
					}
				}
				if got, err := a.s.HashKV(context.Background(), rev); err != nil || got != want {
					t.Fatalf("round %d: HashKV at the compaction's revision = %+v, %v; want %+v", round, got, err, want)
				}
				checkHashes(t, a, rng, fmt.Sprintf("round %d after compaction at %d", round, rev))
				prevDone = rev
			}
		})
	}
}

// TestCompactionStepwise runs a compaction one small chunk at a time and
// checks between chunks that reads and HashKV are unaffected by its
// progress (including a second compaction committed meanwhile), then
// restarts the store halfway, as a crash would, and checks that the
// compaction resumes and ends as the reference does, with the hash of the
// uninterrupted compaction.
func TestCompactionStepwise(t *testing.T) {
	forEachCompactionMode(t, testCompactionStepwise)
}

func testCompactionStepwise(t *testing.T) {
	defer func(n, e int) { compactionChunk, eventsPerSlice = n, e }(compactionChunk, eventsPerSlice)
	compactionChunk, eventsPerSlice = 2, 7
	for seed := range uint64(10) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			a, b := newHarness(t), newHarness(t)
			defer a.close()
			defer b.close()
			for _, op := range randomHistory(rng, 60) {
				a.apply(op)
				b.apply(op)
			}
			// A first compaction, so that the stepwise one starts from stored sums.
			first := 2 + rng.Int64N(10)
			a.commitCompact(first)
			if err := a.s.WaitCompacted(context.Background(), first); err != nil {
				t.Fatal(err)
			}
			referenceCompact(t, b.eng.DB, first)
			for _, op := range randomHistory(rng, 30) {
				a.apply(op)
				b.apply(op)
			}
			cur := a.s.Rev()
			rev := first + 1 + rng.Int64N(cur-first)
			want := KVHash{Hash: a.refHash(rev, first), CompactRevision: first, Revision: rev}

			a.s.compactor.close() // drive it by hand
			a.commitCompact(rev)
			p, err := a.s.startCompaction(context.Background(), rev)
			if err != nil {
				t.Fatal(err)
			}
			crashAt := rng.IntN(8)
			var sl eventSlice
			for chunk := 0; p.nextRev <= p.target; chunk++ {
				if chunk%3 == 2 {
					sl = eventSlice{} // read the open slice again, as after a restart
				}
				if err := a.s.compactChunk(context.Background(), p, &sl); err != nil {
					t.Fatal(err)
				}
				checkHashes(t, a, rng, fmt.Sprintf("after chunk %d", chunk))
				for r := a.s.CompactRev(); r <= cur; r++ {
					if got, want := a.readAll(r), b.readAll(r); got != want {
						t.Fatalf("after chunk %d: read at %d\n%s\nwant\n%s", chunk, r, got, want)
					}
				}
				if chunk == 1 && cur > rev {
					a.commitCompact(rev + 1) // a second compaction, waiting its turn
					checkHashes(t, a, rng, "after a second compaction committed")
				}
				if chunk == crashAt {
					break
				}
			}
			a.close()
			a.open() // resumes the compaction from its progress
			if err := a.s.WaitCompacted(context.Background(), a.s.CompactRev()); err != nil {
				t.Fatal(err)
			}
			if got, err := a.s.HashKV(context.Background(), rev); err != nil || got != want {
				t.Errorf("HashKV at the compaction's revision after a restart = %+v, %v; want %+v", got, err, want)
			}
			referenceCompact(t, b.eng.DB, a.s.CompactRev())
			for _, ks := range []byte{storage.KeyspaceVersions, storage.KeyspaceEvents} {
				if got, want := a.keyspace(ks), b.keyspace(ks); got != want {
					t.Fatalf("keyspace %c\n%s\nreference:\n%s", ks, got, want)
				}
			}
			checkHashes(t, a, rng, "at the end")
		})
	}
}

// TestCompactionAfterImport restores a backup whose compaction was
// scheduled but not finished (etcd's scheduledCompactRev above
// finishedCompactRev), as cairn snapshot restore does, and checks that the
// compactor removes what the scheduled compaction drops and that HashKV
// matches the reference scan.
func TestCompactionAfterImport(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 13))
			src := newHarness(t)
			defer src.close()
			for _, op := range randomHistory(rng, 80) {
				src.apply(op)
			}
			cur := src.s.Rev()
			finished := 2 + rng.Int64N(cur/2)
			scheduled := finished + 1 + rng.Int64N(cur-finished)
			var vers []Version
			snap := src.eng.DB.NewSnapshot()
			if err := ForEachVersion(snap, finished, func(v Version) error { vers = append(vers, v); return nil }); err != nil {
				t.Fatal(err)
			}
			snap.Close()
			slices.SortFunc(vers, func(a, b Version) int {
				return cmp.Or(cmp.Compare(a.KV.ModRevision, b.KV.ModRevision), cmp.Compare(a.Sub, b.Sub))
			})

			dst := &harness{t: t, dir: t.TempDir()}
			eng, err := storage.Open(dst.dir, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			im := NewImporter(eng.DB)
			for _, v := range vers {
				if err := im.Add(v.KV, v.Sub, v.Tombstone, finished); err != nil {
					t.Fatal(err)
				}
			}
			if err := im.Finish(cur, scheduled, finished); err != nil {
				t.Fatal(err)
			}
			if err := eng.Close(); err != nil {
				t.Fatal(err)
			}
			dst.open()
			defer dst.close()
			if err := dst.s.WaitCompacted(context.Background(), scheduled); err != nil {
				t.Fatal(err)
			}
			referenceCompact(t, src.eng.DB, scheduled)
			if got, want := dst.keyspace(storage.KeyspaceVersions), src.keyspace(storage.KeyspaceVersions); got != want {
				t.Fatalf("versions after the import's compaction\n%s\nreference:\n%s", got, want)
			}
			checkHashes(t, dst, rng, "after the import's compaction")
		})
	}
}

// TestCompactionPathsAgree gives two stores the same random history and
// the same compactions, one store compacting by events and the other by a
// scan of the versions (small chunks, so both stop mid-span), and checks
// that they keep the same bytes in every keyspace compaction touches,
// meta (the stored state sum) included, and give the same HashKV answers:
// a compaction's hash must not depend on how it visited its keys.
func TestCompactionPathsAgree(t *testing.T) {
	defer func(n, e, m int) { compactionChunk, eventsPerSlice, compactionMode = n, e, m }(compactionChunk, eventsPerSlice, compactionMode)
	for seed := range uint64(10) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 13))
			compactionChunk, eventsPerSlice = 1+rng.IntN(5), 2+rng.IntN(30)
			ev, sc := newHarness(t), newHarness(t)
			defer ev.close()
			defer sc.close()
			prevDone := int64(-1)
			for round := range 6 {
				for _, op := range randomHistory(rng, 5+rng.IntN(60)) {
					ev.apply(op)
					sc.apply(op)
				}
				cur := ev.s.Rev()
				if cur <= max(prevDone, 1) {
					continue
				}
				rev := max(prevDone, 1) + 1 + rng.Int64N(cur-max(prevDone, 1))
				wantHash := KVHash{Hash: ev.refHash(rev, prevDone), CompactRevision: prevDone, Revision: rev}
				for _, h := range []struct {
					h    *harness
					mode int
				}{{ev, compactByEvents}, {sc, compactByScan}} {
					compactionMode = h.mode
					h.h.commitCompact(rev)
					if err := h.h.s.WaitCompacted(context.Background(), rev); err != nil {
						t.Fatal(err)
					}
				}
				for _, ks := range []byte{storage.KeyspaceVersions, storage.KeyspaceEvents, storage.KeyspaceLatest, storage.KeyspaceMeta} {
					if got, want := sc.keyspace(ks), ev.keyspace(ks); got != want {
						t.Fatalf("round %d, compaction at %d: keyspace %c by scan\n%s\nby events:\n%s", round, rev, ks, got, want)
					}
				}
				for _, r := range []int64{rev, 0, rev + rng.Int64N(cur-rev+1)} {
					got, err1 := sc.s.HashKV(context.Background(), r)
					want, err2 := ev.s.HashKV(context.Background(), r)
					if err1 != nil || err2 != nil || got != want {
						t.Fatalf("round %d: HashKV(%d) by scan %+v, %v; by events %+v, %v", round, r, got, err1, want, err2)
					}
				}
				if got := ev.s.hashes.list[len(ev.s.hashes.list)-1]; got != wantHash {
					t.Fatalf("round %d: compaction hash %+v, reference %+v", round, got, wantHash)
				}
				prevDone = rev
			}
		})
	}
}
