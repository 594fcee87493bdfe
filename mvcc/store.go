package mvcc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

// Errors returned by reads and compaction, as etcd's mvcc package.
var (
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
)

// Store is the multi-version key-value store of one member.
type Store struct {
	eng *storage.Engine
	lg  *slog.Logger

	// mu guards the published revisions. Batch commits hold it exclusively
	// for the length of a non-synced Pebble commit; reads hold it shared
	// while they take a snapshot, so a snapshot and its revision agree.
	mu struct {
		sync.RWMutex
		rev        int64 // current store revision
		compactRev int64 // compacted revision, -1 if never compacted
	}

	compactor *compactor

	// live caches live records' metadata for the lookup before a put.
	live *liveCache

	// shared is the snapshot that reads at the current revision share
	// (Read): taking and closing a Pebble snapshot per read locks the
	// DB's snapshot list every time.
	shared struct {
		sync.Mutex
		cur *sharedSnap
	}

	// hashes are the HashKV answers computed by the last compactions, of
	// the versions as they were before each removed any (see compactOnce).
	hashes struct {
		sync.Mutex
		list []KVHash
	}
}

// Open reads the store's meta keys; it does no scan, so it costs the same
// for any number of keys. A fresh store is at revision 1, as etcd's.
func Open(eng *storage.Engine, lg *slog.Logger) (*Store, error) {
	return OpenWith(eng, lg, Options{})
}

// Options tune a Store. The zero value is valid.
type Options struct {
	// LiveCacheBytes bounds the cache of live records' metadata that
	// spares a put its read of the key's live record (keys' bytes plus
	// about 80 bytes per key). 0 means DefaultLiveCacheBytes; negative
	// disables the cache.
	LiveCacheBytes int64
}

// OpenWith is Open with options.
func OpenWith(eng *storage.Engine, lg *slog.Logger, o Options) (*Store, error) {
	if lg == nil {
		lg = slog.Default()
	}
	if o.LiveCacheBytes == 0 {
		o.LiveCacheBytes = DefaultLiveCacheBytes
	}
	s := &Store{eng: eng, lg: lg, live: newLiveCache(o.LiveCacheBytes)}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads the revisions and starts compaction where it stopped.
func (s *Store) load() error {
	rev, err := readMetaInt(s.eng.DB, metaRev, 1)
	if err != nil {
		return fmt.Errorf("mvcc: read revision: %w", err)
	}
	compactRev, err := readMetaInt(s.eng.DB, metaCompact, -1)
	if err != nil {
		return fmt.Errorf("mvcc: read compacted revision: %w", err)
	}
	done, err := readMetaInt(s.eng.DB, metaCompactDone, -1)
	if err != nil {
		return fmt.Errorf("mvcc: read compaction progress: %w", err)
	}
	empty, err := noLiveKeys(s.eng.DB)
	if err != nil {
		return fmt.Errorf("mvcc: read live keys: %w", err)
	}
	s.live.reset(empty)
	s.mu.rev, s.mu.compactRev = rev, compactRev
	s.compactor = newCompactor(s, done)
	if compactRev > done {
		s.compactor.schedule(compactRev)
	}
	return nil
}

// Restore replaces the store's content, as a snapshot install does: it
// stops background compaction (at its next chunk boundary, without the
// store's lock: reads and commits go on meanwhile), runs install (which
// rewrites the store's keys atomically), then reloads the revisions and
// resumes compaction. Reads started before it see the old content, reads
// after it the new. The caller must not write to the store meanwhile.
func (s *Store) Restore(install func() error) error {
	s.mu.RLock()
	c := s.compactor
	s.mu.RUnlock()
	c.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropShared()
	err := install()
	if lerr := s.load(); err == nil {
		err = lerr
	}
	return err
}

// Close stops background compaction and waits for it, and releases the
// shared read snapshot (reads still open keep it until their End).
func (s *Store) Close() {
	s.mu.RLock()
	c := s.compactor
	s.mu.RUnlock()
	c.close()
	s.dropShared()
}

// Rev is the current store revision.
func (s *Store) Rev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.rev
}

// CompactRev is the compacted revision, or -1 if the store was never compacted.
func (s *Store) CompactRev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.compactRev
}

// Read returns a read transaction over a consistent snapshot at the current
// revision. The caller must call End. Reads at the same revision (and
// compacted revision) share one Pebble snapshot: it was taken after the
// commit that published the revision and before any later one, and the
// writes that can come between without moving either revision are
// outside the mvcc keyspaces (applied index, leases, members) or the
// background compactor's, after each of whose runs the snapshot is
// dropped (dropShared).
func (s *Store) Read() *ReadTxn {
	s.mu.RLock()
	rev, compactRev := s.mu.rev, s.mu.compactRev
	s.shared.Lock()
	sh := s.shared.cur
	if sh == nil || sh.rev != rev || sh.compactRev != compactRev {
		if sh != nil {
			sh.release() // the store's reference
		}
		sh = &sharedSnap{snap: s.eng.DB.NewSnapshot(), rev: rev, compactRev: compactRev}
		sh.refs.Store(1)
		s.shared.cur = sh
	}
	sh.refs.Add(1)
	s.shared.Unlock()
	s.mu.RUnlock()
	return &ReadTxn{snap: sh.snap, sh: sh, rev: rev, compactRev: compactRev}
}

// sharedSnap is a Pebble snapshot shared by the reads at one revision,
// closed when the store and every read have released it.
type sharedSnap struct {
	snap            *pebble.Snapshot
	rev, compactRev int64
	refs            atomic.Int64
}

func (sh *sharedSnap) release() {
	if sh.refs.Add(-1) == 0 {
		sh.snap.Close()
	}
}

// dropShared releases the store's reference to the shared snapshot, so
// the next read takes a fresh one.
func (s *Store) dropShared() {
	s.shared.Lock()
	if sh := s.shared.cur; sh != nil {
		s.shared.cur = nil
		sh.release()
	}
	s.shared.Unlock()
}

// WaitCompacted blocks until old versions at or below rev are physically
// removed, or ctx ends.
func (s *Store) WaitCompacted(ctx context.Context, rev int64) error {
	s.mu.RLock()
	c := s.compactor
	s.mu.RUnlock()
	return c.wait(ctx, rev)
}

func readMetaInt(r pebble.Reader, key []byte, def int64) (int64, error) {
	v, ok, err := storage.GetCopy(r, key)
	if err != nil || !ok {
		return def, err
	}
	return decodeInt(v)
}
