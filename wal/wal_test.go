package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func testOpts(seg int64) Options {
	return Options{SegmentBytes: seg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func meta(index, term uint64) *raftpb.SnapshotMetadata {
	return &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: &raftpb.ConfState{Voters: []uint64{1}}}
}

func ents(from, to, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i <= to; i++ {
		out = append(out, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(term), Data: []byte(fmt.Sprintf("value-%d", i))})
	}
	return out
}

func hs(term, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(1), Commit: proto.Uint64(commit)}
}

// span is "first..last" of recovered entries, or "none".
func span(es []*raftpb.Entry) string {
	if len(es) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d..%d", es[0].GetIndex(), es[len(es)-1].GetIndex())
}

func mustOpen(t *testing.T, dir string, o Options) (*WAL, *Recovered) {
	t.Helper()
	w, rec, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w, rec
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	return m
}

func TestSaveAndReopen(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testOpts(0), meta(1, 1), hs(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(hs(2, 5), ents(2, 10, 2), true); err != nil {
		t.Fatal(err)
	}
	// A new leader overwrites the tail.
	if err := w.Save(hs(3, 8), ents(9, 12, 3), true); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, rec := mustOpen(t, dir, testOpts(0))
	defer w.Close()
	if got := span(rec.Entries); got != "2..12" {
		t.Errorf("entries: got %s, want 2..12", got)
	}
	if got := rec.Entries[8].GetTerm(); got != 3 {
		t.Errorf("entry 10 term: got %d, want 3", got)
	}
	if got := rec.HardState.GetCommit(); got != 8 {
		t.Errorf("commit: got %d, want 8", got)
	}
	if got := rec.Snapshot.GetIndex(); got != 1 {
		t.Errorf("snapshot index: got %d, want 1", got)
	}
}

func TestSegmentsCompactionAndRelease(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(4096)
	o.MaxSegments = 2
	w, err := Create(dir, o, meta(1, 1), hs(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(2); i < 1000; i += 10 {
		if err := w.Save(hs(1, i+9), ents(i, i+9, 1), true); err != nil {
			t.Fatal(err)
		}
	}
	before := len(segFiles(t, dir))
	if before < 5 {
		t.Fatalf("%d segments, want several", before)
	}
	if err := w.SaveSnapshot(meta(990, 1), false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReleaseTo(990); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, dir)
	w.Close()
	// Segments before the one holding entry 991 go, down to MaxSegments.
	if len(files) != 2 {
		t.Errorf("%d of %d segments after release, want 2: %v", len(files), before, files)
	}
	w, rec := mustOpen(t, dir, o)
	defer w.Close()
	if got := span(rec.Entries); got != "991..1001" {
		t.Errorf("entries: got %s, want 991..1001", got)
	}
	if got := rec.Snapshot.GetIndex(); got != 990 {
		t.Errorf("snapshot: got %d, want 990", got)
	}
}

func TestInstallVoidsEarlierEntries(t *testing.T) {
	dir := t.TempDir()
	w, _ := Create(dir, testOpts(0), meta(1, 1), hs(1, 1))
	_ = w.Save(hs(1, 3), ents(2, 20, 1), true)
	_ = w.SaveSnapshot(meta(10, 2), true)
	_ = w.Save(hs(2, 11), ents(11, 12, 2), true)
	w.Close()
	w, rec := mustOpen(t, dir, testOpts(0))
	defer w.Close()
	if got := span(rec.Entries); got != "11..12" || rec.Entries[0].GetTerm() != 2 {
		t.Errorf("entries: got %s, want 11..12 of term 2", got)
	}
}

// writeLog makes a WAL with entries 2..n of term 1, one record each, and
// returns its only segment's path and the offset where each entry starts.
func writeLog(t *testing.T, dir string, n uint64) (string, []int64) {
	t.Helper()
	w, err := Create(dir, testOpts(0), meta(1, 1), hs(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for i := uint64(2); i <= n; i++ {
		offs = append(offs, w.off)
		if err := w.Save(nil, ents(i, i, 1), true); err != nil {
			t.Fatal(err)
		}
	}
	offs = append(offs, w.off)
	w.Close()
	return segFiles(t, dir)[0], offs
}

func TestTornTailIsRepaired(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string, last, end int64) error
	}{
		{"file cut inside the last record", func(p string, last, end int64) error { return os.Truncate(p, last+5) }},
		{"file cut inside the last header", func(p string, last, end int64) error { return os.Truncate(p, last+3) }},
		{"last record's data zeroed", func(p string, last, end int64) error {
			return writeAt(p, last+headerLen+2, make([]byte, end-last-headerLen-2))
		}},
		{"last record's data garbled", func(p string, last, end int64) error { return writeAt(p, end-2, []byte{0xde, 0xad}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, offs := writeLog(t, dir, 20)
			last, end := offs[len(offs)-2], offs[len(offs)-1]
			if err := tc.damage(path, last, end); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			o := testOpts(0)
			o.Logger = slog.New(slog.NewTextHandler(&logged, nil))
			w, rec := mustOpen(t, dir, o)
			if got := span(rec.Entries); got != "2..19" {
				t.Errorf("entries: got %s, want 2..19", got)
			}
			if want := fmt.Sprintf("offset=%d", last); !strings.Contains(logged.String(), "repairing") || !strings.Contains(logged.String(), want) {
				t.Errorf("log %q lacks a repair line with %s", logged.String(), want)
			}
			// The log goes on from the repaired end.
			if err := w.Save(hs(1, 21), ents(20, 21, 1), true); err != nil {
				t.Fatal(err)
			}
			w.Close()
			w, rec = mustOpen(t, dir, testOpts(0))
			w.Close()
			if got := span(rec.Entries); got != "2..21" {
				t.Errorf("after repair and append: entries %s, want 2..21", got)
			}
		})
	}
}

func writeAt(path string, off int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt(b, off)
	return err
}

func TestDamageRefusesAndTouchesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string, offs []int64) error
		reason string
		at     func(offs []int64) int64
	}{
		{"garbage in the middle", func(p string, o []int64) error { return writeAt(p, o[5]+headerLen+1, []byte{1, 2, 3}) },
			"fails its CRC", func(o []int64) int64 { return o[5] }},
		{"zeroed page in the middle", func(p string, o []int64) error { return writeAt(p, o[3], make([]byte, o[8]-o[3])) },
			"zeroed region", func(o []int64) int64 { return o[3] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, offs := writeLog(t, dir, 30)
			if err := tc.damage(path, offs); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			_, _, err := Open(dir, testOpts(0))
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: got %v, want a *CorruptError", err)
			}
			if ce.File != path || ce.Offset != tc.at(offs) || !strings.Contains(ce.Reason, tc.reason) {
				t.Errorf("got file %s offset %d reason %q, want %s, %d, %q", ce.File, ce.Offset, ce.Reason, path, tc.at(offs), tc.reason)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Errorf("Open changed the damaged segment")
			}
		})
	}
}

func TestGapAndTermGoingBackwardsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes [][]*raftpb.Entry
		reason string
		last   uint64
	}{
		{"gap", [][]*raftpb.Entry{ents(2, 5, 1), ents(7, 8, 1)}, "gap in the log: entry 7 follows 5", 5},
		{"term backwards", [][]*raftpb.Entry{ents(2, 5, 2), ents(6, 7, 1)}, "term going backwards", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _ := Create(dir, testOpts(0), meta(1, 1), hs(1, 1))
			for _, es := range tc.writes {
				if err := w.Save(nil, es, true); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			_, _, err := Open(dir, testOpts(0))
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(ce.Reason, tc.reason) || ce.LastIndex != tc.last {
				t.Fatalf("Open: got %v, want %q with last good index %d", err, tc.reason, tc.last)
			}
		})
	}
}

func TestMissingSegmentRefused(t *testing.T) {
	dir := t.TempDir()
	w, _ := Create(dir, testOpts(2048), meta(1, 1), hs(1, 1))
	for i := uint64(2); i < 200; i += 10 {
		_ = w.Save(nil, ents(i, i+9, 1), true)
	}
	w.Close()
	files := segFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("%d segments, want at least 3", len(files))
	}
	os.Remove(files[1])
	if _, _, err := Open(dir, testOpts(2048)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "segment missing") {
		t.Fatalf("Open: got %v, want a missing segment error", err)
	}
}
