package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Parameters of TestRestartDoesNotScanKeys.
const (
	restartKeys      = 20000
	restartValueSize = 4096 // random bytes, so compression does not shrink them
	// The small puts after the load push every big value out of the Raft
	// log the member keeps (the last 5000 catch-up entries, plus at most
	// snapshot-count more): replaying that log tail is allowed to cost
	// I/O, but it is bounded by configuration, not by the number of keys.
	restartSnapshotCount = 500
	restartTailPuts      = 5000 + 2*restartSnapshotCount
	loaders              = 16
	// A restart may read at most this fraction of the live values; reading
	// the keys to rebuild an index would read all of them. (Cairn's own
	// reads are about 0.2%; Pebble's housekeeping at open adds up to a few
	// percent.)
	restartReadFraction = 4
)

// TestRestartDoesNotScanKeys loads 20k keys of 4 KiB, restarts the real
// binary and checks from the process's own I/O counters that start-up read
// a small fraction of the data: restart reads meta keys and the Raft log
// tail, never the keyspace. (It asserts bytes read, not time; the times
// are logged for docs/perf.md.)
//
// Pebble does its own bounded housekeeping at open, which the counters
// cannot tell apart from Cairn's reads:
//
//   - The first restart after the load replays the write-ahead log of the
//     memtables not yet flushed (Pebble does not flush on close) and
//     flushes them: bounded by the memtable size and count, not by the
//     number of keys, but tens of MB here. So the test restarts once and
//     waits until that and the compactions it causes are done.
//   - Every open flushes the small WAL of the previous run into L0; when
//     L0 reaches its threshold, an L0 compaction of the Raft log and meta
//     keys' region runs during start-up (a few MB here). That happens on
//     some restarts, not all, while a scan by Cairn would cost every one:
//     so the assertion is on the cheapest of steadyRestarts restarts.
func TestRestartDoesNotScanKeys(t *testing.T) {
	const steadyRestarts = 3
	m := newMember(t, fmt.Sprintf("--snapshot-count=%d", restartSnapshotCount))
	p := m.start(t)
	t.Logf("start on an empty data dir took %v", p.startup)
	load(t, m, p)
	p.stop(t)

	p = m.start(t)
	t.Logf("restart with %d keys, replaying Pebble's WAL, took %v (read %d B)",
		restartKeys, p.startup, p.ioCounters(t)["rchar"])
	waitIdle(t, p)

	var reads []int64
	for i := range steadyRestarts {
		p.stop(t)
		p = m.start(t)
		read := p.ioCounters(t)["rchar"]
		reads = append(reads, read)
		t.Logf("restart %d with %d keys took %v (read %d B)", i+1, restartKeys, p.startup, read)
	}
	if live := int64(restartKeys * restartValueSize); slices.Min(reads) > live/restartReadFraction {
		t.Errorf("every restart read at least %d B before it was ready (%v); the keys hold %d B of values, want at most 1/%d of that",
			slices.Min(reads), reads, live, restartReadFraction)
	}

	cli := newClient(t, m)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := cli.Get(ctx, "big/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("count after restart: %v", err)
	}
	if resp.Count != restartKeys {
		t.Errorf("after restart: %d keys, want %d", resp.Count, restartKeys)
	}
	if resp.Header.Revision != 1+restartKeys+restartTailPuts {
		t.Errorf("after restart: revision %d, want %d", resp.Header.Revision, 1+restartKeys+restartTailPuts)
	}
}

// load writes restartKeys keys with random values, then restartTailPuts
// small puts to one key.
func load(t *testing.T, m *member, p *proc) {
	t.Helper()
	clis := make([]*clientv3.Client, 4)
	for i := range clis {
		clis[i] = newClient(t, m)
		defer clis[i].Close()
	}
	start := time.Now()
	slowest := parallelPuts(t, p, clis, restartKeys, func(g int) func(i int) (string, string) {
		rng := rand.NewChaCha8([32]byte{byte(g)})
		buf := make([]byte, restartValueSize)
		return func(i int) (string, string) {
			_, _ = rng.Read(buf)
			return fmt.Sprintf("big/%06d", i), string(buf)
		}
	})
	slowest = max(slowest, parallelPuts(t, p, clis, restartTailPuts, func(int) func(i int) (string, string) {
		return func(i int) (string, string) { return "tail", fmt.Sprint(i) }
	}))
	t.Logf("loaded %d keys of %d B and %d small puts in %v; slowest put %v",
		restartKeys, restartValueSize, restartTailPuts, time.Since(start), slowest)
}

// parallelPuts makes n puts from loaders goroutines over clis: goroutine g
// makes puts i = g, g+loaders, ... with the keys and values that gen(g)
// returns. It returns the slowest put's latency.
func parallelPuts(t *testing.T, p *proc, clis []*clientv3.Client, n int, gen func(g int) func(i int) (key, value string)) time.Duration {
	t.Helper()
	var slowest atomic.Int64 // ns
	var wg sync.WaitGroup
	errs := make(chan error, loaders)
	for g := range loaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli, next := clis[g%len(clis)], gen(g)
			for i := g; i < n; i += loaders {
				key, value := next(i)
				ctx, cancel := opCtx()
				began := time.Now()
				_, err := cli.Put(ctx, key, value)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("put %s: %w", key, err)
					return
				}
				for d, s := int64(time.Since(began)), slowest.Load(); d > s && !slowest.CompareAndSwap(s, d); s = slowest.Load() {
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%v; cairn's stderr:\n%s", err, p.stderr)
	}
	return time.Duration(slowest.Load())
}

// waitIdle waits until p does next to no I/O (Pebble's flushes and
// compactions after a restart are done). Nothing outside the process can
// await that, so it polls the I/O counters; an idle member still reads and
// writes a few bytes a second (the Go runtime's eventfd wake-ups).
func waitIdle(t *testing.T, p *proc) {
	t.Helper()
	const (
		window   = 500 * time.Millisecond
		quietFor = 2        // windows in a row
		quietIO  = 16 << 10 // bytes read or written in a window
		maxWait  = 60 * time.Second
	)
	deadline := time.Now().Add(maxWait)
	last, quiet := p.ioCounters(t), 0
	for quiet < quietFor {
		select {
		case <-p.exited:
			t.Fatalf("cairn exited (%v); stderr:\n%s", p.waitErr, p.stderr)
		case <-time.After(window):
		}
		if time.Now().After(deadline) {
			t.Fatalf("cairn still doing I/O after %v: %v", maxWait, last)
		}
		cur := p.ioCounters(t)
		if cur["rchar"]-last["rchar"] < quietIO && cur["wchar"]-last["wchar"] < quietIO {
			quiet++
		} else {
			quiet = 0
		}
		last = cur
	}
}
