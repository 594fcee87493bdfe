package mvcc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/mvcc"
)

// loadKeys writes n keys "k0000000".. once each, 16-byte values, 10,000
// single-put transactions (revisions) per batch, and compacts physically at
// the end so that the store holds one version per key, as a long-running
// store that compacts does.
func loadKeys(b *testing.B, s *mvcc.Store, n int) [][]byte {
	b.Helper()
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "k%07d", i)
	}
	val := make([]byte, 16)
	for start := 0; start < n; start += 10000 {
		wb := s.NewBatch()
		for _, k := range keys[start:min(start+10000, n)] {
			tw := wb.Write()
			if _, _, err := tw.Put(k, val, 0); err != nil {
				b.Fatal(err)
			}
			tw.End()
		}
		if err := s.Commit(wb); err != nil {
			b.Fatal(err)
		}
	}
	compactAndWait(b, s)
	return keys
}

// updateRandom writes revs single-put transactions on random keys.
func updateRandom(b *testing.B, s *mvcc.Store, keys [][]byte, revs int, rng *rand.Rand) {
	b.Helper()
	for start := 0; start < revs; start += 1000 {
		wb := s.NewBatch()
		for range min(1000, revs-start) {
			tw := wb.Write()
			if _, _, err := tw.Put(keys[rng.IntN(len(keys))], benchValue, 0); err != nil {
				b.Fatal(err)
			}
			tw.End()
		}
		if err := s.Commit(wb); err != nil {
			b.Fatal(err)
		}
	}
}

// compactAndWait compacts at the current revision and waits until the old
// versions are physically removed.
func compactAndWait(b *testing.B, s *mvcc.Store) {
	b.Helper()
	wb := s.NewBatch()
	rev := wb.Rev()
	if err := wb.Compact(rev); err != nil {
		b.Fatal(err)
	}
	if err := s.Commit(wb); err != nil {
		b.Fatal(err)
	}
	if err := s.WaitCompacted(context.Background(), rev); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCompaction measures one compaction of 10,000 revisions (single
// puts on random keys) on a store of 100k and of 1M keys: its cost should
// follow the revisions compacted, not the keys in the store. One op is one
// compaction, from the Compact commit to the physical removal.
//
// Sub-benchmarks force how the compaction visits keys (mode=events or
// mode=scan) or let it choose (mode=auto, as the server does).
func BenchmarkCompaction(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		forEachMode(b, fmt.Sprintf("keys=%d/revs=10000", n), func(b *testing.B) {
			s := openBench(b)
			keys := loadKeys(b, s, n)
			rng := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				updateRandom(b, s, keys, 10000, rng)
				b.StartTimer()
				compactAndWait(b, s)
			}
		})
	}
}

// BenchmarkWriterDuringCompaction measures the commit latency of a writer
// committing one put per batch (a lone request on the apply loop), first
// alone, then while a compaction of 1M revisions (100k keys, 10 versions
// each) runs. It reports the p50 and p99 of both, in microseconds.
func BenchmarkWriterDuringCompaction(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s := openBench(b)
		keys := benchKeys()
		putAll(b, s, keys, 10)
		rng := rand.New(rand.NewPCG(1, 2))

		write := func(stop <-chan struct{}, max int) []time.Duration {
			var lat []time.Duration
			for len(lat) < max {
				select {
				case <-stop:
					return lat
				default:
				}
				t0 := time.Now()
				wb := s.NewBatch()
				tw := wb.Write()
				if _, _, err := tw.Put(keys[rng.IntN(len(keys))], benchValue, 0); err != nil {
					b.Error(err)
					return lat
				}
				tw.End()
				if err := s.Commit(wb); err != nil {
					b.Error(err)
					return lat
				}
				lat = append(lat, time.Since(t0))
			}
			return lat
		}

		// The writer alone, for as many commits as it makes in 2 s.
		stop := make(chan struct{})
		time.AfterFunc(2*time.Second, func() { close(stop) })
		idle := write(stop, 1<<30)

		// The same writer while the store compacts everything before now.
		wb := s.NewBatch()
		rev := wb.Rev()
		if err := wb.Compact(rev); err != nil {
			b.Fatal(err)
		}
		if err := s.Commit(wb); err != nil {
			b.Fatal(err)
		}
		stop = make(chan struct{})
		var busy []time.Duration
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); busy = write(stop, 1<<30) }()
		t0 := time.Now()
		if err := s.WaitCompacted(context.Background(), rev); err != nil {
			b.Fatal(err)
		}
		took := time.Since(t0)
		close(stop)
		wg.Wait()
		pct := func(lat []time.Duration, p float64) float64 {
			if len(lat) == 0 {
				return 0
			}
			slices.Sort(lat)
			return float64(lat[int(float64(len(lat)-1)*p)].Microseconds())
		}
		b.ReportMetric(pct(idle, 0.5), "p50-idle-µs")
		b.ReportMetric(pct(idle, 0.99), "p99-idle-µs")
		b.ReportMetric(pct(busy, 0.5), "p50-compacting-µs")
		b.ReportMetric(pct(busy, 0.99), "p99-compacting-µs")
		b.ReportMetric(took.Seconds(), "compaction-s")
		b.ReportMetric(float64(len(busy)), "writes-during")
	}
}

// BenchmarkCompactionDense measures one compaction of a span that touches
// every key many times: 20k keys written 10 times (200k revisions), all
// compacted at once. This is where a scan of the versions is at its best.
func BenchmarkCompactionDense(b *testing.B) {
	forEachMode(b, "keys=20000/versions=10", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s := openBench(b)
			keys := benchKeys()[:20000]
			putAll(b, s, keys, 10)
			b.StartTimer()
			compactAndWait(b, s)
		}
	})
}

// forEachMode runs bench as name/mode=M for each way compaction can visit
// keys; -bench 'X/mode=auto' picks one.
func forEachMode(b *testing.B, name string, bench func(b *testing.B)) {
	for _, mode := range []string{"auto", "events", "scan"} {
		b.Run(name+"/mode="+mode, func(b *testing.B) {
			defer mvcc.SetCompactionMode(mode)()
			bench(b)
		})
	}
}
