package mvcc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/storage"
)

// modelKey is the reference model of one live key.
type modelKey struct{ create, mod, version, lease int64 }

// checkLiveCache compares every cached entry, and for a complete cache the
// absence of every other key of keys, with the live records in Pebble.
func checkLiveCache(t *testing.T, s *Store, keys []string, when string) {
	t.Helper()
	truth := func(k string) (liveMeta, bool) {
		v, closer, err := s.eng.DB.Get(latestKey(nil, []byte(k)))
		if errors.Is(err, pebble.ErrNotFound) {
			return liveMeta{}, false
		}
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		r, err := decodeRecord(v)
		if err != nil {
			t.Fatal(err)
		}
		return liveMeta{createRev: r.createRevision, version: r.version, lease: r.lease}, true
	}
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	for k, m := range s.live.m {
		if want, ok := truth(k); !ok || want != m {
			t.Fatalf("%s: cache has %q = %+v, store has %+v (live %v)", when, k, m, want, ok)
		}
	}
	if s.live.complete {
		for _, k := range keys {
			if _, cached := s.live.m[k]; !cached {
				if want, ok := truth(k); ok {
					t.Fatalf("%s: complete cache lacks live key %q = %+v", when, k, want)
				}
			}
		}
	}
}

// TestLiveCacheStaysExact runs random batches of puts and deletes, with
// requests undone midway (RollbackTo, as the applier does), batches
// aborted, compactions, restarts and snapshot installs, against caches
// that never evict, evict all the time, or are off. After every step the
// cache must agree with Pebble, and every put event's create revision and
// version must agree with a model of the store kept apart from it.
func TestLiveCacheStaysExact(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, cacheBytes := range []int64{DefaultLiveCacheBytes, 3 * (liveEntryOverhead + 1), -1} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("cache=%d/seed=%d", cacheBytes, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 99))
				dir := t.TempDir()
				var eng *storage.Engine
				var s *Store
				open := func() {
					var err error
					if eng, err = storage.Open(dir, storage.Options{}); err != nil {
						t.Fatal(err)
					}
					if s, err = OpenWith(eng, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{LiveCacheBytes: cacheBytes}); err != nil {
						t.Fatal(err)
					}
				}
				closeAll := func() { s.Close(); eng.Close() }
				open()
				defer func() { closeAll() }()
				if s.live.max > 0 && !s.live.complete {
					t.Fatal("a fresh store's cache is not complete")
				}
				model := map[string]modelKey{}
				for step := range 300 {
					when := fmt.Sprintf("step %d", step)
					switch r := rng.IntN(20); {
					case r == 0:
						closeAll()
						open()
						checkLiveCache(t, s, keys, when+" (restart)")
						continue
					case r == 1:
						model = installOther(t, s, rng, keys)
						checkLiveCache(t, s, keys, when+" (snapshot install)")
						continue
					case r == 2 && s.Rev() > 2:
						wb := s.NewBatch()
						if err := wb.Compact(1 + rng.Int64N(s.Rev()-1)); err != nil && !errors.Is(err, ErrCompacted) {
							t.Fatal(err)
						}
						if err := s.Commit(wb); err != nil {
							t.Fatal(err)
						}
						continue
					}
					wb := s.NewBatch()
					next := cloneModel(model)
					for range 1 + rng.IntN(4) {
						sp := wb.Savepoint()
						txnModel := cloneModel(next)
						tw := wb.Write()
						rev := tw.Rev() + 1
						for range 1 + rng.IntN(3) {
							k := keys[rng.IntN(len(keys))]
							if rng.IntN(4) == 0 {
								end := keys[rng.IntN(len(keys))] + "\x00"
								if _, _, err := tw.DeleteRangeWith(context.Background(), []byte(k), []byte(end), false); err != nil {
									t.Fatal(err)
								}
								for _, dk := range keys {
									if dk >= k && dk < end {
										delete(txnModel, dk)
									}
								}
								continue
							}
							lease := rng.Int64N(3)
							if _, _, err := tw.Put([]byte(k), []byte(when), lease); err != nil {
								t.Fatal(err)
							}
							m, ok := txnModel[k]
							if !ok {
								m = modelKey{create: rev}
							}
							m.mod, m.version, m.lease = rev, m.version+1, lease
							txnModel[k] = m
						}
						if rng.IntN(5) == 0 {
							// The request fails midway: undo it.
							if err := wb.RollbackTo(sp); err != nil {
								t.Fatal(err)
							}
							continue
						}
						tw.End()
						next = txnModel
					}
					if rng.IntN(8) == 0 {
						wb.Abort()
						checkLiveCache(t, s, keys, when+" (abort)")
						continue
					}
					events := wb.Events
					if err := s.Commit(wb); err != nil {
						t.Fatal(err)
					}
					model = next
					seen := map[string]bool{}
					for i := len(events) - 1; i >= 0; i-- { // a key's last put in the batch
						ev := events[i]
						k := string(ev.Kv.Key)
						if seen[k] {
							continue
						}
						seen[k] = true
						if ev.Type != mvccpb.Event_PUT {
							continue
						}
						if m, ok := model[k]; ok && m.mod == ev.Kv.ModRevision && (m.create != ev.Kv.CreateRevision || m.version != ev.Kv.Version) {
							t.Fatalf("%s: put event %q create=%d version=%d, model create=%d version=%d", when, k, ev.Kv.CreateRevision, ev.Kv.Version, m.create, m.version)
						}
					}
					checkLiveCache(t, s, keys, when)
					for _, k := range keys {
						rt := s.Read()
						rr, err := rt.Range(context.Background(), []byte(k), nil, RangeOptions{})
						rt.End()
						if err != nil {
							t.Fatal(err)
						}
						m, ok := model[k]
						if ok != (len(rr.KVs) == 1) || ok && (rr.KVs[0].CreateRevision != m.create || rr.KVs[0].Version != m.version || rr.KVs[0].ModRevision != m.mod || rr.KVs[0].Lease != m.lease) {
							t.Fatalf("%s: %q reads %v, model %+v (live %v)", when, k, rr.KVs, m, ok)
						}
					}
				}
			})
		}
	}
}

func cloneModel(m map[string]modelKey) map[string]modelKey {
	out := make(map[string]modelKey, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// installOther replaces s's state with a snapshot of another store that
// holds different versions of the same keys, as a follower's snapshot
// install does, and returns that store's model.
func installOther(t *testing.T, s *Store, rng *rand.Rand, keys []string) map[string]modelKey {
	t.Helper()
	src := newHarness(t)
	defer src.close()
	model := map[string]modelKey{}
	for range 1 + rng.IntN(6) {
		k := keys[rng.IntN(len(keys))]
		wb := src.s.NewBatch()
		tw := wb.Write()
		rev, _, err := tw.Put([]byte(k), []byte("other"), 0)
		if err != nil {
			t.Fatal(err)
		}
		tw.End()
		if err := src.s.Commit(wb); err != nil {
			t.Fatal(err)
		}
		m, ok := model[k]
		if !ok {
			m = modelKey{create: rev}
		}
		m.mod, m.version = rev, m.version+1
		model[k] = m
	}
	f, err := s.eng.CreateSnapshotFile(nil)
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
	if err := s.Restore(func() error { return s.eng.IngestSnapshot(path) }); err != nil {
		t.Fatal(err)
	}
	return model
}
