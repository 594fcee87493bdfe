package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Workload shapes, as etcd's benchmark runs in docs/perf.md: 8-byte keys
// over a key space of 100k, 256-byte values; the parallel benchmarks use
// parallelConns connections shared by about parallelClients goroutines
// (etcd's --conns 100 --clients 1000).
const (
	keySpace        = 100000
	valueSize       = 256
	parallelConns   = 100
	parallelClients = 1000
)

var value = string(make([]byte, valueSize))

// putKey is the i-th key of the put key space, 8 bytes.
func putKey(i int64) string { return fmt.Sprintf("%08d", i%keySpace) }

// BenchmarkPutSerial: one client, one put at a time (etcd's c1x1).
func BenchmarkPutSerial(b *testing.B) {
	cli := clients(b, 1)[0]
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cli.Put(ctx, putKey(int64(i)), value); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b)
}

// BenchmarkPutParallel: many concurrent puts over many connections,
// sequential keys (etcd's c100x1000).
func BenchmarkPutParallel(b *testing.B) {
	runParallelPuts(b, clients(b, parallelConns))
}

// runParallelPuts runs b.N puts of sequential keys over clis, about
// parallelClients at a time, and reports ops/s.
func runParallelPuts(b *testing.B, clis []*clientv3.Client) {
	ctx := context.Background()
	runParallel(b, clis, func(cli *clientv3.Client, i int64) error {
		_, err := cli.Put(ctx, putKey(i), value)
		return err
	})
}

// runParallel runs op b.N times, about parallelClients goroutines at a
// time, each on one of clis in turn, with i counting up from 1 across all
// of them; it stops a goroutine at its first error, and reports ops/s.
func runParallel(b *testing.B, clis []*clientv3.Client, op func(cli *clientv3.Client, i int64) error) {
	var next, conn atomic.Int64
	b.ReportAllocs()
	setParallelism(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cli := clis[int(conn.Add(1))%len(clis)]
		for pb.Next() {
			if err := op(cli, next.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b)
}

// setParallelism makes RunParallel use about parallelClients goroutines.
func setParallelism(b *testing.B) {
	b.SetParallelism(max(1, parallelClients/runtime.GOMAXPROCS(0)))
}

// Range benchmarks read keys that rangeKeys loads once per run.
const (
	rangePrefixes = 100 // "r/pp/" prefixes of 100 keys each: "r/pp/kk"
	rangePerPref  = 100
)

var loadRange sync.Once

// rangeKeys loads the range benchmarks' keys (10k keys, in transactions
// of 100 puts).
func rangeKeys(b *testing.B, cli *clientv3.Client) {
	b.Helper()
	var err error
	loadRange.Do(func() {
		for p := 0; p < rangePrefixes && err == nil; p++ {
			ops := make([]clientv3.Op, rangePerPref)
			for k := range ops {
				ops[k] = clientv3.OpPut(fmt.Sprintf("r/%02d/%02d", p, k), value)
			}
			_, err = cli.Txn(context.Background()).Then(ops...).Commit()
		}
	})
	if err != nil {
		b.Fatalf("load range keys: %v", err)
	}
}

func rangeKey(i int64) string {
	return fmt.Sprintf("r/%02d/%02d", (i/rangePerPref)%rangePrefixes, i%rangePerPref)
}

func rangePrefix(i int64) string { return fmt.Sprintf("r/%02d/", i%rangePrefixes) }

// readOpts returns the options of a read of one key or of a 100-key prefix.
func readOpts(serializable, prefix bool) []clientv3.OpOption {
	var opts []clientv3.OpOption
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	return opts
}

func benchRangeSerial(b *testing.B, serializable bool) {
	cli := clients(b, 1)[0]
	rangeKeys(b, cli)
	ctx := context.Background()
	opts := readOpts(serializable, false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := rangeKey(int64(i))
		resp, err := cli.Get(ctx, key, opts...)
		if err != nil {
			b.Fatalf("get %s: %v", key, err)
		}
		if len(resp.Kvs) != 1 {
			b.Fatalf("get %s: %d keys, want 1", key, len(resp.Kvs))
		}
	}
	reportOps(b)
}

func benchRangeParallel(b *testing.B, serializable, prefix bool) {
	clis := clients(b, parallelConns)
	rangeKeys(b, clis[0])
	ctx := context.Background()
	opts := readOpts(serializable, prefix)
	want := 1
	if prefix {
		want = rangePerPref
	}
	runParallel(b, clis, func(cli *clientv3.Client, i int64) error {
		key := rangeKey(i)
		if prefix {
			key = rangePrefix(i)
		}
		resp, err := cli.Get(ctx, key, opts...)
		if err != nil {
			return fmt.Errorf("get %s: %v", key, err)
		}
		if len(resp.Kvs) != want {
			return fmt.Errorf("get %s: %d keys, want %d", key, len(resp.Kvs), want)
		}
		return nil
	})
}

// BenchmarkRangeLinearizable: one client reads one key at a time; each
// read waits for a ReadIndex round (etcd's c1x1).
func BenchmarkRangeLinearizable(b *testing.B) { benchRangeSerial(b, false) }

// BenchmarkRangeSerializable: as above, served from local state.
func BenchmarkRangeSerializable(b *testing.B) { benchRangeSerial(b, true) }

// BenchmarkRangeLinearizableParallel: many concurrent one-key reads,
// which share ReadIndex rounds.
func BenchmarkRangeLinearizableParallel(b *testing.B) { benchRangeParallel(b, false, false) }

// BenchmarkRangeSerializableParallel: many concurrent one-key local reads.
func BenchmarkRangeSerializableParallel(b *testing.B) { benchRangeParallel(b, true, false) }

// BenchmarkRange100KeysParallel: many concurrent reads of a 100-key prefix.
func BenchmarkRange100KeysParallel(b *testing.B) {
	b.Run("linearizable", func(b *testing.B) { benchRangeParallel(b, false, true) })
	b.Run("serializable", func(b *testing.B) { benchRangeParallel(b, true, true) })
}
