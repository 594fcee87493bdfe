package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

func dump(t *testing.T, db *pebble.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		out[string(it.Key())] = string(it.Value())
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

func setAll(t *testing.T, db *pebble.DB, kvs map[string]string) {
	t.Helper()
	b := db.NewBatch()
	for k, v := range kvs {
		if err := b.Set([]byte(k), []byte(v), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// A snapshot taken from one engine and installed in another replaces the
// receiver's state and Raft log, keeps its hard state and member ID, and
// adds the local keys given.
func TestSnapshotFileReplacesState(t *testing.T) {
	src, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { dst.Close() }()

	setAll(t, src.DB, map[string]string{
		"L\x00\x01": "lease", "a\x01": "attach", "c1": "member", "e\x01": "event",
		"hhardstate": "src-hs", "hsnapshot": "src-snap",
		"k\x01": "version", "lfoo": "live", "mapplied": "src-applied", "mmember-id": "src-id",
		"r\x00\x01": "src-entry", "u1": "user",
	})
	// The receiver has state of its own, including keys the leader no
	// longer has, some of them only in the memtable.
	setAll(t, dst.DB, map[string]string{
		"L\x00\x09": "old-lease", "hhardstate": "dst-hs", "hsnapshot": "dst-snap",
		"lgone": "old", "mapplied": "dst-applied", "mmember-id": "dst-id",
		"r\x00\x05": "dst-entry", "zz": "stray",
	})
	if err := dst.DB.Flush(); err != nil {
		t.Fatal(err)
	}
	setAll(t, dst.DB, map[string]string{"lmem": "memtable-only", "e\x09": "old-event"})

	snap := src.DB.NewSnapshot()
	defer snap.Close()
	f, err := dst.CreateSnapshotFile(map[string][]byte{"hsnapshot": []byte("new-snap")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ForEachState(snap, f.Add); err != nil {
		t.Fatal(err)
	}
	if f.Keys() != 8 {
		t.Errorf("Keys() = %d, want the 8 state keys", f.Keys())
	}
	path, err := f.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.IngestSnapshot(path); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"L\x00\x01": "lease", "a\x01": "attach", "c1": "member", "e\x01": "event",
		"hhardstate": "dst-hs", "hsnapshot": "new-snap",
		"k\x01": "version", "lfoo": "live", "mapplied": "src-applied", "mmember-id": "dst-id",
		"u1": "user",
	}
	got := dump(t, dst.DB)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after install:\n got %q\nwant %q", got, want)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the ingested file is still at %s (err %v)", path, err)
	}
	// Survives a restart.
	dir := dst.Dir()
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	dst, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst.DB); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after restart:\n got %q\nwant %q", got, want)
	}
}

func TestSnapshotFileRejectsBadStreams(t *testing.T) {
	e, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, keys := range [][]string{
		{"lb", "la"},   // out of order
		{"la", "la"},   // duplicate
		{"hhardstate"}, // Raft state
		{"r\x00\x01"},  // Raft log
		{"mmember-id"}, // the member's own ID
		{"", "la"},     // empty key
	} {
		f, err := e.CreateSnapshotFile(nil)
		if err != nil {
			t.Fatal(err)
		}
		var addErr error
		for _, k := range keys {
			if addErr = f.Add([]byte(k), []byte("v")); addErr != nil {
				break
			}
		}
		if !errors.Is(addErr, ErrBadSnapshot) {
			t.Errorf("keys %q: Add error %v, want ErrBadSnapshot", keys, addErr)
		}
		f.Abort()
	}
	if _, err := e.CreateSnapshotFile(map[string][]byte{"lstate": nil}); err == nil {
		t.Error("a state key as a local key was accepted")
	}
	if ents, _ := os.ReadDir(filepath.Join(e.Dir(), snapDir)); len(ents) != 0 {
		t.Errorf("aborted files left behind: %v", ents)
	}
}
