package raftnode

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/storage"
)

var (
	keyHardState = storage.RaftStateKey("hardstate")
	keySnapshot  = storage.RaftStateKey("snapshot")
)

// logStore persists the Raft log and state in Pebble and mirrors them in a
// raft.MemoryStorage, which raft reads.
type logStore struct {
	db  *pebble.DB
	ms  *raft.MemoryStorage
	off bool // unsafe: no fsync
	// observeFsync, if set, gets the duration of each synced commit.
	observeFsync func(time.Duration)
}

// loadLogStore restores the log from disk. It reports whether the store is
// fresh (never bootstrapped).
func loadLogStore(eng *storage.Engine, noSync bool) (*logStore, bool, error) {
	ls := &logStore{db: eng.DB, ms: raft.NewMemoryStorage(), off: noSync}
	snapBytes, haveSnap, err := storage.GetCopy(eng.DB, keySnapshot)
	if err != nil {
		return nil, false, err
	}
	hsBytes, haveHS, err := storage.GetCopy(eng.DB, keyHardState)
	if err != nil {
		return nil, false, err
	}
	if !haveSnap && !haveHS {
		return ls, true, nil
	}
	meta := &raftpb.SnapshotMetadata{}
	if haveSnap {
		if err := proto.Unmarshal(snapBytes, meta); err != nil {
			return nil, false, fmt.Errorf("raftnode: corrupt snapshot metadata: %w", err)
		}
		if err := ls.ms.ApplySnapshot(&raftpb.Snapshot{Metadata: meta}); err != nil {
			return nil, false, err
		}
	}
	if haveHS {
		hs := &raftpb.HardState{}
		if err := proto.Unmarshal(hsBytes, hs); err != nil {
			return nil, false, fmt.Errorf("raftnode: corrupt hard state: %w", err)
		}
		if err := ls.ms.SetHardState(hs); err != nil {
			return nil, false, err
		}
	}
	it, err := eng.DB.NewIter(&pebble.IterOptions{
		LowerBound: storage.RaftLogKey(meta.GetIndex() + 1),
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceRaftLog),
	})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	var ents []*raftpb.Entry
	for ok := it.First(); ok; ok = it.Next() {
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(it.Value(), e); err != nil {
			return nil, false, fmt.Errorf("raftnode: corrupt log entry: %w", err)
		}
		ents = append(ents, e)
	}
	if err := it.Error(); err != nil {
		return nil, false, err
	}
	if err := ls.ms.Append(ents); err != nil {
		return nil, false, err
	}
	return ls, false, nil
}

// bootstrap starts a new log at index 1 from a snapshot whose conf state
// holds the initial voters, so no conf-change entries are needed.
func (ls *logStore) bootstrap(voters []uint64) error {
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1), Term: proto.Uint64(1), ConfState: &raftpb.ConfState{Voters: voters}}}
	hs := &raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(1)}
	b := ls.db.NewBatch()
	defer b.Close()
	mb, _ := proto.Marshal(snap.Metadata)
	hb, _ := proto.Marshal(hs)
	_ = b.Set(keySnapshot, mb, nil)
	_ = b.Set(keyHardState, hb, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	if err := ls.ms.ApplySnapshot(snap); err != nil {
		return err
	}
	return ls.ms.SetHardState(hs)
}

// save makes a Ready's entries and hard state durable, then mirrors them.
func (ls *logStore) save(rd *raft.Ready) error {
	if len(rd.Entries) == 0 && raft.IsEmptyHardState(rd.HardState) {
		return nil
	}
	b := ls.db.NewBatch()
	defer b.Close()
	if len(rd.Entries) > 0 {
		// A new leader may overwrite the tail of the log: drop what
		// follows the first new index.
		first := rd.Entries[0].GetIndex()
		last, _ := ls.ms.LastIndex()
		if first <= last {
			if err := b.DeleteRange(storage.RaftLogKey(first), storage.KeyspaceEnd(storage.KeyspaceRaftLog), nil); err != nil {
				return err
			}
		}
		for i := range rd.Entries {
			data, err := proto.Marshal(rd.Entries[i])
			if err != nil {
				return err
			}
			if err := b.Set(storage.RaftLogKey(rd.Entries[i].GetIndex()), data, nil); err != nil {
				return err
			}
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		data, err := proto.Marshal(rd.HardState)
		if err != nil {
			return err
		}
		if err := b.Set(keyHardState, data, nil); err != nil {
			return err
		}
	}
	opts := pebble.NoSync
	if rd.MustSync && !ls.off {
		opts = pebble.Sync
	}
	start := time.Now()
	if err := b.Commit(opts); err != nil {
		return err
	}
	if opts == pebble.Sync && ls.observeFsync != nil {
		ls.observeFsync(time.Since(start))
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := ls.ms.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	return ls.ms.Append(rd.Entries)
}

// compact truncates the log up to index (which must be applied and durable
// in the state machine), keeping the conf state in the snapshot metadata.
func (ls *logStore) compact(index uint64, cs *raftpb.ConfState) error {
	snap, err := ls.ms.CreateSnapshot(index, cs, nil)
	if err != nil {
		if err == raft.ErrSnapOutOfDate {
			return nil
		}
		return err
	}
	mb, err := proto.Marshal(snap.Metadata)
	if err != nil {
		return err
	}
	b := ls.db.NewBatch()
	defer b.Close()
	if err := b.Set(keySnapshot, mb, nil); err != nil {
		return err
	}
	if err := b.DeleteRange(storage.RaftLogKey(0), storage.RaftLogKey(index+1), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	if err := ls.ms.Compact(index); err != nil && err != raft.ErrCompacted {
		return err
	}
	return nil
}
