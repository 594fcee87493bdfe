package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

const (
	markerFile = "cairn.dir"
	dbDir      = "db"
	// formatVersion 2: the Raft log and hard state live in a write-ahead
	// log of their own (package wal), not in the r and h keyspaces.
	// Format 1 directories are opened with LegacyRaftLog set, and raftnode
	// moves their log out before it writes anything.
	formatVersion = 2
	// formatLegacyRaftLog is the format whose Raft log is in Pebble.
	formatLegacyRaftLog = 1
)

// ErrForeignDataDir is returned by Open for a non-empty directory that was
// not written by Cairn.
var ErrForeignDataDir = errors.New("storage: data dir was not written by cairn")

// Options tune the engine. The zero value is valid.
type Options struct {
	// Creating names what creates a new data dir ("bootstrap" for a member's
	// first start, "restore" for a snapshot restore). Open then writes the
	// marker first, saying the dir is incomplete, and Complete clears that
	// once the dir holds a whole member: a crash in between leaves a dir
	// that HasData does not count as a member and that only a "bootstrap"
	// may resume (it is deterministic, or uses the cluster SaveDiscovered
	// kept); any other incomplete dir is refused with ErrIncomplete.
	// "" writes a complete marker once Pebble is open (tests, tools).
	Creating string

	// CacheBytes is the block cache size in bytes. Default 64 MiB.
	CacheBytes int64
	// MemTableBytes is the memtable size in bytes. Default 4 MiB (Pebble's
	// default). Pebble preallocates each of its log files to 110% of it
	// and keeps up to four (one live, three for recycling), so this
	// sets most of a fresh data dir's size: 32 MiB made it 36 MB and
	// filled a 96 MB volume after 526 puts of 4 KiB (issue 15).
	MemTableBytes uint64
	// BulkLoad is for filling a new data dir that nothing serves yet (cairn
	// snapshot restore): Pebble's WAL is off (the loader makes the data
	// durable with Flush and publishes the dir only after), and automatic
	// compactions wait for CompactAll, which rewrites the loaded tables
	// once instead of level by level as they arrive.
	BulkLoad bool
}

// Engine is an open data directory.
type Engine struct {
	// DB is the Pebble database. Packages above storage read and write it
	// through batches and iterators, in their own keyspaces.
	DB   *pebble.DB
	dir  string
	opts *pebble.Options // for writing sstables the DB can ingest
	// format is the data dir's format version as found at Open.
	format int
	// incomplete is what created the dir, until Complete.
	incomplete string
	// Recovery is what opening Pebble took (for the restart log line).
	Recovery Recovery

	// corrupt is closed, and corruptErr set, when Pebble reports on-disk
	// corruption: the member must stop rather than serve or apply from
	// bad data.
	corrupt     chan struct{}
	corruptOnce sync.Once
	corruptErr  error

	// size caches Sizes: computing them walks Pebble's metrics.
	size struct {
		sync.Mutex
		bytes, inUse int64
		at           time.Time
	}
}

// Recovery says what Open spent on Pebble: the size of its log files
// that were present (an upper bound on what it replayed: it replays those
// not yet flushed, and flushes them before it returns) and the time
// pebble.Open took.
type Recovery struct {
	LogBytes int64
	Took     time.Duration
}

// sizeRefresh is how stale the cached size may be.
const sizeRefresh = time.Second

type marker struct {
	Program string `json:"program"`
	Format  int    `json:"format"`
	// Incomplete names the operation creating the dir (Options.Creating)
	// until it finished; "" for a whole member.
	Incomplete string `json:"incomplete,omitempty"`
	// InitialCluster and InitialClusterToken are the cluster a member's
	// discovery found (SaveDiscovered), kept for a first start that stops
	// before its membership is stored.
	InitialCluster      string `json:"initial-cluster,omitempty"`
	InitialClusterToken string `json:"initial-cluster-token,omitempty"`
}

// ErrIncomplete is returned by Open for a data dir whose creation (a
// snapshot restore, a first start) stopped midway and cannot be resumed.
var ErrIncomplete = errors.New("storage: data dir is incomplete")

// creatingBootstrap is the Options.Creating of a member's first start.
const creatingBootstrap = "bootstrap"

