package mvcc_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// Shape of BenchmarkDeleteRangeLarge: deleteKeys keys of deleteValueSize
// bytes, deleted by one DeleteRange.
const (
	deleteKeys      = 10000
	deleteValueSize = 10 << 10
)

// BenchmarkDeleteRangeLarge measures what one DeleteRange of 10,000 ×
// 10 KiB keys allocates inside the write transaction, with the deleted
// values (a prev_kv request: prevkv=true, which was every DeleteRange
// before issue 13) and without them (prevkv=false). Each iteration loads
// the keys again first, outside the measurement; it reports the bytes and
// allocations of the DeleteRange alone.
func BenchmarkDeleteRangeLarge(b *testing.B) {
	for _, prevKV := range []bool{true, false} {
		b.Run(fmt.Sprintf("prevkv=%v", prevKV), func(b *testing.B) {
			s := openBench(b)
			value := make([]byte, deleteValueSize)
			var bytes, allocs uint64
			for range b.N {
				wb := s.NewBatch()
				for i := range deleteKeys {
					tw := wb.Write()
					if _, _, err := tw.Put(fmt.Appendf(nil, "d/%05d", i), value, 0); err != nil {
						b.Fatal(err)
					}
					tw.End()
				}
				if err := s.Commit(wb); err != nil {
					b.Fatal(err)
				}
				wb = s.NewBatch()
				tw := wb.Write()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				deleted, _, err := tw.DeleteRangeWith(context.Background(), []byte("d/"), []byte("d0"), prevKV)
				runtime.ReadMemStats(&m1)
				if err != nil || len(deleted) != deleteKeys {
					b.Fatalf("deleted %d keys, err %v; want %d", len(deleted), err, deleteKeys)
				}
				bytes += m1.TotalAlloc - m0.TotalAlloc
				allocs += m1.Mallocs - m0.Mallocs
				tw.End()
				if err := s.Commit(wb); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "delete-B/op")
			b.ReportMetric(float64(allocs)/float64(b.N), "delete-allocs/op")
		})
	}
}
