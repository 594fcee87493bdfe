package storage

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// TestCompactionsRunAfterOpen: the scheduler that holds compactions back
// during Open lets them run afterwards: L0 tables made by flushes are
// compacted away, in this session and after a reopen.
func TestCompactionsRunAfterOpen(t *testing.T) {
	dir := t.TempDir()
	for session := range 2 {
		e, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		before := e.DB.Metrics().Compact.Count
		for i := range 12 {
			b := e.DB.NewBatch()
			for k := range 200 {
				_ = b.Set(fmt.Appendf(nil, "s%d/k%03d/%02d", session, k, i), make([]byte, 100), nil)
			}
			if err := b.Commit(pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			if err := e.DB.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(60 * time.Second)
		for e.DB.Metrics().Compact.Count == before || e.DB.Metrics().Levels[0].TablesCount >= 12 {
			if time.Now().After(deadline) {
				m := e.DB.Metrics()
				t.Fatalf("session %d: no compaction after 12 flushes: %d compactions, %d L0 tables", session, m.Compact.Count, m.Levels[0].TablesCount)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
