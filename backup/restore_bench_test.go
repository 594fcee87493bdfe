package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// writeSyntheticSnapshot writes an etcd-format snapshot of n puts, one per
// revision, of keys /bench/%08d (16 B) with 256 B values in key order, as
// scripts/ops-measure.sh's sequential load writes them, and its SHA-256
// trailer.
func writeSyntheticSnapshot(tb testing.TB, path string, n int) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	val := make([]byte, 256)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	for done := 0; done < n; {
		err := db.Update(func(tx *bolt.Tx) error {
			kb, err := tx.CreateBucketIfNotExists(bucketKey)
			if err != nil {
				return err
			}
			kb.FillPercent = 0.9
			for i := 0; done < n && i < commitEvery; i++ {
				rev := int64(done + 2)
				kv := &mvccpb.KeyValue{Key: []byte(fmt.Sprintf("/bench/%08d", done)), Value: val,
					CreateRevision: rev, ModRevision: rev, Version: 1}
				data, err := proto.Marshal(kv)
				if err != nil {
					return err
				}
				if err := kb.Put(revKey(rev, 0, false), data); err != nil {
					return err
				}
				done++
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return mb.Put([]byte("storageVersion"), []byte(StorageVersion))
	}); err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	if _, err := appendSHA256(path); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRestore restores a snapshot of RESTORE_BENCH_KEYS (default
// 100,000) puts; RESTORE_BENCH_FILE names an existing snapshot to restore
// instead (written there first if it does not exist).
func BenchmarkRestore(b *testing.B) {
	n := 100000
	if v := os.Getenv("RESTORE_BENCH_KEYS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	path := os.Getenv("RESTORE_BENCH_FILE")
	if path == "" {
		path = filepath.Join(b.TempDir(), "snap.db")
	}
	if _, err := os.Stat(path); err != nil {
		writeSyntheticSnapshot(b, path, n)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "restored")
		info, err := Restore(RestoreConfig{SnapshotPath: path, DataDir: dir, Name: "default",
			InitialCluster: map[string][]string{"default": {"http://127.0.0.1:2380"}}})
		if err != nil {
			b.Fatal(err)
		}
		if info.Versions == 0 {
			b.Fatal("nothing restored")
		}
	}
}
