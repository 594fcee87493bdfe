package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A member's state is everything in the engine except its own keys: the
// Raft log (r), the Raft state (h) and its member ID. A snapshot carries the
// state; installing one replaces the state and the Raft log at once.

// snapDir holds snapshot files being received, beside db/.
const snapDir = "snap"

// memberIDKey is the one meta key that belongs to the member, not the state
// (membership writes it).
var memberIDKey = MetaKey("member-id")

// ErrBadSnapshot is returned for a snapshot stream that is out of order or
// holds keys that are not state.
var ErrBadSnapshot = errors.New("storage: malformed snapshot")

// IsState reports whether key is part of the replicated state (what a
// snapshot carries), rather than one of this member's own keys.
func IsState(key []byte) bool {
	if len(key) == 0 {
		return false
	}
	switch key[0] {
	case KeyspaceRaftLog, KeyspaceRaftState:
		return false
	}
	return !bytes.Equal(key, memberIDKey)
}

// ForEachState calls fn with every state key and value of r (a Pebble
// snapshot, for a consistent view) in key order. fn must not keep the
// slices.
func ForEachState(r pebble.Reader, fn func(key, value []byte) error) error {
	it, err := r.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) > 0 && (k[0] == KeyspaceRaftLog || k[0] == KeyspaceRaftState) {
			ok = it.SeekGE(KeyspaceEnd(k[0])) // skip the whole keyspace
			continue
		}
		if IsState(k) {
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			if err := fn(k, v); err != nil {
				return err
			}
		}
		ok = it.Next()
	}
	return it.Error()
}

// SnapshotFile builds, from a stream of state keys in order, an sstable
// that replaces this member's state and Raft log when ingested: it holds
// range deletions over everything but the Raft state and the member ID,
// the state, and the given local keys (the Raft snapshot metadata).
type SnapshotFile struct {
	eng   *Engine
	tmp   string
	w     *sstable.Writer
	local []kv // sorted, not yet written
	last  []byte
	n     int
}

type kv struct{ k, v []byte }

// CreateSnapshotFile starts a snapshot file. local are keys outside the
// state (in the Raft state keyspace) to write with it.
func (e *Engine) CreateSnapshotFile(local map[string][]byte) (*SnapshotFile, error) {
	dir := filepath.Join(e.dir, snapDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: snapshot dir: %w", err)
	}
	f, err := os.CreateTemp(dir, "recv-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("storage: snapshot file: %w", err)
	}
	name := f.Name()
	f.Close()
	vf, err := vfs.Default.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		os.Remove(name)
		return nil, fmt.Errorf("storage: snapshot file: %w", err)
	}
	sf := &SnapshotFile{eng: e, tmp: name}
	for k, v := range local {
		if IsState([]byte(k)) || len(k) == 0 || k[0] != KeyspaceRaftState {
			vf.Close()
			os.Remove(name)
			return nil, fmt.Errorf("storage: snapshot local key %q is not Raft state", k)
		}
		sf.local = append(sf.local, kv{[]byte(k), v})
	}
	sortKVs(sf.local)
	sf.w = sstable.NewWriter(objstorageprovider.NewFileWritable(vf), e.opts.MakeWriterOptions(0, e.DB.TableFormat()))
	// Clear everything the file does not keep: all but the Raft hard state
	// (written by the Raft loop) and the member ID. Points in the same file
	// survive its own range deletions.
	hsEnd := KeyspaceEnd(KeyspaceRaftState)
	spans := [][2][]byte{
		{{0}, {KeyspaceRaftState}},
		{hsEnd, memberIDKey},
		{append(bytes.Clone(memberIDKey), 0), {0xff}},
	}
	for _, s := range spans {
		if err := sf.w.DeleteRange(s[0], s[1]); err != nil {
			sf.Abort()
			return nil, err
		}
	}
	return sf, nil
}

func sortKVs(kvs []kv) {
	for i := 1; i < len(kvs); i++ {
		for j := i; j > 0 && bytes.Compare(kvs[j-1].k, kvs[j].k) > 0; j-- {
			kvs[j-1], kvs[j] = kvs[j], kvs[j-1]
		}
	}
}

// Add writes one state key. Keys must come in strictly increasing order
// and be state keys, else it returns ErrBadSnapshot.
func (f *SnapshotFile) Add(key, value []byte) error {
	if !IsState(key) || (f.last != nil && bytes.Compare(key, f.last) <= 0) {
		return fmt.Errorf("%w: key %q out of order or not state", ErrBadSnapshot, key)
	}
	for len(f.local) > 0 && bytes.Compare(f.local[0].k, key) < 0 {
		if err := f.w.Set(f.local[0].k, f.local[0].v); err != nil {
			return err
		}
		f.local = f.local[1:]
	}
	if err := f.w.Set(key, value); err != nil {
		return err
	}
	f.last = append(f.last[:0], key...)
	f.n++
	return nil
}

// Keys is how many state keys were added.
func (f *SnapshotFile) Keys() int { return f.n }

// Finish completes and syncs the file and returns its path, for
// IngestSnapshot.
func (f *SnapshotFile) Finish() (string, error) {
	for _, l := range f.local {
		if err := f.w.Set(l.k, l.v); err != nil {
			f.Abort()
			return "", err
		}
	}
	f.local = nil
	if err := f.w.Close(); err != nil {
		os.Remove(f.tmp)
		return "", fmt.Errorf("storage: snapshot file: %w", err)
	}
	path := strings.TrimSuffix(f.tmp, ".tmp") + ".sst"
	if err := os.Rename(f.tmp, path); err != nil {
		os.Remove(f.tmp)
		return "", fmt.Errorf("storage: snapshot file: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("storage: snapshot file: %w", err)
	}
	return path, nil
}

// Abort discards the file.
func (f *SnapshotFile) Abort() {
	if f.w != nil {
		_ = f.w.Close()
	}
	os.Remove(f.tmp)
}

// IngestSnapshot replaces the state and the Raft log with a finished
// snapshot file, in one atomic step; the file is consumed. Nothing else may
// write state keys while it runs.
func (e *Engine) IngestSnapshot(path string) error {
	if filepath.Dir(path) != filepath.Join(e.dir, snapDir) {
		return fmt.Errorf("storage: snapshot file %s is not in this data dir", path)
	}
	if err := e.DB.Ingest(context.Background(), []string{path}); err != nil {
		return fmt.Errorf("storage: ingest snapshot: %w", err)
	}
	return nil
}

// RemoveSnapshotFiles deletes snapshot files received but never ingested
// (except keep, if not empty).
func (e *Engine) RemoveSnapshotFiles(keep string) error {
	dir := filepath.Join(e.dir, snapDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ent := range entries {
		p := filepath.Join(dir, ent.Name())
		if p != keep {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
