package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/storage"
	"github.com/cairn-kv/cairn/wal"
)

// keySnapshot is, in the state LSM, the metadata of the last snapshot
// installed from a leader: the snapshot file carries it, so it lands with
// the state it describes.
var keySnapshot = storage.RaftStateKey("snapshot")

// keyHardState is where format-1 data dirs kept the hard state.
var keyHardState = storage.RaftStateKey("hardstate")

// Log retention bounds by size, so large values cannot pile up in the log
// (issue 13 item 5): a log compaction is due once this many bytes of
// entries were appended since the last one, whatever SnapshotCount says,
// and a compaction keeps at most catchUpBytes of applied entries.
const (
	compactBytes = 64 << 20
	catchUpBytes = 64 << 20
)

// logStore persists the Raft log and hard state in a write-ahead log
// (package wal) and mirrors them in a raft.MemoryStorage, which raft reads.
type logStore struct {
	eng *storage.Engine
	w   *wal.WAL
	ms  *raft.MemoryStorage
	lg  *slog.Logger
	off bool // unsafe: no fsync
	// observeFsync, if set, gets the duration of each synced write.
	observeFsync func(time.Duration)
	// walDir and walOpts are where and how the WAL is (or will be) kept.
	walDir  string
	walOpts wal.Options

	// appended is the bytes of entries appended since the last log
	// compaction was asked for.
	appended uint64
	// pending is a log compaction waiting for the state LSM to flush
	// everything up to its index: the WAL lets go of entries only once
	// the state that holds them is durable without them.
	pending *pendingCompaction
}

type pendingCompaction struct {
	index   uint64
	cs      *raftpb.ConfState
	flushed <-chan struct{}
}

// logOptions say where the WAL lives and how it behaves.
type logOptions struct {
	walDir      string // "": <data dir>/wal
	maxSegments int
	noSync      bool
	applied     uint64 // the state's applied index
	lg          *slog.Logger
}

// loadLogStore opens the WAL (moving a format-1 log out of Pebble first)
// and checks it against the state: the state must neither be behind the
// log's start (entries it needs are gone) nor ahead of its end (entries it
// applied are gone). It reports whether the member is fresh (never
// bootstrapped).
func loadLogStore(eng *storage.Engine, o logOptions) (*logStore, bool, error) {
	dir := o.walDir
	if dir == "" {
		dir = filepath.Join(eng.Dir(), storage.WALDirName)
	}
	ls := &logStore{eng: eng, ms: raft.NewMemoryStorage(), lg: o.lg, off: o.noSync, walDir: dir,
		walOpts: wal.Options{MaxSegments: o.maxSegments, NoSync: o.noSync, Logger: o.lg}}
	if o.walDir != "" && o.walDir != filepath.Join(eng.Dir(), storage.WALDirName) {
		if inside, err := wal.Exists(filepath.Join(eng.Dir(), storage.WALDirName)); err != nil {
			return nil, false, err
		} else if inside {
			return nil, false, fmt.Errorf("raftnode: %s holds a write-ahead log but --wal-dir is %s; move it there or drop --wal-dir",
				filepath.Join(eng.Dir(), storage.WALDirName), o.walDir)
		}
	}
	if eng.LegacyRaftLog() {
		if err := migrateLegacyLog(eng, dir, ls.walOpts, o.lg); err != nil {
			return nil, false, fmt.Errorf("raftnode: move the Raft log out of the state LSM: %w", err)
		}
	}
	stateSnap, err := loadStateSnapshot(eng.DB)
	if err != nil {
		return nil, false, err
	}
	exists, err := wal.Exists(dir)
	if err != nil {
		return nil, false, err
	}
	if !exists {
		if o.applied > 0 || stateSnap != nil {
			return nil, false, fmt.Errorf("raftnode: no write-ahead log in %s, but the state in %s has applied index %d: the log is lost; refusing to start",
				dir, eng.Dir(), o.applied)
		}
		return ls, true, nil
	}
	w, rec, err := wal.Open(dir, ls.walOpts)
	if err != nil {
		return nil, false, err
	}
	ls.w = w
	fail := func(err error) (*logStore, bool, error) {
		w.Close()
		return nil, false, err
	}
	snap := rec.Snapshot
	ents := rec.Entries
	// A crash after a snapshot install and before the WAL recorded it: the
	// state is the snapshot's, the log before it is void.
	installed := stateSnap != nil && stateSnap.GetIndex() > snap.GetIndex()
	if installed {
		snap, ents = stateSnap, nil
	}
	last := snap.GetIndex()
	if n := len(ents); n > 0 {
		last = ents[n-1].GetIndex()
	}
	switch {
	case o.applied > last:
		return fail(fmt.Errorf("raftnode: the write-ahead log in %s ends at index %d but the state has applied index %d: entries written to the log are lost; refusing to start",
			dir, last, o.applied))
	case o.applied < snap.GetIndex() && (o.applied > 0 || snap.GetIndex() > 1):
		return fail(fmt.Errorf("raftnode: the state in %s has applied index %d but the write-ahead log in %s starts after index %d: state the log no longer holds is lost; refusing to start",
			eng.Dir(), o.applied, dir, snap.GetIndex()))
	}
	if installed {
		o.lg.Info("the state holds a snapshot newer than the write-ahead log's; the log restarts there",
			"index", stateSnap.GetIndex(), "term", stateSnap.GetTerm(), "wal-snapshot-index", rec.Snapshot.GetIndex())
		if err := w.SaveSnapshot(stateSnap, true); err != nil {
			return fail(err)
		}
	}
	if err := ls.ms.ApplySnapshot(&raftpb.Snapshot{Metadata: snap}); err != nil {
		return fail(err)
	}
	if hs := rec.HardState; !raft.IsEmptyHardState(hs) {
		if err := ls.ms.SetHardState(hs); err != nil {
			return fail(err)
		}
	}
	if err := ls.ms.Append(ents); err != nil {
		return fail(err)
	}
	return ls, false, nil
}

