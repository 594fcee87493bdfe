package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The lease benchmarks each start a member of their own and do a fixed
// amount of work whatever b.N is: run them with -benchtime 1x.

// Shape of BenchmarkLeaseGrant100k.
const (
	manyLeases = 100000
	// longTTL outlives any benchmark (and its half-life, when the leader
	// would checkpoint it), so no lease expires or is checkpointed.
	longTTL      = 3600
	leaseConns   = 100
	leaseClients = 1000 // goroutines over leaseConns connections
)

// BenchmarkLeaseGrant100k grants 100,000 leases and puts one key on each,
// from 1000 goroutines over 100 connections (each goroutine: grant, then
// put). It reports leases/s and the heap in use per lease once they are
// all there, and checks a sample of them with TimeToLive.
func BenchmarkLeaseGrant100k(b *testing.B) {
	ep := startMember(b)
	clis := dial(b, ep, leaseConns)
	heap0 := heapInuse()
	ids := make([]clientv3.LeaseID, manyLeases)
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for g := range leaseClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[g%len(clis)]
			for i := next.Add(1) - 1; i < manyLeases; i = next.Add(1) - 1 {
				l, err := cli.Grant(context.Background(), longTTL)
				if err != nil {
					b.Errorf("grant: %v", err)
					return
				}
				if _, err := cli.Put(context.Background(), leaseKey(i), value, clientv3.WithLease(l.ID)); err != nil {
					b.Errorf("put: %v", err)
					return
				}
				ids[i] = l.ID
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	if b.Failed() {
		return
	}
	heap1 := heapInuse()
	b.ReportMetric(manyLeases/elapsed.Seconds(), "leases/s")
	b.ReportMetric(float64(heap1-heap0)/manyLeases, "B/lease")
	b.Logf("%d leases with a key each in %v; heap in use %d B before, %d B after", manyLeases, elapsed, heap0, heap1)

	ctx := context.Background()
	for i := 0; i < manyLeases; i += manyLeases / 100 {
		resp, err := clis[0].TimeToLive(ctx, ids[i], clientv3.WithAttachedKeys())
		if err != nil {
			b.Fatal(err)
		}
		if resp.TTL <= 0 || len(resp.Keys) != 1 || string(resp.Keys[0]) != leaseKey(int64(i)) {
			b.Errorf("lease %d: TTL %d, keys %q; want alive with key %s", i, resp.TTL, resp.Keys, leaseKey(int64(i)))
		}
	}
	began = time.Now()
	all, err := clis[0].Leases(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("listing %d leases took %v", len(all.Leases), time.Since(began))
	if len(all.Leases) != manyLeases {
		b.Errorf("%d leases listed, want %d", len(all.Leases), manyLeases)
	}
}

func leaseKey(i int64) string { return fmt.Sprintf("l/%06d", i) }

// Shapes of BenchmarkLeaseKeepAlive.
const (
	keepAliveRun     = 5 * time.Second
	keepAliveStreams = 100
	leasesPerStream  = 100
	keepAliveTTL     = 60
)

// BenchmarkLeaseKeepAlive measures keep-alives per second over gRPC for
// keepAliveRun:
//
//   - streams=100x100: 100 LeaseKeepAlive streams over 100 connections,
//     each renewing its own 100 leases round and round, with every lease's
//     next request sent as soon as its previous answer arrives (so up to
//     100 requests in flight per stream);
//   - once=c100x1000: etcd's lease-keepalive benchmark shape, 1000
//     goroutines over 100 connections, each renewing its own lease with
//     clientv3's KeepAliveOnce (a new stream per keep-alive), which also
//     gives a latency.
//
// Every answer must carry the lease's full TTL.
func BenchmarkLeaseKeepAlive(b *testing.B) {
	ep := startMember(b)
	clis := dial(b, ep, leaseConns)
	ids := grantMany(b, clis, keepAliveStreams*leasesPerStream, keepAliveTTL)
	b.Run(fmt.Sprintf("streams=%dx%d", keepAliveStreams, leasesPerStream), func(b *testing.B) {
		benchKeepAliveStreams(b, clis, ids)
	})
	b.Run(fmt.Sprintf("once=c%dx%d", leaseConns, leaseClients), func(b *testing.B) {
		benchKeepAliveOnce(b, clis, ids[:leaseClients])
	})
}

// grantMany grants n leases of ttl seconds, from leaseClients goroutines.
func grantMany(b *testing.B, clis []*clientv3.Client, n int, ttl int64) []clientv3.LeaseID {
	b.Helper()
	ids := make([]clientv3.LeaseID, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range min(leaseClients, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				l, err := clis[g%len(clis)].Grant(context.Background(), ttl)
				if err != nil {
					b.Errorf("grant: %v", err)
					return
				}
				ids[i] = l.ID
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return ids
}

func benchKeepAliveStreams(b *testing.B, clis []*clientv3.Client, ids []clientv3.LeaseID) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var renewed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	began := time.Now()
	for s := range keepAliveStreams {
		ka, err := pb.NewLeaseClient(clis[s%len(clis)].ActiveConnection()).LeaseKeepAlive(ctx)
		if err != nil {
			b.Fatal(err)
		}
		mine := ids[s*leasesPerStream : (s+1)*leasesPerStream]
		// Each lease has one request in flight at a time: the receiver
		// hands its ID back to the sender.
		again := make(chan clientv3.LeaseID, len(mine))
		for _, id := range mine {
			again <- id
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					ka.CloseSend()
					return
				case id := <-again:
					if err := ka.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
						select {
						case <-stop: // the benchmark ended the stream
						default:
							b.Errorf("keep-alive send: %v", err)
						}
						return
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			for {
				resp, err := ka.Recv()
				if err != nil {
					return // the sender closed, or the benchmark ended
				}
				if resp.TTL != keepAliveTTL {
					b.Errorf("keep-alive of %x: TTL %d, want %d", resp.ID, resp.TTL, keepAliveTTL)
					return
				}
				renewed.Add(1)
				again <- clientv3.LeaseID(resp.ID)
			}
		}()
	}
	time.Sleep(keepAliveRun)
	n, elapsed := renewed.Load(), time.Since(began)
	close(stop)
	cancel()
	wg.Wait()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "keepalives/s")
	b.Logf("%d keep-alives in %v over %d streams", n, elapsed, keepAliveStreams)
}

func benchKeepAliveOnce(b *testing.B, clis []*clientv3.Client, ids []clientv3.LeaseID) {
	stop := make(chan struct{})
	lats := make([][]time.Duration, len(ids))
	var wg sync.WaitGroup
	began := time.Now()
	for g, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[g%len(clis)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent := time.Now()
				resp, err := cli.KeepAliveOnce(context.Background(), id)
				if err != nil {
					b.Errorf("keep-alive: %v", err)
					return
				}
				if resp.TTL != keepAliveTTL {
					b.Errorf("keep-alive of %x: TTL %d, want %d", id, resp.TTL, keepAliveTTL)
					return
				}
				lats[g] = append(lats[g], time.Since(sent))
			}
		}()
	}
	time.Sleep(keepAliveRun)
	close(stop)
	wg.Wait()
	elapsed := time.Since(began)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "keepalives/s")
	reportLatency(b, "keepalive", all)
}

