package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestEscapeOrderAndRoundTrip(t *testing.T) {
	keys := [][]byte{{}, {0}, {0, 0}, {0, 1}, {0, 0xFF}, {1}, []byte("a"), []byte("a\x00"), []byte("a\x00b"), []byte("a\x01"), []byte("ab"), {0xFF}, {0xFF, 0}}
	for i, a := range keys {
		ea := AppendEscaped(nil, a)
		got, rest, err := DecodeEscaped(ea)
		if err != nil || !bytes.Equal(got, a) || len(rest) != 0 {
			t.Errorf("DecodeEscaped(AppendEscaped(%q)) = %q, %q, %v; want %q", a, got, rest, err, a)
		}
		for _, b := range keys[i+1:] {
			eb := AppendEscaped(nil, b)
			if want, got := bytes.Compare(a, b), bytes.Compare(ea, eb); want != got {
				t.Errorf("order of %q vs %q: escaped compare %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestDecodeEscapedRejects(t *testing.T) {
	for _, b := range [][]byte{nil, {'a'}, {0}, {'a', 0, 2}, {0, 0}} {
		if _, _, err := DecodeEscaped(b); err == nil {
			t.Errorf("DecodeEscaped(%q): got no error, want ErrBadEscape", b)
		}
	}
}

// FuzzEscape checks that escaping preserves order, round-trips, and that a
// prefix bound sorts at or before every key with that prefix.
func FuzzEscape(f *testing.F) {
	f.Add([]byte("a"), []byte("a\x00"))
	f.Add([]byte{0, 0xFF}, []byte{0, 1})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ea, eb := AppendEscaped(nil, a), AppendEscaped(nil, b)
		if bytes.Compare(a, b) != bytes.Compare(ea, eb) {
			t.Fatalf("order of %q vs %q not preserved", a, b)
		}
		got, rest, err := DecodeEscaped(append(ea, 'x'))
		if err != nil || !bytes.Equal(got, a) || !bytes.Equal(rest, []byte{'x'}) {
			t.Fatalf("round trip of %q: got %q rest %q err %v", a, got, rest, err)
		}
		if bytes.HasPrefix(b, a) && bytes.Compare(AppendEscapedPrefix(nil, a), eb) > 0 {
			t.Fatalf("prefix bound of %q sorts after %q", a, b)
		}
		if _, _, err := DecodeEscaped(b); err == nil {
			// Any accepted input must re-encode to its own prefix.
			k, r, _ := DecodeEscaped(b)
			if !bytes.Equal(append(AppendEscaped(nil, k), r...), b) {
				t.Fatalf("DecodeEscaped(%q) accepted a non-canonical encoding", b)
			}
		}
	})
}

func TestOpenRefusesForeignDirs(t *testing.T) {
	cases := map[string]func(dir string){
		"etcd member dir":     func(d string) { mkfile(t, d+"/member/snap/db") },
		"some file":           func(d string) { mkfile(t, d+"/notes.txt") },
		"foreign file in db/": func(d string) { mkfile(t, d+"/db/notes.txt") },
		"corrupt marker":      func(d string) { mkfile(t, d+"/cairn.dir") },
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			setup(dir)
			if eng, err := Open(dir, Options{}); !errors.Is(err, ErrForeignDataDir) {
				if eng != nil {
					eng.Close()
				}
				t.Fatalf("Open: %v, want ErrForeignDataDir", err)
			}
		})
	}
	// A first start that crashed before writing the marker is resumed.
	dir := t.TempDir()
	eng, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng.Close()
	if err := os.Remove(filepath.Join(dir, "cairn.dir")); err != nil {
		t.Fatal(err)
	}
	eng, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopening a half-created dir: %v", err)
	}
	eng.Close()
}

func mkfile(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
}
