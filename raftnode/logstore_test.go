package raftnode

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/storage"
	"github.com/cairn-kv/cairn/wal"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestMigrateLegacyLog starts from a format-1 data dir, whose log and hard
// state are in the state LSM's r and h keyspaces, and checks that start-up
// moves them into a WAL, deletes them from the LSM and marks the dir
// format 2.
func TestMigrateLegacyLog(t *testing.T) {
	dir := t.TempDir()
	eng, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := eng.DB.NewBatch()
	mb, _ := proto.Marshal(&raftpb.SnapshotMetadata{Index: proto.Uint64(5), Term: proto.Uint64(2), ConfState: &raftpb.ConfState{Voters: []uint64{1}}})
	hb, _ := proto.Marshal(&raftpb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(1), Commit: proto.Uint64(8)})
	_ = b.Set(keySnapshot, mb, nil)
	_ = b.Set(keyHardState, hb, nil)
	for i := uint64(3); i <= 9; i++ { // 3..5 are compacted and left behind
		eb, _ := proto.Marshal(&raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(3), Data: []byte{byte(i)}})
		_ = b.Set(storage.RaftLogKey(i), eb, nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	eng.Close()
	setFormat(t, dir, 1)

	eng, err = storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if !eng.LegacyRaftLog() {
		t.Fatal("format 1 not detected")
	}
	ls, fresh, err := loadLogStore(eng, logOptions{applied: 7, lg: quiet})
	if err != nil || fresh {
		t.Fatalf("load: fresh %v, err %v", fresh, err)
	}
	defer ls.close()
	first, _ := ls.ms.FirstIndex()
	last, _ := ls.ms.LastIndex()
	hs, _, _ := ls.ms.InitialState()
	if first != 6 || last != 9 || hs.GetCommit() != 8 || hs.GetTerm() != 3 {
		t.Errorf("log %d..%d, hard state %v; want 6..9, term 3 commit 8", first, last, hs)
	}
	if eng.LegacyRaftLog() {
		t.Error("data dir still format 1")
	}
	it, _ := eng.DB.NewIter(&pebble.IterOptions{LowerBound: []byte{storage.KeyspaceRaftLog}, UpperBound: storage.KeyspaceEnd(storage.KeyspaceRaftLog)})
	if it.First() {
		t.Errorf("legacy log key %q left in the state LSM", it.Key())
	}
	it.Close()
	if _, ok, _ := storage.GetCopy(eng.DB, keyHardState); ok {
		t.Error("legacy hard state left in the state LSM")
	}
	if ok, _ := wal.Exists(filepath.Join(dir, storage.WALDirName)); !ok {
		t.Error("no WAL after migration")
	}
}

func setFormat(t *testing.T, dir string, format int) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"program": "cairn", "format": format})
	if err := os.WriteFile(filepath.Join(dir, "cairn.dir"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStateAndLogMustAgree: a state ahead of the log's end (entries lost)
// or behind its start (state lost), or a missing log, stops start-up.
func TestStateAndLogMustAgree(t *testing.T) {
	dir := t.TempDir()
	eng, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ls, fresh, err := loadLogStore(eng, logOptions{lg: quiet})
	if err != nil || !fresh {
		t.Fatalf("fresh load: %v %v", fresh, err)
	}
	if err := ls.bootstrap([]uint64{1}); err != nil {
		t.Fatal(err)
	}
	var es []*raftpb.Entry
	for i := uint64(2); i <= 10; i++ {
		es = append(es, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(2)})
	}
	if err := ls.w.Save(&raftpb.HardState{Term: proto.Uint64(2), Commit: proto.Uint64(10)}, es, true); err != nil {
		t.Fatal(err)
	}
	if err := ls.w.SaveSnapshot(&raftpb.SnapshotMetadata{Index: proto.Uint64(6), Term: proto.Uint64(2)}, false); err != nil {
		t.Fatal(err)
	}
	ls.close()
	for _, tc := range []struct {
		applied uint64
		want    string
	}{
		{11, "ends at index 10 but the state has applied index 11"},
		{5, "has applied index 5 but the write-ahead log"},
		{6, ""},
		{10, ""},
	} {
		ls, _, err := loadLogStore(eng, logOptions{applied: tc.applied, lg: quiet})
		if ls != nil {
			ls.close()
		}
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("applied %d: got %v, want %q", tc.applied, err, tc.want)
		}
	}
	os.RemoveAll(filepath.Join(dir, storage.WALDirName))
	if _, _, err := loadLogStore(eng, logOptions{applied: 10, lg: quiet}); err == nil || !strings.Contains(err.Error(), "no write-ahead log") {
		t.Errorf("missing WAL: got %v", err)
	}
}