// loadStateSnapshot reads the metadata of the last snapshot installed into
// the state (nil if none).
func loadStateSnapshot(db *pebble.DB) (*raftpb.SnapshotMetadata, error) {
	b, ok, err := storage.GetCopy(db, keySnapshot)
	if err != nil || !ok {
		return nil, err
	}
	meta := &raftpb.SnapshotMetadata{}
	if err := proto.Unmarshal(b, meta); err != nil {
		return nil, fmt.Errorf("raftnode: corrupt snapshot metadata in the state: %w", err)
	}
	return meta, nil
}

// bootstrap starts a new log at index 1 from a snapshot whose conf state
// holds the initial voters, so no conf-change entries are needed.
func (ls *logStore) bootstrap(voters []uint64) error {
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1), Term: proto.Uint64(1), ConfState: &raftpb.ConfState{Voters: voters}}}
	hs := &raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(1)}
	w, err := wal.Create(ls.walDir, ls.walOpts, snap.Metadata, hs)
	if err != nil {
		return err
	}
	ls.w = w
	if err := ls.ms.ApplySnapshot(snap); err != nil {
		return err
	}
	return ls.ms.SetHardState(hs)
}

// save makes a Ready's entries and hard state durable, then mirrors them.
func (ls *logStore) save(rd *raft.Ready) error {
	if err := ls.pollCompaction(); err != nil {
		return err
	}
	if len(rd.Entries) == 0 && raft.IsEmptyHardState(rd.HardState) {
		return nil
	}
	var hs *raftpb.HardState
	if !raft.IsEmptyHardState(rd.HardState) {
		hs = rd.HardState
	}
	sync := rd.MustSync && !ls.off
	start := time.Now()
	if err := ls.w.Save(hs, rd.Entries, sync); err != nil {
		return err
	}
	if sync && ls.observeFsync != nil {
		ls.observeFsync(time.Since(start))
	}
	for _, e := range rd.Entries {
		ls.appended += uint64(len(e.Data))
	}
	if hs != nil {
		if err := ls.ms.SetHardState(hs); err != nil {
			return err
		}
	}
	return ls.ms.Append(rd.Entries)
}

// compactDue reports whether a log compaction is due at applied index
// applied, given the applied index at the last one and the entry count
// between compactions: by count, or by the bytes appended since.
func (ls *logStore) compactDue(applied, compactedAt, every uint64) bool {
	return applied >= compactedAt+every || ls.appended >= compactBytes
}

// compactIndex is where a log compaction at applied index applied cuts the
// log: keepEntries behind it, fewer if those hold more than catchUpBytes.
func (ls *logStore) compactIndex(applied, keepEntries uint64) uint64 {
	idx := uint64(0)
	if applied > keepEntries {
		idx = applied - keepEntries
	}
	first, _ := ls.ms.FirstIndex()
	if idx+1 < first {
		idx = first - 1
	}
	if idx >= applied {
		return idx
	}
	// Keep the newest entries that fit in catchUpBytes.
	all, err := ls.ms.Entries(idx+1, applied+1, math.MaxUint64)
	if err != nil {
		return idx
	}
	var size uint64
	cut := applied
	for i := len(all) - 1; i >= 0; i-- {
		size += uint64(proto.Size(all[i]))
		if size > catchUpBytes {
			break
		}
		cut = all[i].GetIndex() - 1
	}
	if cut > idx {
		idx = cut
	}
	return idx
}

