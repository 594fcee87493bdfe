package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Shape of BenchmarkWatchStuckMemory: stuckPast values of stuckValueSize
// bytes written before the stuck watcher exists, stuckLive after.
const (
	stuckPast      = 600 // 38 MiB
	stuckLive      = 300 // 19 MiB
	stuckValueSize = 64 << 10
	// stuckSettle is how long the member gets to fill the stuck stream
	// before the heap is measured (nothing to await: the client reads
	// nothing).
	stuckSettle = 2 * time.Second
)

// BenchmarkWatchStuckMemory measures the heap a watcher whose client never
// reads costs the member: 600 × 64 KiB values are written, then a raw
// stream watches them from revision 1 and reads only its created
// response; then 300 × 64 KiB more are written. It reports the heap in
// use (after GC, client and member) above the heap before the watcher,
// once the catch-up had time to fill the stream (heap-past-MB) and after
// the live writes (heap-live-MB). The same without the watcher
// (watcher=none) shows what the writes alone cost (Pebble's memtable is
// on the Go heap). Run with -benchtime 1x.
func BenchmarkWatchStuckMemory(b *testing.B) {
	for _, stuck := range []bool{false, true} {
		name := "watcher=none"
		if stuck {
			name = "watcher=stuck"
		}
		b.Run(name, func(b *testing.B) { benchStuckMemory(b, stuck) })
	}
}

func benchStuckMemory(b *testing.B, stuck bool) {
	ep := startMember(b)
	cli := dial(b, ep, 1)[0]
	stuckCli := dial(b, ep, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	big := strings.Repeat("v", stuckValueSize)
	for i := range stuckPast {
		if _, err := cli.Put(ctx, fmt.Sprintf("s/%04d", i), big); err != nil {
			b.Fatal(err)
		}
	}
	heap0 := heapInuse()
	if stuck {
		openStuck(b, ctx, stuckCli)
	}
	time.Sleep(stuckSettle)
	heap1 := heapInuse()
	for i := range stuckLive {
		if _, err := cli.Put(ctx, fmt.Sprintf("s/%04d", stuckPast+i), big); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(stuckSettle)
	heap2 := heapInuse()
	b.ReportMetric(float64(int64(heap1)-int64(heap0))/(1<<20), "heap-past-MB")
	b.ReportMetric(float64(int64(heap2)-int64(heap0))/(1<<20), "heap-live-MB")
}

// openStuck opens a watch stream on cli's connection from revision 1 on
// the prefix "s/", and reads its created response only.
func openStuck(b *testing.B, ctx context.Context, cli *clientv3.Client) {
	b.Helper()
	ws, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("s/"), RangeEnd: []byte("s0"), StartRevision: 1}}}); err != nil {
		b.Fatal(err)
	}
	if r, err := ws.Recv(); err != nil || !r.Created {
		b.Fatalf("create: %v %v", r, err)
	}
}
