package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// flushedManifest makes a store in dir with n keys, each flushed on its own
// (one MANIFEST record per flush), closes it, and returns the path and
// bytes of its only MANIFEST.
func flushedManifest(t *testing.T, dir string, n int) (string, []byte) {
	t.Helper()
	e, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
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
	b, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	return names[0], b
}

// TestDamagedManifestRefused: damage in the middle of Pebble's MANIFEST,
// which Pebble would take for its end, stops Open; a torn tail does not.
func TestDamagedManifestRefused(t *testing.T) {
	dir := t.TempDir()
	manifest, b := flushedManifest(t, dir, 5)
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
	if err := os.WriteFile(manifest, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Open with a damaged MANIFEST: got %v, want a corruption error", err)
	}
}

// TestManifestLastRecord: damage to the last record of a MANIFEST is told
// from a torn write by etcd's rule (a torn append ends the file early or
// leaves zeroed sectors): a full-length record with a bad checksum and no
// zero tail is refused; a cut or zero-filled tail is not.
func TestManifestLastRecord(t *testing.T) {
	_, b := flushedManifest(t, t.TempDir(), 3)
	last := 0
	for off := 0; off < len(b); {
		ok, end := chunkAt(b, off)
		if !ok {
			t.Fatalf("undamaged MANIFEST: no chunk at %d", off)
		}
		last, off = off, end
	}
	if len(b)-last < recHeaderSize+4 {
		t.Skipf("last record has %d bytes", len(b)-last)
	}
	mod := func(f func(c []byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	cases := []struct {
		name string
		b    []byte
		torn bool
	}{
		{"cut inside the payload", b[:len(b)-3], true},
		{"cut inside the header", b[:last+3], true},
		{"payload tail zeroed", mod(func(c []byte) []byte { clear(c[len(c)-4:]); return c }), (len(b)-1)/sectorSize != (len(b)-4)/sectorSize},
		{"whole record zeroed", mod(func(c []byte) []byte { clear(c[last:]); return c }), true},
		{"payload zeroed, the file extended with zeros", mod(func(c []byte) []byte {
			clear(c[last+recHeaderSize:])
			return append(c, make([]byte, 600)...)
		}), true},
		{"checksum byte flipped", mod(func(c []byte) []byte { c[last] ^= 0x5a; return c }), false},
		{"last payload bytes overwritten", mod(func(c []byte) []byte { copy(c[len(c)-4:], "\x01\x02\x03\x04"); return c }), false},
	}
	for _, tc := range cases {
		off, ok := manifestDamage(tc.b)
		if ok != tc.torn {
			t.Errorf("%s: manifestDamage = offset %d, torn-or-whole %v; want torn %v", tc.name, off, ok, tc.torn)
		} else if !ok && off != int64(last) {
			t.Errorf("%s: damage at offset %d, want %d", tc.name, off, last)
		}
	}
}
