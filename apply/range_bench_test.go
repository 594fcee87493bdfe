package apply

import (
	"context"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/storage"
)

// BenchmarkRangeSortedTies is one limit=10 Range sorted by mod revision,
// descending, over 100,000 keys written 128 per transaction (so the best
// keys tie), as scripts/rangemem -read sorted: its B/op is what each of the
// 20 concurrent reads of that measurement allocates (1 KiB values, as
// there), whatever the load.
func BenchmarkRangeSortedTies(b *testing.B) {
	eng, err := storage.Open(b.TempDir(), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	kv, err := mvcc.Open(eng, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer kv.Close()
	val := make([]byte, 1024)
	for start := 0; start < 100000; start += 128 * 100 {
		wb := kv.NewBatch()
		for t := start; t < min(start+128*100, 100000); t += 128 {
			tw := wb.Write()
			for i := t; i < min(t+128, 100000); i++ {
				if _, _, err := tw.Put(fmt.Appendf(nil, "/m/%08d", i), val, 0); err != nil {
					b.Fatal(err)
				}
			}
			tw.End()
		}
		if err := kv.Commit(wb); err != nil {
			b.Fatal(err)
		}
	}
	r := &pb.RangeRequest{Key: []byte("/m/"), RangeEnd: []byte("/m0"), Limit: 10,
		SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rt := kv.Read()
		resp, err := Range(context.Background(), rt, r)
		rt.End()
		if err != nil || len(resp.Kvs) != 10 || resp.Count != 100000 {
			b.Fatalf("Range: %d kvs, count %d, %v", len(resp.Kvs), resp.Count, err)
		}
	}
}