// TestCompactionBoundedByBytes: large entries make a compaction due before
// SnapshotCount entries, and a compaction keeps at most catchUpBytes of
// them however many catch-up entries are configured (issue 13 item 5).
func TestCompactionBoundedByBytes(t *testing.T) {
	ls := &logStore{ms: raft.NewMemoryStorage()}
	const n, size = 100, 1 << 20 // 100 entries of 1 MiB
	var es []*raftpb.Entry
	for i := uint64(1); i <= n; i++ {
		es = append(es, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1), Data: make([]byte, size)})
		ls.appended += size
	}
	if err := ls.ms.Append(es); err != nil {
		t.Fatal(err)
	}
	if !ls.compactDue(n, 0, 10000) {
		t.Errorf("compaction not due after %d MiB of entries", n)
	}
	idx := ls.compactIndex(n, 5000)
	kept := n - idx
	if kept*size > catchUpBytes || kept < catchUpBytes/size-1 {
		t.Errorf("compaction at %d keeps %d entries of 1 MiB, want about %d", idx, kept, catchUpBytes/size)
	}
	if got := ls.compactIndex(n, 10); got != n-10 {
		t.Errorf("with 10 catch-up entries: compaction at %d, want %d", got, n-10)
	}
}

// TestStateSnapshotNewerThanLog: a crash between a snapshot install (the
// state holds the snapshot's metadata) and the WAL's install record
// restarts the log at the state's snapshot and records it in the WAL.
func TestStateSnapshotNewerThanLog(t *testing.T) {
	dir := t.TempDir()
	eng, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ls, _, err := loadLogStore(eng, logOptions{lg: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.bootstrap([]uint64{1}); err != nil {
		t.Fatal(err)
	}
	var es []*raftpb.Entry
	for i := uint64(2); i <= 10; i++ {
		es = append(es, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(2)})
	}
	if err := ls.w.Save(&raftpb.HardState{Term: proto.Uint64(2), Commit: proto.Uint64(10)}, es, true); err != nil {
		t.Fatal(err)
	}
	ls.close()
	mb, _ := proto.Marshal(&raftpb.SnapshotMetadata{Index: proto.Uint64(20), Term: proto.Uint64(3), ConfState: &raftpb.ConfState{Voters: []uint64{1}}})
	if err := eng.DB.Set(keySnapshot, mb, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the second start finds the install in the WAL
		ls, _, err := loadLogStore(eng, logOptions{applied: 20, lg: quiet})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		first, _ := ls.ms.FirstIndex()
		last, _ := ls.ms.LastIndex()
		ls.close()
		if first != 21 || last != 20 {
			t.Errorf("round %d: log %d..%d, want it empty after the snapshot at 20", round, first, last)
		}
	}
	w, rec, err := wal.Open(filepath.Join(dir, storage.WALDirName), wal.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if rec.Snapshot.GetIndex() != 20 || len(rec.Entries) != 0 {
		t.Errorf("WAL after restart: snapshot at %d and %d entries, want 20 and none", rec.Snapshot.GetIndex(), len(rec.Entries))
	}
}

// TestWALDir: --wal-dir puts the log elsewhere; a data dir that has its
// own wal/ while --wal-dir points elsewhere is refused.
func TestWALDir(t *testing.T) {
	dir, walDir := t.TempDir(), filepath.Join(t.TempDir(), "w")
	eng, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ls, fresh, err := loadLogStore(eng, logOptions{walDir: walDir, lg: quiet})
	if err != nil || !fresh {
		t.Fatalf("load: %v %v", fresh, err)
	}
	if err := ls.bootstrap([]uint64{1}); err != nil {
		t.Fatal(err)
	}
	ls.close()
	if ok, _ := wal.Exists(walDir); !ok {
		t.Errorf("no WAL in --wal-dir %s", walDir)
	}
	if ok, _ := wal.Exists(filepath.Join(dir, storage.WALDirName)); ok {
		t.Errorf("a WAL in the data dir despite --wal-dir")
	}
	if err := os.Rename(walDir, filepath.Join(dir, storage.WALDirName)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadLogStore(eng, logOptions{walDir: walDir, lg: quiet}); err == nil || !strings.Contains(err.Error(), "--wal-dir") {
		t.Errorf("data dir with its own wal/ and another --wal-dir: got %v", err)
	}
}