// Open opens (or creates) the data directory dir. It returns
// ErrForeignDataDir for a directory that has content but was not written by
// Cairn, and an error naming the file for a corrupt one.
func Open(dir string, opts Options) (*Engine, error) {
	fresh, m, err := checkDataDir(dir)
	if err != nil {
		return nil, err
	}
	format := m.Format
	if m.Incomplete != "" {
		if m.Incomplete != creatingBootstrap || opts.Creating != creatingBootstrap {
			return nil, incompleteErr(dir, m.Incomplete)
		}
		// A first start that stopped before its member was whole:
		// bootstrapping again is deterministic (same flags, or the
		// cluster discovery found, kept in the marker).
		fresh = true
	} else if fresh {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: create data dir: %w", err)
		}
		if opts.Creating != "" {
			if err := writeMarker(dir, marker{Incomplete: opts.Creating}); err != nil {
				return nil, err
			}
			m.Incomplete = opts.Creating
		}
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 64 << 20
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = 4 << 20
	}
	cache := pebble.NewCache(opts.CacheBytes)
	defer cache.Unref()
	e := &Engine{dir: dir, format: format, incomplete: m.Incomplete, corrupt: make(chan struct{})}
	if fresh {
		e.format = formatVersion
	}
	po := &pebble.Options{
		Cache:        cache,
		MemTableSize: opts.MemTableBytes,
		// L0 compactions start at 8 sublevels (Pebble: 4) and writes stop
		// at 24 (Pebble: 12). Each L0 compaction rewrites the overlapping
		// part of the base level, and with 4 MiB memtables it ran every
		// 16 MiB of flushes: Pebble's compactions were 26-30% of the CPU
		// of a put load, and this cut the CPU per put by 12-18% (issue 20,
		// docs/perf.md). Point reads check at most 8 more bloom filters.
		L0CompactionThreshold: 8,
		L0StopWritesThreshold: 24,
		ErrorIfNotExists:      !fresh,
		Logger:                quietLogger{},
		// Pebble's WAL stays in its default mode (synced only when asked,
		// replayed up to the first bad record): the state is rebuilt
		// from the Raft WAL, which never lets go of an entry before the
		// state holding it is flushed (see docs/storage.md).
		EventListener: &pebble.EventListener{
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				e.markCorrupt(fmt.Errorf("storage: %s", info.String()))
			},
			BackgroundError: func(err error) {
				if pebble.IsCorruptionError(err) {
					e.markCorrupt(fmt.Errorf("storage: %w", err))
				} else {
					fmt.Fprintf(os.Stderr, "pebble: background error: %v\n", err)
				}
			},
		},
	}
	// Bloom filters on every level: a put looks up the key's live version,
	// and for a new key that lookup must not read a block per level.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
	}
	if opts.BulkLoad {
		po.DisableWAL = true
		po.DisableAutomaticCompactions = true
		// Without automatic compactions L0 only grows until CompactAll:
		// never stall on it (a 1M-key restore flushes a few dozen tables).
		po.L0CompactionThreshold = 1 << 20
		po.L0StopWritesThreshold = 1 << 30
	}
	po.EnsureDefaults()
	gate := newOpenGate()
	po.Experimental.CompactionScheduler = gate
	if err := checkManifests(filepath.Join(dir, dbDir)); err != nil {
		return nil, err
	}
	logs, _ := filepath.Glob(filepath.Join(dir, dbDir, "*.log"))
	for _, l := range logs {
		if st, err := os.Stat(l); err == nil {
			e.Recovery.LogBytes += st.Size()
		}
	}
	t0 := time.Now()
	db, err := pebble.Open(filepath.Join(dir, dbDir), po)
	e.Recovery.Took = time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", filepath.Join(dir, dbDir), err)
	}
	gate.open()
	if fresh && e.incomplete == "" {
		// The marker goes last: a directory without it is not ours, and a
		// crash before this point leaves a directory the next Open refuses
		// only if something else wrote into it.
		if err := writeMarker(dir, marker{}); err != nil {
			db.Close()
			return nil, err
		}
	}
	e.DB, e.opts = db, po
	return e, nil
}

func (e *Engine) markCorrupt(err error) {
	e.corruptOnce.Do(func() {
		e.corruptErr = err
		close(e.corrupt)
	})
}

// Corrupted is closed once Pebble has found on-disk corruption;
// CorruptionErr then says where.
func (e *Engine) Corrupted() <-chan struct{} { return e.corrupt }

// CorruptionErr is the first corruption found, or nil.
func (e *Engine) CorruptionErr() error {
	select {
	case <-e.corrupt:
		return e.corruptErr
	default:
		return nil
	}
}

// LegacyRaftLog reports whether the data dir is in format 1, whose Raft
// log and hard state are in the r and h keyspaces of the state LSM.
func (e *Engine) LegacyRaftLog() bool { return e.format == formatLegacyRaftLog }