// Shape of BenchmarkLeaseMassExpiry.
const (
	expiringLeases = 10000
	expiryTTL      = 3 // seconds
	expiryBaseline = 3 * time.Second
	expiryTimeout  = time.Minute
	expiryPrefix   = "x/"
)

// BenchmarkLeaseMassExpiry grants 10,000 leases with the same TTL of 3 s
// and one key each (from 1000 goroutines: the grants spread over about a
// second), lets them all expire, and watches their keys go, while one
// client puts one key at a time throughout. It reports:
//
//   - the expiry lag: from the end of the last lease's TTL (its grant's
//     answer + TTL) until its keys were all deleted, and per lease
//     (the delete event's arrival - grant answer - TTL) p50 and p99;
//   - the writer's put latency during expiry (from the first TTL end until
//     every key is gone) against expiryBaseline before the grants.
//
// etcd, like Cairn, revokes at most 1000 expired leases a second, so
// expiring 10,000 at once takes about 10 s by design.
func BenchmarkLeaseMassExpiry(b *testing.B) {
	ep := startMember(b)
	clis := dial(b, ep, leaseConns)
	wcli := dial(b, ep, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	deleted := make(map[string]time.Time, expiringLeases)
	var mu sync.Mutex
	allGone := make(chan struct{})
	wch := wcli[1].Watch(ctx, expiryPrefix, clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithCreatedNotify())
	if resp := <-wch; !resp.Created {
		b.Fatalf("watch not created: %v", resp.Err())
	}
	go func() {
		for resp := range wch {
			now := time.Now()
			mu.Lock()
			for _, ev := range resp.Events {
				deleted[string(ev.Kv.Key)] = now
			}
			n := len(deleted)
			mu.Unlock()
			if n == expiringLeases {
				close(allGone)
				return
			}
		}
	}()

	w := startWriter(b, wcli[0], "xw/")
	defer w.finish()
	baseFrom := time.Now()
	time.Sleep(expiryBaseline)
	baseTo := time.Now()

	acked := make([]time.Time, expiringLeases)
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := range leaseClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := clis[g%len(clis)]
			for i := next.Add(1) - 1; i < expiringLeases; i = next.Add(1) - 1 {
				l, err := cli.Grant(context.Background(), expiryTTL)
				if err != nil {
					b.Errorf("grant: %v", err)
					return
				}
				acked[i] = time.Now()
				if _, err := cli.Put(context.Background(), expiryKey(i), value, clientv3.WithLease(l.ID)); err != nil {
					b.Errorf("put: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	firstEnd, lastEnd := acked[0].Add(expiryTTL*time.Second), acked[0].Add(expiryTTL*time.Second)
	for _, t := range acked {
		end := t.Add(expiryTTL * time.Second)
		if end.Before(firstEnd) {
			firstEnd = end
		}
		if end.After(lastEnd) {
			lastEnd = end
		}
	}
	select {
	case <-allGone:
	case <-time.After(expiryTimeout):
		mu.Lock()
		n := len(deleted)
		mu.Unlock()
		b.Fatalf("%d of %d leased keys deleted %v after the last TTL ended", n, expiringLeases, time.Since(lastEnd))
	}
	w.finish()

	var last time.Time
	lags := make([]time.Duration, 0, expiringLeases)
	for i, t := range acked {
		gone := deleted[expiryKey(int64(i))]
		lags = append(lags, gone.Sub(t.Add(expiryTTL*time.Second)))
		if gone.After(last) {
			last = gone
		}
	}
	perSec := map[int]int{}
	for _, t := range deleted {
		perSec[int(t.Sub(firstEnd)/time.Second)]++
	}
	b.Logf("deletes per second after the first TTL end: %v", perSec)
	b.ReportMetric(last.Sub(lastEnd).Seconds(), "all-gone-after-ttl-s")
	reportLatency(b, "expiry-lag", lags)
	reportWriter(b, "put-before", w, baseFrom, baseTo)
	reportWriter(b, "put-during", w, firstEnd, last)
	b.Logf("grants answered over %v; TTLs ended over %v; last key deleted %v after the last TTL ended",
		lastEnd.Sub(firstEnd).Round(time.Millisecond), lastEnd.Sub(firstEnd).Round(time.Millisecond), last.Sub(lastEnd).Round(time.Millisecond))
}

func expiryKey(i int64) string { return fmt.Sprintf("%s%05d", expiryPrefix, i) }

// Shape of BenchmarkLeaseRevoke.
const (
	revokeLeases = 10000
	revokeWindow = 1000 // revokes per reported window
)

// BenchmarkLeaseRevoke grants 10,000 leases with one key each, then
// revokes them one at a time from one client, and reports the revoke rate
// of the first and of the last 1000: a revoke's cost should not depend on
// how many revokes came before it.
func BenchmarkLeaseRevoke(b *testing.B) {
	ep := startMember(b)
	clis := dial(b, ep, leaseConns)
	ids := grantMany(b, clis, revokeLeases, longTTL)
	for i, id := range ids {
		if _, err := clis[i%len(clis)].Put(context.Background(), leaseKey(int64(i)), value, clientv3.WithLease(id)); err != nil {
			b.Fatal(err)
		}
	}
	putsBefore, getsBefore := serialOps(b, clis[0])
	took := make([]time.Duration, len(ids))
	for i, id := range ids {
		began := time.Now()
		if _, err := clis[0].Revoke(context.Background(), id); err != nil {
			b.Fatal(err)
		}
		took[i] = time.Since(began)
	}
	rate := func(ds []time.Duration) float64 {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return float64(len(ds)) / sum.Seconds()
	}
	first, last := took[:revokeWindow], took[len(took)-revokeWindow:]
	b.ReportMetric(rate(first), "first-revokes/s")
	b.ReportMetric(rate(last), "last-revokes/s")
	reportLatency(b, "first-revoke", slices.Clone(first))
	reportLatency(b, "last-revoke", slices.Clone(last))
	putsAfter, getsAfter := serialOps(b, clis[0])
	reportLatency(b, "put-before", putsBefore)
	reportLatency(b, "put-after", putsAfter)
	reportLatency(b, "get-before", getsBefore)
	reportLatency(b, "get-after", getsAfter)
}

// serialOps times revokeWindow puts, then as many serializable gets, one
// at a time.
func serialOps(b *testing.B, cli *clientv3.Client) (puts, gets []time.Duration) {
	b.Helper()
	ctx := context.Background()
	for i := range revokeWindow {
		began := time.Now()
		if _, err := cli.Put(ctx, "rw/"+putKey(int64(i)), value); err != nil {
			b.Fatal(err)
		}
		puts = append(puts, time.Since(began))
	}
	for i := range revokeWindow {
		began := time.Now()
		if _, err := cli.Get(ctx, "rw/"+putKey(int64(i)), clientv3.WithSerializable()); err != nil {
			b.Fatal(err)
		}
		gets = append(gets, time.Since(began))
	}
	return puts, gets
}
