package storage

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestIncompleteRestoreRefused: a restore that stops before Complete (a
// kill midway) leaves a dir that is no member's data, and that neither a
// member's first start nor discovery resumes.
func TestIncompleteRestoreRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	e, err := Open(dir, Options{Creating: "restore"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DB.Set([]byte("k"), []byte("part of a restore"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	e.Close() // no Complete: the restore stopped
	if HasData(dir) {
		t.Error("HasData is true for an incomplete restore")
	}
	for _, creating := range []string{"bootstrap", "restore", ""} {
		_, err := Open(dir, Options{Creating: creating})
		if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "snapshot restore") || !strings.Contains(err.Error(), dir) {
			t.Errorf("Open(Creating %q) = %v, want ErrIncomplete naming the restore and %s", creating, err, dir)
		}
	}
	if _, _, _, err := Discovered(dir); !errors.Is(err, ErrIncomplete) {
		t.Errorf("Discovered = %v, want ErrIncomplete", err)
	}
	if err := SaveDiscovered(dir, "a=http://a:2380", "t"); !errors.Is(err, ErrIncomplete) {
		t.Errorf("SaveDiscovered = %v, want ErrIncomplete", err)
	}
}

// TestBootstrapResumed: a first start that stops after discovery, or after
// it opened the store but before Complete, is resumed with the discovered
// cluster and what it stored; once complete, the dir is a member's.
func TestBootstrapResumed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if HasData(dir) {
		t.Fatal("HasData of a missing dir")
	}
	if _, _, ok, err := Discovered(dir); ok || err != nil {
		t.Fatalf("Discovered of a missing dir = %v, %v", ok, err)
	}
	const cluster, token = "a=http://127.0.0.1:1,b=http://127.0.0.1:2", "http://d/v2/keys/discovery/x"
	if err := SaveDiscovered(dir, cluster, token); err != nil {
		t.Fatal(err)
	}
	check := func(stage string, wantOK bool) {
		t.Helper()
		c, tok, ok, err := Discovered(dir)
		if err != nil || ok != wantOK || (ok && (c != cluster || tok != token)) {
			t.Fatalf("%s: Discovered = %q %q %v %v, want ok %v", stage, c, tok, ok, err, wantOK)
		}
		if HasData(dir) == wantOK {
			t.Fatalf("%s: HasData = %v", stage, !wantOK)
		}
	}
	check("after discovery", true)
	for i := range 2 {
		e, err := Open(dir, Options{Creating: "bootstrap"})
		if err != nil {
			t.Fatalf("resume %d: %v", i, err)
		}
		if i == 1 {
			if v, ok, err := GetCopy(e.DB, []byte("k")); err != nil || !ok || string(v) != "v" {
				t.Fatalf("resumed store lacks what the first attempt synced: %q %v %v", v, ok, err)
			}
		}
		if err := e.DB.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		e.Close() // stopped before Complete
		check("after a stopped start", true)
	}
	e, err := Open(dir, Options{Creating: "bootstrap"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Complete(); err != nil {
		t.Fatal(err)
	}
	e.Close()
	check("after Complete", false)
	if err := SaveDiscovered(dir, cluster, token); err == nil {
		t.Error("SaveDiscovered over a member's dir succeeded")
	}
	// A restart opens it as it is.
	e, err = Open(dir, Options{Creating: "bootstrap"})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	check("after a restart", false)
}

// TestBootstrapWithoutDiscovery: a first start with --initial-cluster is
// incomplete until Complete as well, and resumed.
func TestBootstrapWithoutDiscovery(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	e, err := Open(dir, Options{Creating: "bootstrap"})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if HasData(dir) {
		t.Fatal("HasData before Complete")
	}
	if _, _, ok, err := Discovered(dir); ok || err != nil {
		t.Fatalf("Discovered = %v, %v; want nothing kept", ok, err)
	}
	e, err = Open(dir, Options{Creating: "bootstrap"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Complete(); err != nil {
		t.Fatal(err)
	}
	e.Close()
	if !HasData(dir) {
		t.Fatal("HasData false after Complete")
	}
}