// UpgradeFormat records that the data dir is in the current format (the
// Raft log has moved out of Pebble).
func (e *Engine) UpgradeFormat() error {
	if err := writeMarker(e.dir, marker{Incomplete: e.incomplete}); err != nil {
		return err
	}
	e.format = formatVersion
	return nil
}

// Complete marks a data dir opened with Options.Creating as whole (its
// member's membership stored, or its restore written and synced); a no-op
// for a dir that already was.
func (e *Engine) Complete() error {
	if e.incomplete == "" {
		return nil
	}
	if err := writeMarker(e.dir, marker{}); err != nil {
		return err
	}
	e.incomplete = ""
	return nil
}

func incompleteErr(dir, what string) error {
	how := "its creation"
	switch what {
	case "restore":
		how = "a snapshot restore (or migrate)"
	case creatingBootstrap:
		how = "a member's first start"
	}
	return fmt.Errorf("%w: %s was left by %s that stopped before it finished; remove the directory and run it again", ErrIncomplete, dir, how)
}

// SaveDiscovered records, before a member's first start opens its data
// dir, the initial cluster and token that discovery found (etcd's
// --initial-cluster and --initial-cluster-token forms), so that a start
// that stops before its membership is stored bootstraps the same cluster
// again rather than run discovery a second time (where its own
// registration makes it a duplicate). It creates dir; dir must be new or a
// first start's leftover, else it returns Open's error.
func SaveDiscovered(dir, initialCluster, token string) error {
	fresh, m, err := checkDataDir(dir)
	if err != nil {
		return err
	}
	if !fresh && m.Incomplete != creatingBootstrap {
		if m.Incomplete != "" {
			return incompleteErr(dir, m.Incomplete)
		}
		return fmt.Errorf("storage: %s already holds a member", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("storage: create data dir: %w", err)
	}
	return writeMarker(dir, marker{Incomplete: creatingBootstrap, InitialCluster: initialCluster, InitialClusterToken: token})
}

// Discovered returns what SaveDiscovered kept in dir, if dir is a first
// start's leftover that has it (ok false otherwise). It returns Open's
// error for a foreign dir or one another operation left incomplete.
func Discovered(dir string) (initialCluster, token string, ok bool, err error) {
	_, m, err := checkDataDir(dir)
	if err != nil {
		return "", "", false, err
	}
	switch m.Incomplete {
	case "":
		return "", "", false, nil
	case creatingBootstrap:
		return m.InitialCluster, m.InitialClusterToken, m.InitialCluster != "", nil
	default:
		return "", "", false, incompleteErr(dir, m.Incomplete)
	}
}

// checkDataDir reports whether dir is new (absent, empty, or holding only a
// half-created Cairn db) and refuses foreign or corrupt directories. m is
// the marker, if there is one.
func checkDataDir(dir string) (fresh bool, m marker, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, m, nil
	}
	if err != nil {
		return false, m, fmt.Errorf("storage: read data dir: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, markerFile))
	if errors.Is(err, os.ErrNotExist) {
		for _, e := range entries {
			// fixtures/ holds the certificates --auto-tls and
			// --peer-auto-tls generate before the first start, as etcd's.
			if e.Name() != dbDir && e.Name() != WALDirName && e.Name() != "fixtures" {
				if e.Name() == "member" {
					return false, m, fmt.Errorf("%w: %s holds an etcd data dir (member/); cairn does not read etcd's files", ErrForeignDataDir, dir)
				}
				return false, m, fmt.Errorf("%w: %s is not empty and has no %s", ErrForeignDataDir, dir, markerFile)
			}
		}
		// Only a db dir and no marker: a first start that crashed midway,
		// if the db dir holds nothing but Pebble's own files.
		if err := checkPebbleOnly(filepath.Join(dir, dbDir)); err != nil {
			return false, m, fmt.Errorf("%w: %s has no %s and %v", ErrForeignDataDir, dir, markerFile, err)
		}
		return true, m, nil
	}
	if err != nil {
		return false, m, fmt.Errorf("storage: read %s: %w", markerFile, err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Program != "cairn" {
		return false, m, fmt.Errorf("%w: %s is corrupt or foreign", ErrForeignDataDir, filepath.Join(dir, markerFile))
	}
	if m.Format != formatVersion && m.Format != formatLegacyRaftLog {
		return false, m, fmt.Errorf("storage: data dir format %d is not supported (want %d or %d)", m.Format, formatLegacyRaftLog, formatVersion)
	}
	return false, m, nil
}

// WALDirName is the Raft write-ahead log's directory inside a data dir,
// unless --wal-dir puts it elsewhere.
const WALDirName = "wal"

// checkManifests reads every Pebble MANIFEST in dir and fails if one is
// damaged. Pebble takes the first bad record of a MANIFEST for its end (a
// torn write), which after damage in the middle silently drops tables that
// later records still count on (issue 15's fault injection found 2,286 of
// 4,019 acknowledged writes gone), and after damage to the last record
// drops that edit (a flush whose log is deleted: its writes). A torn write
// leaves nothing valid after the bad chunk and ends the file early or in
// zeros (tornAt); damage does not.
func checkManifests(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if err != nil {
		return err
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		if off, ok := manifestDamage(b); !ok {
			return fmt.Errorf("storage: %s is corrupt at offset %d (a record that fails its checksum and is no torn write); refusing to start: restore this member from a peer or a backup",
				name, off)
		}
	}
	return nil
}

// Pebble's record format (its record package, the LevelDB log format):
// 32 KiB blocks of chunks, each a 7-byte header — masked CRC-32C of type
// and payload, payload length (uint16), type (1 full, 2 first, 3 middle,
// 4 last) — then the payload; a block's tail shorter than a header is
// zeros.
const (
	recBlockSize  = 32 << 10
	recHeaderSize = 7
)

// manifestDamage walks the chunks of b. It returns false and the offset of
// the first bad chunk if a valid chunk follows it.
func manifestDamage(b []byte) (int64, bool) {
	off := 0
	for off < len(b) {
		blockEnd := (off/recBlockSize + 1) * recBlockSize
		if blockEnd-off < recHeaderSize {
			off = blockEnd
			continue
		}
		if ok, next := chunkAt(b, off); ok {
			off = next
			continue
		}
		for p := off + 1; p+recHeaderSize <= len(b); p++ {
			if ok, _ := chunkAt(b, p); ok {
				return int64(off), false
			}
		}
		return int64(off), tornAt(b, off)
	}
	return 0, true
}

// sectorSize is the unit a torn write leaves unwritten, as etcd's WAL
// decoder assumes (its minSectorSize).
const sectorSize = 512

// tornAt reports whether the bad final chunk at off looks like a write a
// crash cut short rather than damage, by etcd's rule for its WAL's last
// record (decoder.isTornEntry): an append cut short either ends the file
// before the chunk's end, or leaves whole sectors unwritten, which read
// as zeros. So the chunk is torn if the file ends inside it, or if from
// its start, its payload's start or a sector boundary inside it to the
// end of the file every byte is zero. Bytes that are neither (a full-length chunk with a
// bad checksum and no zero tail) are damage: Pebble would drop that
// version edit, and with it a flush whose log is gone.
func tornAt(b []byte, off int) bool {
	if off+recHeaderSize > len(b) {
		return true
	}
	end := off + recHeaderSize + int(binary.LittleEndian.Uint16(b[off+4:]))
	if end > len(b) {
		return true
	}
	if allZero(b[off:]) || allZero(b[off+recHeaderSize:]) {
		return true
	}
	for s := (off/sectorSize + 1) * sectorSize; s < end; s += sectorSize {
		if allZero(b[s:]) {
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// chunkAt reports whether a valid chunk starts at off, and where it ends.
func chunkAt(b []byte, off int) (bool, int) {
	if off+recHeaderSize > len(b) {
		return false, 0
	}
	sum := binary.LittleEndian.Uint32(b[off:])
	n := int(binary.LittleEndian.Uint16(b[off+4:]))
	typ := b[off+6]
	end := off + recHeaderSize + n
	if typ < 1 || typ > 4 || end > len(b) || end > (off/recBlockSize+1)*recBlockSize {
		return false, 0
	}
	c := crc32.Checksum(b[off+6:end], crc32.MakeTable(crc32.Castagnoli))
	return sum == ((c>>15)|(c<<17))+0xa282ead8, end
}

// checkPebbleOnly fails unless every file in dir is one Pebble writes.
func checkPebbleOnly(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // an empty data dir
	}
	if err != nil {
		return fmt.Errorf("its %s/ cannot be read: %v", dbDir, err)
	}
	for _, e := range entries {
		n := e.Name()
		ok := !e.IsDir() && (n == "LOCK" || n == "CURRENT" ||
			strings.HasPrefix(n, "MANIFEST-") || strings.HasPrefix(n, "OPTIONS-") || strings.HasPrefix(n, "marker.") ||
			strings.HasSuffix(n, ".log") || strings.HasSuffix(n, ".sst") || strings.HasSuffix(n, ".blob") || strings.HasSuffix(n, ".dbtmp"))
		if !ok {
			return fmt.Errorf("its %s/ holds %q, which is not Pebble's", dbDir, n)
		}
	}
	return nil
}

// writeMarker replaces dir's marker with m (program and format filled in),
// atomically and durably.
func writeMarker(dir string, m marker) error {
	m.Program, m.Format = "cairn", formatVersion
	b, _ := json.Marshal(m)
	tmp := filepath.Join(dir, markerFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("storage: write marker: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("storage: write marker: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("storage: write marker: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("storage: write marker: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, markerFile)); err != nil {
		return fmt.Errorf("storage: write marker: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CompactAll flushes the memtables and compacts every table into one
// sorted run, synced: with BulkLoad, what makes the loaded data durable
// and leaves a store that reads as fast as a compacted one.
func (e *Engine) CompactAll(ctx context.Context) error {
	if err := e.DB.Flush(); err != nil {
		return fmt.Errorf("storage: flush: %w", err)
	}
	if err := e.DB.Compact(ctx, []byte{0}, []byte{0xff, 0xff}, true); err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	return nil
}

// Dir is the data directory.
func (e *Engine) Dir() string { return e.dir }

// Close flushes the memtables (so the next start replays no write-ahead
// log) and closes the database.
func (e *Engine) Close() error {
	flushErr := e.DB.Flush()
	if err := e.DB.Close(); err != nil {
		return err
	}
	return flushErr
}

// Size is the state's size in bytes as etcd's dbSize: see Sizes.
func (e *Engine) Size() int64 {
	size, _ := e.Sizes()
	return size
}

// Sizes are what the state occupies, in bytes, at most a second old, in
// etcd's two senses (StatusResponse db_size and db_size_in_use, as bbolt's
// file size and that size less its free pages):
//
//   - size: the sstables on disk, live or not yet deleted (obsolete ones
//     wait for open iterators and snapshots, and for the deletion pacer),
//     plus the data in Pebble's WAL not yet flushed to an sstable;
//   - inUse: the live sstables plus the unflushed data: what a full
//     compaction (Defragment) leaves, give or take the overwritten versions
//     and tombstones it drops.
//
// Neither counts what is not the state's data: Pebble's WAL files beyond
// their live data (each is preallocated to 110% of a memtable, and up to
// three more are kept for recycling: about 18 MiB with the default 4 MiB
// memtable), its MANIFEST and OPTIONS files, the outputs of a compaction in
// progress, or the Raft log (its own WAL, in wal/). DiskUsage is all of the
// engine's directory.
func (e *Engine) Sizes() (size, inUse int64) {
	e.size.Lock()
	defer e.size.Unlock()
	if now := time.Now(); now.Sub(e.size.at) > sizeRefresh {
		m := e.DB.Metrics()
		live := m.Table.Local.LiveSize + m.BlobFiles.Local.LiveSize + m.WAL.Size
		e.size.inUse = int64(live)
		e.size.bytes = int64(live + m.Table.Local.ObsoleteSize + m.Table.Local.ZombieSize +
			m.BlobFiles.Local.ObsoleteSize + m.BlobFiles.Local.ZombieSize)
		e.size.at = now
	}
	return e.size.bytes, e.size.inUse
}

// DiskUsage is the bytes Pebble's directory takes on disk, everything
// included (Pebble's DiskSpaceUsage).
func (e *Engine) DiskUsage() int64 { return int64(e.DB.Metrics().DiskSpaceUsage()) }

// GetCopy returns a copy of the value at key, or nil, false if absent.
func GetCopy(r pebble.Reader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}

var _ io.Closer = (*Engine)(nil)

// WriteReserve is the free space, in bytes, that the engine may need to go
// on writing once writes are refused: two preallocated Pebble WAL files
// (a memtable and a tenth each) and the flush of a memtable, plus 16 MiB
// for the manifest and compactions' bookkeeping. A member refuses writes
// below it (the NOSPACE alarm) rather than fail on a full disk.
func (e *Engine) WriteReserve() int64 {
	mt := int64(e.opts.MemTableSize)
	return 2*(mt+mt/10) + mt + 16<<20
}

// HasData reports whether dir is a whole Cairn data dir: it holds the
// marker file Open writes, and nothing left it incomplete (see
// Options.Creating). A member with data restarts rather than bootstraps,
// and skips discovery.
func HasData(dir string) bool {
	fresh, m, err := checkDataDir(dir)
	return err == nil && !fresh && m.Incomplete == ""
}
