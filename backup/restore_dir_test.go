package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-kv/cairn/storage"
)

func restoreTo(path, dir string) (RestoreInfo, error) {
	return Restore(RestoreConfig{SnapshotPath: path, DataDir: dir, Name: "default",
		InitialCluster: map[string][]string{"default": {"http://127.0.0.1:2380"}}, SkipHashCheck: true})
}

// leftovers lists what a restore left beside the data dir.
func leftovers(t *testing.T, parent string) []string {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".restoring-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestRestorePublishesCompleteDir: the data dir appears (or an empty one
// is filled) only with the whole restore in it; the build dir is gone.
func TestRestorePublishesCompleteDir(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "snap.db")
	writeSyntheticSnapshot(t, snap, 1000)
	for _, existing := range []bool{false, true} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "member")
		if existing {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		info, err := restoreTo(snap, dir)
		if err != nil {
			t.Fatalf("existing=%v: %v", existing, err)
		}
		if info.Versions != 1000 || info.Revision != 1001 {
			t.Errorf("existing=%v: restored %+v, want 1000 versions up to revision 1001", existing, info)
		}
		if l := leftovers(t, parent); len(l) != 0 {
			t.Errorf("existing=%v: left %v", existing, l)
		}
		eng, err := storage.Open(dir, storage.Options{})
		if err != nil {
			t.Fatalf("existing=%v: open the restored dir: %v", existing, err)
		}
		eng.Close()
	}
}

// TestFailedRestoreLeavesNoDataDir: a file that fails midway (a record
// that does not decode, after good ones) leaves neither a data dir nor
// the dir it was built in.
func TestFailedRestoreLeavesNoDataDir(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "snap.db")
	writeSyntheticSnapshot(t, snap, 100)
	db, err := bolt.Open(snap, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKey).Put(revKey(500, 0, false), []byte{0xff, 0xff, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	parent := t.TempDir()
	dir := filepath.Join(parent, "member")
	if _, err := restoreTo(snap, dir); err == nil {
		t.Fatal("a snapshot with an undecodable record restored")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir after a failed restore: %v", err)
	}
	if l := leftovers(t, parent); len(l) != 0 {
		t.Errorf("left %v", l)
	}
}
