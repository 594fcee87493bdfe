package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestForeignDataDirRefused: cairn refuses a data directory that another
// program wrote (etcd's layout, or any non-empty directory without cairn's
// marker), exits non-zero with a message naming the problem, and leaves the
// directory exactly as it was.
func TestForeignDataDirRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // path -> content
		want  []string          // substrings of stderr
	}{{
		name:  "etcd",
		files: map[string]string{"member/snap/db": "bbolt file", "member/wal/0000000000000000-0000000000000000.wal": "wal"},
		want:  []string{"etcd data dir", "member/"},
	}, {
		name:  "random file",
		files: map[string]string{"notes.txt": "not cairn's"},
		want:  []string{"not empty", "cairn.dir"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMember(t)
			for path, content := range tc.files {
				full := filepath.Join(m.dataDir, path)
				if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// Old mtimes, so a rewrite with the same content would show.
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			for _, e := range dirEntries(t, m.dataDir) {
				if err := os.Chtimes(filepath.Join(m.dataDir, e.path), old, old); err != nil {
					t.Fatal(err)
				}
			}
			before := dirEntries(t, m.dataDir)

			p := startCairn(t, m.args()...)
			code := p.wait(t)
			stderr := p.stderr.String()
			if code == 0 {
				t.Errorf("exit code 0, want non-zero; stderr:\n%s", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, readyMsg) {
				t.Errorf("cairn served on a foreign data dir:\n%s", stderr)
			}
			if after := dirEntries(t, m.dataDir); !reflect.DeepEqual(before, after) {
				t.Errorf("data dir changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// entry is one file or directory under a tree, as dirEntries records it.
type entry struct {
	path    string
	mode    fs.FileMode
	mtime   time.Time
	sha256  string // files only
	entries int    // directories only
}

// dirEntries lists root and everything under it, in order; root is ".".
func dirEntries(t *testing.T, root string) []entry {
	t.Helper()
	var out []entry
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		e := entry{path: rel, mode: info.Mode(), mtime: info.ModTime()}
		if d.IsDir() {
			children, err := os.ReadDir(path)
			if err != nil {
				return err
			}
			e.entries = len(children)
		} else {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			e.sha256 = hex.EncodeToString(sum[:])
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
