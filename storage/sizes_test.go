package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Sizes counts the state's data, not Pebble's preallocated WAL files (which
// DiskUsage counts), the sizes grow with the data
// written (in the WAL, then in sstables once flushed), the size in use never
// exceeds the size, and a full compaction brings overwritten data back
// out of both.
func TestSizes(t *testing.T) {
	e, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fresh := func() (int64, int64) {
		e.size.Lock()
		e.size.at = time.Time{} // no cached answer
		e.size.Unlock()
		return e.Sizes()
	}
	size0, _ := fresh()
	rng := rand.New(rand.NewPCG(1, 2))
	write := func() {
		b := e.DB.NewBatch()
		defer func() { b.Close() }()
		for i := range 20000 {
			if i%500 == 0 { // batches as small as the apply loop's
				if err := b.Commit(pebble.Sync); err != nil {
					t.Fatal(err)
				}
				b.Close()
				b = e.DB.NewBatch()
			}
			v := make([]byte, 100)
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			if err := b.Set(fmt.Appendf(nil, "%c%06d", KeyspaceLatest, i), v, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	const data = 20000 * 107
	for round := range 3 {
		write()
		size, inUse := fresh()
		if inUse < data || inUse > size {
			t.Fatalf("round %d, in the WAL: size %d, in use %d; want %d <= in use <= size", round, size, inUse, data)
		}
		if err := e.DB.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	size, inUse := fresh()
	if du := e.DiskUsage(); du < size+4<<20 {
		t.Fatalf("after three flushes: disk usage %d, size %d; want the recycled WAL files (4.4 MiB each) counted only in disk usage", du, size)
	}
	if inUse < data/2 || inUse > size { // sstables are compressed a little even with random values
		t.Fatalf("flushed: size %d, in use %d; want >= %d, in use <= size", size, inUse, data/2)
	}
	if err := e.DB.Compact(t.Context(), []byte{0}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
	// The replaced sstables stay in the size (not in use) until Pebble
	// deletes them, in the background.
	after, afterInUse := fresh()
	if afterInUse >= inUse || afterInUse > after || afterInUse > 2*data {
		t.Fatalf("compacted three writes of the same keys: size %d, in use %d (before %d); want in use below before and at most %d", after, afterInUse, inUse, 2*data)
	}
	for deadline := time.Now().Add(30 * time.Second); after > 2*data; after, _ = fresh() {
		if time.Now().After(deadline) {
			t.Fatalf("compacted: size %d after 30 s, want the replaced sstables deleted (at most %d)", after, 2*data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("fresh %d; three rounds flushed: size %d in use %d; compacted: size %d in use %d; disk usage %d", size0, size, inUse, after, afterInUse, e.DiskUsage())
}
