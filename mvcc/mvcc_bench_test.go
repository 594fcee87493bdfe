package mvcc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/storage"
)

// The benchmarks use etcd's benchmark shapes: 8-byte keys, 256-byte
// values, a key space of 100k keys. Batches commit without fsync, as the
// apply loop does (the Raft log is the synced copy); so these measure the
// state machine alone, not a durable write.
const (
	benchKeySpace  = 100000
	benchValueSize = 256
)

var benchValue = make([]byte, benchValueSize)

// openBench opens a store on a fresh directory, closed when b ends.
func openBench(b *testing.B) *mvcc.Store {
	b.Helper()
	eng, err := storage.Open(filepath.Join(b.TempDir(), "data"), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := mvcc.Open(eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Close()
		if err := eng.Close(); err != nil {
			b.Error(err)
		}
	})
	return s
}

// benchKeys are the 8-byte keys "00000000" ... "00099999".
func benchKeys() [][]byte {
	keys := make([][]byte, benchKeySpace)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "%08d", i)
	}
	return keys
}

// putAll writes each key once per round, in batches of 1000 single-put
// transactions (one revision each).
func putAll(b *testing.B, s *mvcc.Store, keys [][]byte, rounds int) {
	b.Helper()
	for range rounds {
		for start := 0; start < len(keys); start += 1000 {
			wb := s.NewBatch()
			for _, k := range keys[start:min(start+1000, len(keys))] {
				tw := wb.Write()
				if _, _, err := tw.Put(k, benchValue, 0); err != nil {
					b.Fatal(err)
				}
				tw.End()
			}
			if err := s.Commit(wb); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkPut measures one put (one transaction, one revision) into a
// batch that commits every perBatch puts: 1 is a lone request, 100 is the
// apply loop applying 100 committed entries at once.
func BenchmarkPut(b *testing.B) {
	for _, perBatch := range []int{1, 100} {
		b.Run(fmt.Sprintf("perBatch=%d", perBatch), func(b *testing.B) {
			s := openBench(b)
			keys := benchKeys()
			b.ReportAllocs()
			b.ResetTimer()
			wb := s.NewBatch()
			for i := 0; i < b.N; i++ {
				tw := wb.Write()
				if _, _, err := tw.Put(keys[i%len(keys)], benchValue, 0); err != nil {
					b.Fatal(err)
				}
				tw.End()
				if (i+1)%perBatch == 0 || i == b.N-1 {
					if err := s.Commit(wb); err != nil {
						b.Fatal(err)
					}
					wb = s.NewBatch()
				}
			}
			b.StopTimer()
			wb.Abort()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
		})
	}
}

// BenchmarkRangeSingleKey reads one random key at the current revision
// from a store of 100k keys, each in its own read transaction.
func BenchmarkRangeSingleKey(b *testing.B) {
	s := openBench(b)
	keys := benchKeys()
	putAll(b, s, keys, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rt := s.Read()
		rr, err := rt.Range(ctx, keys[rng.IntN(len(keys))], nil, mvcc.RangeOptions{})
		rt.End()
		if err != nil {
			b.Fatal(err)
		}
		if len(rr.KVs) != 1 {
			b.Fatalf("range: %d keys, want 1", len(rr.KVs))
		}
	}
}

// BenchmarkRange100Keys reads a random prefix that holds 100 keys at the
// current revision, from a store of 100k keys.
func BenchmarkRange100Keys(b *testing.B) {
	s := openBench(b)
	keys := benchKeys() // "000xxx00".."000xxx99" share the prefix "000xxx"
	putAll(b, s, keys, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := rng.IntN(len(keys) / 100)
		key := fmt.Appendf(nil, "%06d", p)
		end := fmt.Appendf(nil, "%06d", p+1)
		rt := s.Read()
		rr, err := rt.Range(ctx, key, end, mvcc.RangeOptions{})
		rt.End()
		if err != nil {
			b.Fatal(err)
		}
		if len(rr.KVs) != 100 {
			b.Fatalf("range: %d keys, want 100", len(rr.KVs))
		}
	}
}

// BenchmarkRangePastRevision reads at a random past revision, from a store
// where each of 10k keys has 10 versions: one key, and a prefix of 100.
func BenchmarkRangePastRevision(b *testing.B) {
	const keysN, versions = 10000, 10
	s := openBench(b)
	keys := benchKeys()[:keysN] // "000xxxxx"; "0000xx" prefixes hold 100 each
	putAll(b, s, keys, versions)
	cur := s.Rev()
	ctx := context.Background()
	b.Run("keys=1", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rev := 2 + rng.Int64N(cur-1)
			k := keys[rng.IntN(len(keys))]
			rt := s.Read()
			_, err := rt.Range(ctx, k, nil, mvcc.RangeOptions{Rev: rev})
			rt.End()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keys=100", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// A revision in the last round, so every key of the prefix exists.
			rev := cur - keysN + 1 + rng.Int64N(keysN)
			p := rng.IntN(keysN / 100)
			key := fmt.Appendf(nil, "%06d", p)
			end := fmt.Appendf(nil, "%06d", p+1)
			rt := s.Read()
			rr, err := rt.Range(ctx, key, end, mvcc.RangeOptions{Rev: rev})
			rt.End()
			if err != nil {
				b.Fatal(err)
			}
			if len(rr.KVs) != 100 {
				b.Fatalf("range at %d: %d keys, want 100", rev, len(rr.KVs))
			}
		}
	})
}
