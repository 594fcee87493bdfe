package backup

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairn-kv/cairn/membership"
)

// writeEmpty writes the backup of an empty state.
func writeEmpty(t *testing.T) string {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	path := filepath.Join(t.TempDir(), "b.db")
	info, err := Write(path, t.TempDir(), Source{State: db, AppliedIndex: 7, Term: 2,
		Members: []membership.Member{{ID: 0x8e9e05c52164694d, Name: "default", PeerURLs: []string{"http://127.0.0.1:2380"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != info.Size {
		t.Fatalf("written %d bytes, file %v, %v", info.Size, st, err)
	}
	return path
}

func TestStatusOfEmptyBackup(t *testing.T) {
	path := writeEmpty(t)
	st, err := ReadStatus(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != 0 || st.TotalKey != 0 || st.Version != StorageVersion || st.TotalSize == 0 {
		t.Errorf("status %+v: want revision 0, no keys, version %s", st, StorageVersion)
	}
}

// TestDamagedFilesRefused: every truncation, and a flipped byte anywhere,
// is refused with an error, never a crash (bbolt maps the file).
func TestDamagedFilesRefused(t *testing.T) {
	path := writeEmpty(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for n := 0; n < len(b); n += 97 {
		p := filepath.Join(dir, "cut.db")
		if err := os.WriteFile(p, b[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		// A cut at a page boundary past bbolt's high-water mark loses
		// nothing bbolt reads: that one may pass. Any other must not.
		if _, err := ReadStatus(p); err == nil && n%4096 != 0 {
			t.Errorf("a file cut to %d of %d bytes: status succeeded", n, len(b))
		}
	}
	for i := 0; i < len(b); i += 211 {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		p := filepath.Join(dir, "flip.db")
		if err := os.WriteFile(p, c, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := VerifySHA256(p); err == nil {
			t.Errorf("byte %d flipped: the SHA-256 check passed", i)
		}
		if _, err := ReadStatus(p); err == nil {
			t.Errorf("byte %d flipped: status succeeded", i)
		}
	}
}
