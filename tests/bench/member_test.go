package bench

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/embed"
)

// startMember starts a member of its own, with fsync, for a benchmark that
// another benchmark's data would disturb: one that measures the heap, reads
// the store from its first revision, or leaves thousands of leases behind.
// It is closed when b ends.
func startMember(b *testing.B) string {
	b.Helper()
	local := []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}}
	srv, err := embed.Start(embed.Config{
		Dir:              filepath.Join(b.TempDir(), "data"),
		ListenClientURLs: local,
		ListenPeerURLs:   local,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatalf("start cairn: %v", err)
	}
	b.Cleanup(func() {
		if err := srv.Close(); err != nil {
			b.Errorf("close cairn: %v", err)
		}
	})
	return srv.ClientEndpoints()[0]
}

// dial opens n clientv3 clients (n connections) to ep, connected before
// it returns and closed when b ends.
func dial(b *testing.B, ep string, n int) []*clientv3.Client {
	b.Helper()
	out := make([]*clientv3.Client, n)
	for i := range out {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{ep},
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cli.Close() })
		out[i] = cli
	}
	for _, cli := range out {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Get(ctx, "warm-up", clientv3.WithSerializable())
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// heapInuse is the heap in use after a full collection, in bytes. Client
// and server share the process, so it counts both.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// percentile returns the p-th percentile (0 < p <= 100) of ds, which it sorts.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// reportLatency reports the p50 and p99 of ds in milliseconds, as
// "<name>-p50-ms" and "<name>-p99-ms".
func reportLatency(b *testing.B, name string, ds []time.Duration) {
	b.Helper()
	if len(ds) == 0 {
		b.Errorf("%s: no samples", name)
		return
	}
	b.ReportMetric(ms(percentile(ds, 50)), name+"-p50-ms")
	b.ReportMetric(ms(percentile(ds, 99)), name+"-p99-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writer is one client putting to keys under a prefix, one put at a
// time, as fast as the member answers; it records each put's start and
// latency, so a benchmark can compare windows of one run.
type writer struct {
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	puts     []timedPut // read after done
}

type timedPut struct {
	at   time.Time
	took time.Duration
}

// startWriter starts a writer; finish stops it.
func startWriter(b *testing.B, cli *clientv3.Client, prefix string) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := int64(0); ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			began := time.Now()
			_, err := cli.Put(ctx, prefix+putKey(i), value)
			cancel()
			if err != nil {
				b.Errorf("writer: put: %v", err)
				return
			}
			w.puts = append(w.puts, timedPut{at: began, took: time.Since(began)})
		}
	}()
	return w
}

// finish stops the writer and waits for its last put; it may be called
// more than once.
func (w *writer) finish() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
}

// between returns the latencies of the puts that started in [from, to).
func (w *writer) between(from, to time.Time) []time.Duration {
	var out []time.Duration
	for _, p := range w.puts {
		if !p.at.Before(from) && p.at.Before(to) {
			out = append(out, p.took)
		}
	}
	return out
}

// reportWriter reports the puts of w that started in [from, to): their
// p50 and p99 latency ("<name>-p50-ms", "<name>-p99-ms") and rate
// ("<name>-puts/s"), and logs the slowest.
func reportWriter(b *testing.B, name string, w *writer, from, to time.Time) {
	b.Helper()
	ds := w.between(from, to)
	reportLatency(b, name, ds)
	b.ReportMetric(float64(len(ds))/to.Sub(from).Seconds(), name+"-puts/s")
	if len(ds) > 0 {
		b.Logf("%s: %d puts in %v, slowest %v", name, len(ds), to.Sub(from).Round(time.Millisecond), slices.Max(ds))
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
