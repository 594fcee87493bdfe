package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestDamagedManifestRefused: damage in the middle of Pebble's MANIFEST,
// which Pebble would take for its end, stops Open; a torn tail does not.
func TestDamagedManifestRefused(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := e.DB.Set([]byte{'k', byte(i)}, []byte("v"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := e.DB.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	e.Close()
	names, _ := filepath.Glob(filepath.Join(dir, dbDir, "MANIFEST-*"))
	if len(names) != 1 {
		t.Fatalf("manifests: %v", names)
	}
	b, _ := os.ReadFile(names[0])
	if ok, end := chunkAt(b, 0); !ok || end < 8 {
		t.Fatalf("no chunk at the start of a MANIFEST: % x", b[:16])
	}
	if _, ok := manifestDamage(b); !ok {
		t.Fatalf("an undamaged MANIFEST of %d bytes is reported damaged", len(b))
	}
	torn := b[:len(b)-5]
	if _, ok := manifestDamage(torn); !ok {
		t.Errorf("a torn MANIFEST tail is reported as damage")
	}
	bad := append([]byte(nil), b...)
	copy(bad[len(b)/3:], "garbage-garbage-garbage")
	if err := os.WriteFile(names[0], bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Open with a damaged MANIFEST: got %v, want a corruption error", err)
	}
}