// compact asks for the log to be truncated up to index (which must be
// applied), keeping the conf state in the snapshot metadata. The WAL
// records it once the state LSM has flushed what index covers: a crash
// then replays nothing the log no longer has.
func (ls *logStore) compact(index uint64, cs *raftpb.ConfState) error {
	ls.appended = 0
	if ls.pending == nil {
		flushed, err := ls.eng.DB.AsyncFlush()
		if err != nil {
			return err
		}
		ls.pending = &pendingCompaction{index: index, cs: cs, flushed: flushed}
	}
	return ls.pollCompaction()
}

// pollCompaction finishes a pending log compaction if its flush is done.
func (ls *logStore) pollCompaction() error {
	p := ls.pending
	if p == nil {
		return nil
	}
	select {
	case <-p.flushed:
	default:
		return nil
	}
	ls.pending = nil
	snap, err := ls.ms.CreateSnapshot(p.index, p.cs, nil)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := ls.w.SaveSnapshot(snap.Metadata, false); err != nil {
		return err
	}
	if err := ls.ms.Compact(p.index); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	n, err := ls.w.ReleaseTo(p.index)
	if err != nil {
		return err
	}
	if n > 0 {
		ls.lg.Debug("released write-ahead log segments", "index", p.index, "deleted", n)
	}
	return nil
}

// installed records in the WAL that a snapshot replaced the state (the
// state LSM already holds it) and makes Raft's storage start at it.
func (ls *logStore) installed(meta *raftpb.SnapshotMetadata) error {
	ls.pending = nil
	ls.appended = 0
	if err := ls.w.SaveSnapshot(meta, true); err != nil {
		return err
	}
	return ls.ms.ApplySnapshot(&raftpb.Snapshot{Metadata: meta})
}

// close closes the WAL.
func (ls *logStore) close() error {
	if ls.w == nil {
		return nil
	}
	return ls.w.Close()
}

// migrateLegacyLog moves a format-1 data dir's Raft log and hard state out
// of the state LSM into a new WAL in dir, then deletes them from the LSM
// and marks the data dir format 2. The WAL is built beside dir and renamed
// into place, so a crash leaves either no WAL (and the old log, which the
// next start moves again) or a whole one.
func migrateLegacyLog(eng *storage.Engine, dir string, opts wal.Options, lg *slog.Logger) error {
	exists, err := wal.Exists(dir)
	if err != nil {
		return err
	}
	if !exists {
		snap, err := loadStateSnapshot(eng.DB)
		if err != nil {
			return err
		}
		hsBytes, haveHS, err := storage.GetCopy(eng.DB, keyHardState)
		if err != nil {
			return err
		}
		if snap != nil || haveHS {
			hs := &raftpb.HardState{}
			if err := proto.Unmarshal(hsBytes, hs); err != nil {
				return fmt.Errorf("corrupt hard state: %w", err)
			}
			ents, err := legacyEntries(eng.DB, snap.GetIndex())
			if err != nil {
				return err
			}
			tmp := dir + ".migrating"
			if err := os.RemoveAll(tmp); err != nil {
				return err
			}
			w, err := wal.Create(tmp, opts, snap, hs)
			if err != nil {
				return err
			}
			if err := w.Save(nil, ents, true); err != nil {
				w.Close()
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp, dir); err != nil {
				return err
			}
			if err := syncDir(filepath.Dir(dir)); err != nil {
				return err
			}
			lg.Info("moved the Raft log out of the state LSM into a write-ahead log", "dir", dir,
				"snapshot-index", snap.GetIndex(), "entries", len(ents))
		}
	}
	b := eng.DB.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(storage.RaftLogKey(0), storage.KeyspaceEnd(storage.KeyspaceRaftLog), nil); err != nil {
		return err
	}
	if err := b.Delete(keyHardState, nil); err != nil {
		return err
	}
	if err := b.Delete(keySnapshot, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	return eng.UpgradeFormat()
}

// legacyEntries reads a format-1 log's entries after index.
func legacyEntries(db *pebble.DB, index uint64) ([]*raftpb.Entry, error) {
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: storage.RaftLogKey(index + 1),
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceRaftLog),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var ents []*raftpb.Entry
	for ok := it.First(); ok; ok = it.Next() {
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(it.Value(), e); err != nil {
			return nil, fmt.Errorf("corrupt log entry: %w", err)
		}
		ents = append(ents, e)
	}
	return ents, it.Error()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
