package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The watch benchmarks each start a member of their own and do a fixed
// amount of work whatever b.N is: run them with -benchtime 1x.

// Shape of BenchmarkWatchManyWatchers: watchStreams gRPC watch streams over
// watchConns connections; stream s watches the pointsPerStream keys
// "w/ss/kk" one by one, and the prefix "w/tt/" of the next stream's keys.
// Every key is written watchRounds times.
const (
	watchStreams    = 100
	watchConns      = 10
	pointsPerStream = 100
	watchRounds     = 5
	watchWriters    = 100 // goroutines, over watchConns more connections
	eventsTimeout   = time.Minute
)

func watchKey(s, k int) string { return fmt.Sprintf("w/%02d/%02d", s, k) }
func watchPrefix(s int) string { return fmt.Sprintf("w/%02d/", s) }

// BenchmarkWatchManyWatchers creates 10,000 watchers on distinct keys and
// 100 prefix watchers of 100 keys each, reports the heap they cost, then
// writes every key watchRounds times from many goroutines and checks that
// each watcher gets exactly its events, in revision order. It reports the
// events delivered per second while the writes flow (each put makes two).
//
// The streams are raw gRPC watch streams, so the client keeps nothing per
// watcher but a counter: the heap growth is the member's (and gRPC's).
func BenchmarkWatchManyWatchers(b *testing.B) {
	ep := startMember(b)
	conns := dial(b, ep, watchConns)
	writers := dial(b, ep, watchConns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	heap0, goroutines0 := heapInuse(), runtime.NumGoroutine()
	streams := make([]*rawStream, watchStreams)
	for s := range streams {
		var specs []watchSpec
		for k := range pointsPerStream {
			specs = append(specs, watchSpec{key: watchKey(s, k), want: watchRounds})
		}
		p := watchPrefix((s + 1) % watchStreams)
		specs = append(specs, watchSpec{key: p, end: clientv3.GetPrefixRangeEnd(p), want: pointsPerStream * watchRounds})
		streams[s] = openRawStream(b, ctx, conns[s%len(conns)], specs)
	}
	heap1, goroutines1 := heapInuse(), runtime.NumGoroutine()
	watchers := createAll(b, streams)
	heap2, goroutines2 := heapInuse(), runtime.NumGoroutine()
	b.ReportMetric(float64(heap2-heap1)/float64(watchers), "B/watcher")
	b.ReportMetric(float64(heap1-heap0)/watchStreams, "B/stream")
	b.Logf("heap in use: %d B before the streams, %d B with %d streams, %d B with %d watchers; goroutines %d, %d, %d",
		heap0, heap1, watchStreams, heap2, watchers, goroutines0, goroutines1, goroutines2)

	keys := watchStreams * pointsPerStream
	putAndCount(b, writers, streams, keys*watchRounds, func(i int) string {
		k := i % keys
		return watchKey(k/pointsPerStream, k%pointsPerStream)
	})
}

// Shape of BenchmarkWatchEventsDelivered, as the etcd baseline's "watch:
// events delivered" row: deliverPuts puts, each to a key that
// deliverPerKey watchers watch.
const (
	deliverStreams = 10
	deliverKeys    = 100 // every stream watches each key once
	deliverPerKey  = deliverStreams
	deliverPuts    = 20000
)

// BenchmarkWatchEventsDelivered: 1000 watchers on 100 keys (10 raw gRPC
// streams, each watching every key once), 20,000 puts from many
// goroutines as fast as the member takes them: 200,000 events. It reports
// events delivered per second, from the first put to the last event, and
// checks every watcher's count.
func BenchmarkWatchEventsDelivered(b *testing.B) {
	ep := startMember(b)
	conns := dial(b, ep, deliverStreams)
	writers := dial(b, ep, watchConns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := make([]*rawStream, deliverStreams)
	for s := range streams {
		specs := make([]watchSpec, deliverKeys)
		for k := range specs {
			specs[k] = watchSpec{key: fmt.Sprintf("ev/%02d", k), want: deliverPuts / deliverKeys}
		}
		streams[s] = openRawStream(b, ctx, conns[s], specs)
	}
	createAll(b, streams)
	putAndCount(b, writers, streams, deliverPuts, func(i int) string { return fmt.Sprintf("ev/%02d", i%deliverKeys) })
}

// createAll creates every stream's watchers and waits until they are all
// created; it returns how many there are.
func createAll(b *testing.B, streams []*rawStream) int {
	b.Helper()
	n := 0
	for _, st := range streams {
		st.createWatchers(b)
		n += len(st.specs)
	}
	for _, st := range streams {
		st.waitCreated(b)
	}
	return n
}

// putAndCount makes puts puts, to key(i) for i in [0, puts), from
// watchWriters goroutines over writers, waits until every stream has all
// its events and checks them. It reports events/s (events delivered from
// the first put to the last event) and puts/s.
func putAndCount(b *testing.B, writers []*clientv3.Client, streams []*rawStream, puts int, key func(i int) string) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for g := range watchWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := writers[g%len(writers)]
			for i := next.Add(1) - 1; i < int64(puts); i = next.Add(1) - 1 {
				if _, err := cli.Put(context.Background(), key(int(i)), value); err != nil {
					b.Errorf("put: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	putsDone := time.Since(began)
	deadline := time.After(eventsTimeout)
	var events int64
	for _, st := range streams {
		st.waitEvents(b, deadline)
		events += st.want
	}
	elapsed := time.Since(began)
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(puts)/putsDone.Seconds(), "puts/s")
	b.Logf("%d puts in %v, %d events delivered in %v", puts, putsDone, events, elapsed)
	for _, st := range streams {
		st.check(b)
	}
}

// BenchmarkWatchLatency: watchers on one key, spread over 10 clients (one
// watch stream each, as clientv3 shares a stream among a client's
// watchers); one client puts to the key at a fixed rate. It reports the
// delay from each put's response to each watcher receiving the event (as
// etcd's watch-latency benchmark: 100 watchers at 500 puts/s), and the put
// latency. The 1000-watcher run puts at 50/s, so both deliver 50k events/s.
func BenchmarkWatchLatency(b *testing.B) {
	ep := startMember(b)
	for _, tc := range []struct {
		watchers, rate int
	}{{100, 500}, {1000, 50}} {
		b.Run(fmt.Sprintf("watchers=%d/puts=%d_per_s", tc.watchers, tc.rate), func(b *testing.B) {
			benchWatchLatency(b, ep, tc.watchers, tc.rate)
		})
	}
}

// latencyRun is how long BenchmarkWatchLatency puts.
const latencyRun = 5 * time.Second

func benchWatchLatency(b *testing.B, ep string, watchers, rate int) {
	clis := dial(b, ep, 10)
	putter := dial(b, ep, 1)[0]
	key := fmt.Sprintf("lat/%d", watchers)
	puts := int(latencyRun.Seconds()) * rate
	// received[w][i]: when watcher w got put i's event (unix ns).
	received := make([][]int64, watchers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var created, done sync.WaitGroup
	for w := range received {
		received[w] = make([]int64, puts)
		wch := clis[w%len(clis)].Watch(ctx, key, clientv3.WithCreatedNotify())
		created.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			got := 0
			for resp := range wch {
				now := time.Now().UnixNano()
				if resp.Created {
					created.Done()
				}
				for _, ev := range resp.Events {
					i, err := strconv.Atoi(string(ev.Kv.Value))
					if err != nil || i >= puts || received[w][i] != 0 {
						b.Errorf("watcher %d: unexpected event %s=%q", w, ev.Kv.Key, ev.Kv.Value)
						return
					}
					received[w][i] = now
					got++
				}
				if got == puts {
					return
				}
			}
		}()
	}
	created.Wait()

	acked := make([]int64, puts)
	putLat := make([]time.Duration, puts)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	began := time.Now()
	for i := range puts {
		<-tick.C
		sent := time.Now()
		if _, err := putter.Put(ctx, key, strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		acked[i], putLat[i] = now.UnixNano(), now.Sub(sent)
	}
	waited := make(chan struct{})
	go func() { done.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(eventsTimeout):
		b.Fatalf("watchers did not get all %d events within %v", puts, eventsTimeout)
	}
	elapsed := time.Since(began)

	delays := make([]time.Duration, 0, watchers*puts)
	early := 0
	for w := range received {
		for i, at := range received[w] {
			d := time.Duration(at - acked[i])
			if d < 0 {
				early++ // the event beat the put's response
				d = 0
			}
			delays = append(delays, d)
		}
	}
	reportLatency(b, "event-delay", delays)
	reportLatency(b, "put", putLat)
	b.ReportMetric(float64(len(delays))/elapsed.Seconds(), "events/s")
	b.Logf("%d watchers, %d puts at %d/s: %d events, %d of them before the put's response", watchers, puts, rate, len(delays), early)
}

// Shape of BenchmarkWatchCatchUp.
const (
	catchUpEvents  = 100000
	catchUpLoaders = 200 // goroutines over 10 connections
	baselineRun    = 3 * time.Second
	// slowDrainRate is the events per second the slow watcher reads.
	slowDrainRate = 20000
	catchUpPrefix = "cu/"
)

// BenchmarkWatchCatchUp writes 100,000 events, then starts a watcher on
// every key from revision 1 while a writer puts one key at a time. The
// watcher reads its stream as fast as it can (drain=fast) or at 20,000
// events/s (drain=slow: gRPC flow control then holds up the member's
// sender, its stream buffer fills and the watcher is parked and retried
// from storage). It reports the catch-up rate (events up to the revision
// at which the watcher was created, per second until the last of them
// arrived) and the writer's put latency during the catch-up and, as a
// baseline, during baselineRun before any catch-up.
func BenchmarkWatchCatchUp(b *testing.B) {
	ep := startMember(b)
	loaders := dial(b, ep, 10)
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for g := range catchUpLoaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := loaders[g%len(loaders)]
			for i := next.Add(1) - 1; i < catchUpEvents; i = next.Add(1) - 1 {
				if _, err := cli.Put(context.Background(), catchUpPrefix+putKey(i), value); err != nil {
					b.Errorf("load: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.Logf("loaded %d events in %v", catchUpEvents, time.Since(began))

	wcli := dial(b, ep, 1)[0]
	base := startWriter(b, wcli, "cuw/")
	baseFrom := time.Now()
	time.Sleep(baselineRun)
	baseTo := time.Now()
	base.finish()
	for _, drain := range []string{"fast", "slow"} {
		b.Run("drain="+drain, func(b *testing.B) {
			reportWriter(b, "put-before", base, baseFrom, baseTo)
			benchCatchUp(b, ep, wcli, drain == "slow")
		})
	}
}

func benchCatchUp(b *testing.B, ep string, wcli *clientv3.Client, slow bool) {
	conn := dial(b, ep, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	heap0 := heapInuse()
	w := startWriter(b, wcli, "cuw/")
	defer w.finish()
	ws, err := pb.NewWatchClient(conn.ActiveConnection()).Watch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	began, cpu0 := time.Now(), cpuTime()
	err = ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte{0}, RangeEnd: []byte{0}, StartRevision: 1}}})
	if err != nil {
		b.Fatal(err)
	}
	// The created response carries the revision the watcher starts behind.
	resp, err := ws.Recv()
	if err != nil || !resp.Created {
		b.Fatalf("create watcher: %v %v", resp, err)
	}
	target := resp.Header.Revision

	var peakHeap atomic.Uint64
	sampled := make(chan struct{})
	sampling, stopSampling := context.WithCancel(ctx)
	go func() {
		defer close(sampled)
		sampleHeap(sampling, &peakHeap)
	}()
	events, last := 0, int64(0)
	for last < target {
		resp, err := ws.Recv()
		if err != nil {
			b.Fatalf("watch: %v after %d events", err, events)
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision <= last {
				b.Fatalf("revision %d after %d", ev.Kv.ModRevision, last)
			}
			last = ev.Kv.ModRevision
			if last <= target {
				events++
			}
		}
		if slow {
			time.Sleep(time.Duration(len(resp.Events)) * time.Second / slowDrainRate)
		}
	}
	elapsed, cpu := time.Since(began), cpuTime()-cpu0
	stopSampling()
	<-sampled
	w.finish()
	// Every revision up to target holds exactly one put.
	if events != int(target-1) {
		b.Errorf("caught up %d events up to revision %d, want %d", events, target, target-1)
	}
	b.ReportMetric(float64(events)/elapsed.Seconds(), "catch-up-events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(events), "cpu-µs/event")
	reportWriter(b, "put-during", w, began, began.Add(elapsed))
	if peak := peakHeap.Load(); peak > heap0 {
		b.ReportMetric(float64(peak-heap0)/(1<<20), "heap-peak-growth-MB")
	}
	b.Logf("caught up %d events (to revision %d) in %v, using %v of CPU (client, member and writer)", events, target, elapsed, cpu)
}

// sampleHeap records the largest HeapInuse seen every 100 ms until ctx ends.
func sampleHeap(ctx context.Context, peak *atomic.Uint64) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse > peak.Load() {
			peak.Store(ms.HeapInuse)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
