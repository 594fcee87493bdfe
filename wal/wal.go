package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// DefaultSegmentBytes is the default preallocated size of a segment, in
// bytes. etcd uses 64 MiB; smaller segments keep a small volume usable
// (issue 15: a 96 MB volume must hold what etcd's holds) at the cost of a
// segment cut every 8 MiB of log.
const DefaultSegmentBytes = 8 << 20

// Options configure a WAL. The zero value is valid.
type Options struct {
	// SegmentBytes is the size, in bytes, each segment is preallocated to;
	// a batch that does not fit starts a new segment. Default
	// DefaultSegmentBytes.
	SegmentBytes int64
	// MaxSegments is how many segment files to keep at most once they are
	// released (etcd --max-wals); 0 keeps every one.
	MaxSegments int
	// NoSync skips fdatasync (etcd --unsafe-no-fsync): unsafe.
	NoSync bool
	// Logger gets the repair and release lines. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) ensureDefaults() {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Recovered is what Open read back.
type Recovered struct {
	// Snapshot is the newest snapshot point or install.
	Snapshot *raftpb.SnapshotMetadata
	// HardState is the last hard state written (empty if none).
	HardState *raftpb.HardState
	// Entries are the log entries after Snapshot.Index, contiguous.
	Entries []*raftpb.Entry
}

type segment struct {
	seq, first uint64
	path       string
	// maxIndex is the highest entry index written to the segment that is
	// still part of the log (0: none).
	maxIndex uint64
}

// WAL is an open write-ahead log. It is not safe for concurrent use: the
// Raft loop owns it.
type WAL struct {
	dir  string
	opts Options
	lg   *slog.Logger

	segs     []segment // oldest first; the last one is being written
	released int       // segs[:released] hold nothing the log still needs
	f        *os.File  // the last segment
	off      int64     // where the next record goes in f
	hdrEnd   int64     // where the last segment's header records end
	buf      []byte

	snap      *raftpb.SnapshotMetadata
	hs        *raftpb.HardState
	lastIndex uint64
	unsynced  bool
}

// ErrExist is returned by Create for a directory that already holds segments.
var ErrExist = errors.New("wal: already exists")

// Exists reports whether dir holds at least one segment.
func Exists(dir string) (bool, error) {
	segs, err := listSegments(dir)
	return len(segs) > 0, err
}

func segmentName(seq, first uint64) string { return fmt.Sprintf("%016x-%016x.wal", seq, first) }

// listSegments returns dir's segments in sequence order.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var segs []segment
	for _, e := range ents {
		var seq, first uint64
		if !strings.HasSuffix(e.Name(), ".wal") {
			continue
		}
		if _, err := fmt.Sscanf(e.Name(), "%016x-%016x.wal", &seq, &first); err != nil || segmentName(seq, first) != e.Name() {
			return nil, fmt.Errorf("wal: %s is not a segment name", filepath.Join(dir, e.Name()))
		}
		segs = append(segs, segment{seq: seq, first: first, path: filepath.Join(dir, e.Name())})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	return segs, nil
}

// Create starts a new WAL in dir (created if need be) whose log begins
// after snap, with hard state hs.
func Create(dir string, opts Options, snap *raftpb.SnapshotMetadata, hs *raftpb.HardState) (*WAL, error) {
	opts.ensureDefaults()
	if ok, err := Exists(dir); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("%w: %s", ErrExist, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	// The directory's own entry must survive a power loss too.
	if !opts.NoSync {
		if err := syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
	}
	if hs == nil {
		hs = &raftpb.HardState{}
	}
	w := &WAL{dir: dir, opts: opts, lg: opts.Logger, snap: cloneMeta(snap), hs: proto.Clone(hs).(*raftpb.HardState), lastIndex: snap.GetIndex()}
	if err := w.cut(0, snap.GetIndex()+1); err != nil {
		return nil, err
	}
	return w, nil
}

// Open reads the WAL in dir, repairs a torn tail, and returns it ready to
// append after what it recovered. Damage it cannot repair makes it return
// a *CorruptError and change nothing.
func Open(dir string, opts Options) (*WAL, *Recovered, error) {
	opts.ensureDefaults()
	segs, err := listSegments(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(segs) == 0 {
		return nil, nil, fmt.Errorf("wal: no segments in %s: %w", dir, os.ErrNotExist)
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, nil, &CorruptError{File: filepath.Join(dir, segmentName(segs[i-1].seq+1, 0)[:16]+"-*.wal"), Reason: "segment missing between " + filepath.Base(segs[i-1].path) + " and " + filepath.Base(segs[i].path)}
		}
	}
	// Only the segments from the one holding the entry after the newest
	// snapshot on are read (as etcd's WAL): older ones hold nothing the
	// log needs.
	lastBytes, err := os.ReadFile(segs[len(segs)-1].path)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: %w", err)
	}
	from := 0
	if si, ok := lastSnapshotIndex(lastBytes); ok {
		for i := range segs {
			if segs[i].first <= si+1 {
				from = i
			}
		}
	}
	r := &replay{}
	var repairAt int64 = -1
	for i := from; i < len(segs); i++ {
		last := i == len(segs)-1
		var b []byte
		if last {
			b = lastBytes
		}
		at, err := r.segment(&segs[i], b, last)
		if err != nil {
			return nil, nil, err
		}
		if last {
			repairAt = at
		}
	}
	rec, err := r.finish()
	if err != nil {
		return nil, nil, err
	}
	for i := range segs {
		if i < from || (r.installed && segs[i].seq < r.installSeq) {
			segs[i].maxIndex = 0
		}
	}
	w := &WAL{dir: dir, opts: opts, lg: opts.Logger, segs: segs, snap: rec.Snapshot, hs: rec.HardState, lastIndex: rec.Snapshot.GetIndex()}
	if n := len(rec.Entries); n > 0 {
		w.lastIndex = rec.Entries[n-1].GetIndex()
	}
	// Nothing changes on disk before this point.
	cur := &w.segs[len(w.segs)-1]
	f, err := os.OpenFile(cur.path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: %w", err)
	}
	w.f, w.off, w.hdrEnd = f, r.end, r.hdrEnd
	if repairAt >= 0 {
		w.lg.Warn("repairing WAL: truncating a torn final record", "file", cur.path, "offset", repairAt)
		if err := w.zeroTail(repairAt); err != nil {
			f.Close()
			return nil, nil, err
		}
		w.off = repairAt
	}
	removeTemps(dir)
	return w, rec, nil
}

// zeroTail cuts the segment at off and preallocates it again, so what
// follows off reads as zeros.
func (w *WAL) zeroTail(off int64) error {
	if err := w.f.Truncate(off); err != nil {
		return fmt.Errorf("wal: repair %s: %w", w.f.Name(), err)
	}
	if err := preallocate(w.f, w.opts.SegmentBytes); err != nil {
		return fmt.Errorf("wal: repair %s: %w", w.f.Name(), err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("wal: repair %s: %w", w.f.Name(), err)
	}
	return nil
}

func removeTemps(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// preallocate makes f at least size bytes, allocated on disk where the
// file system can, so appends within it change no metadata and fdatasync
// writes only data.
func preallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < size {
		return f.Truncate(size)
	}
	return nil
}

// Save appends entries and then the hard state (if not empty), syncing
// if sync. Entries at or below the last index replace the log from there.
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	w.buf = w.buf[:0]
	cur := &w.segs[len(w.segs)-1]
	for _, e := range ents {
		data, err := proto.Marshal(e)
		if err != nil {
			return err
		}
		w.buf = appendRecord(w.buf, recEntry, data)
	}
	if hs != nil && !isEmptyHardState(hs) {
		data, err := proto.Marshal(hs)
		if err != nil {
			return err
		}
		w.buf = appendRecord(w.buf, recState, data)
	}
	if len(w.buf) == 0 {
		return nil
	}
	if w.off+int64(len(w.buf)) > w.opts.SegmentBytes && w.off > w.hdrEnd {
		if err := w.cut(cur.seq+1, w.lastIndex+1); err != nil {
			return err
		}
		cur = &w.segs[len(w.segs)-1]
	}
	if err := w.write(w.buf, sync); err != nil {
		return err
	}
	for _, e := range ents {
		w.lastIndex = e.GetIndex()
		if w.lastIndex > cur.maxIndex {
			cur.maxIndex = w.lastIndex
		}
	}
	if hs != nil && !isEmptyHardState(hs) {
		w.hs = proto.Clone(hs).(*raftpb.HardState)
	}
	return nil
}

func isEmptyHardState(hs *raftpb.HardState) bool {
	return hs.GetTerm() == 0 && hs.GetVote() == 0 && hs.GetCommit() == 0
}

// SaveSnapshot records, synced, that the log is compacted up to meta
// (install false: later entries stay) or replaced by a snapshot installed
// at meta (install true: every entry so far is void).
func (w *WAL) SaveSnapshot(meta *raftpb.SnapshotMetadata, install bool) error {
	data, err := proto.Marshal(meta)
	if err != nil {
		return err
	}
	typ := recSnapshot
	if install {
		typ = recInstall
	}
	w.buf = appendRecord(w.buf[:0], typ, data)
	if err := w.write(w.buf, true); err != nil {
		return err
	}
	w.snap = cloneMeta(meta)
	if install {
		for i := range w.segs {
			w.segs[i].maxIndex = 0
		}
		w.lastIndex = meta.GetIndex()
	}
	return nil
}

func (w *WAL) write(b []byte, sync bool) error {
	if _, err := w.f.WriteAt(b, w.off); err != nil {
		return fmt.Errorf("wal: write %s: %w", w.f.Name(), err)
	}
	w.off += int64(len(b))
	w.unsynced = true
	if sync {
		return w.Sync()
	}
	return nil
}

// Sync makes everything written durable (fdatasync).
func (w *WAL) Sync() error {
	if !w.unsynced || w.opts.NoSync {
		w.unsynced = false
		return nil
	}
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return fmt.Errorf("wal: sync %s: %w", w.f.Name(), err)
	}
	w.unsynced = false
	return nil
}

// cut starts segment seq, whose log continues at index first: written as
// a .tmp file, preallocated, given its header, synced and renamed into
// place. The previous segment is synced and closed first.
func (w *WAL) cut(seq, first uint64) error {
	if w.f != nil {
		if err := w.Sync(); err != nil {
			return err
		}
	}
	path := filepath.Join(w.dir, segmentName(seq, first))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("wal: create segment %s: %w", path, err)
	}
	if err := preallocate(f, w.opts.SegmentBytes); err != nil {
		return fail(err)
	}
	hdr := make([]byte, 0, 64)
	hdr = append(hdr, magic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, formatVersion)
	hdr = binary.LittleEndian.AppendUint64(hdr, seq)
	b := appendRecord(nil, recHeader, hdr)
	sd, err := proto.Marshal(w.snap)
	if err != nil {
		return fail(err)
	}
	b = appendRecord(b, recSnapshot, sd)
	if !isEmptyHardState(w.hs) {
		hd, err := proto.Marshal(w.hs)
		if err != nil {
			return fail(err)
		}
		b = appendRecord(b, recState, hd)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return fail(err)
	}
	if !w.opts.NoSync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if !w.opts.NoSync {
		if err := syncDir(w.dir); err != nil {
			f.Close()
			return fmt.Errorf("wal: create segment %s: %w", path, err)
		}
	}
	if w.f != nil {
		w.f.Close()
	}
	w.f, w.off, w.hdrEnd, w.unsynced = f, int64(len(b)), int64(len(b)), false
	w.segs = append(w.segs, segment{seq: seq, first: first, path: path})
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReleaseTo lets go of the oldest segments whose entries are all at or
// below index (never the one being written): the caller has made the
// state up to index durable. Released segments beyond MaxSegments files
// are deleted. It returns how many files it deleted.
func (w *WAL) ReleaseTo(index uint64) (int, error) {
	var max uint64
	for i := 0; i < len(w.segs)-1; i++ {
		if w.segs[i].maxIndex > max {
			max = w.segs[i].maxIndex
		}
		if max > index {
			break
		}
		if i >= w.released {
			w.released = i + 1
		}
	}
	if w.opts.MaxSegments == 0 || w.released == 0 || len(w.segs) <= w.opts.MaxSegments {
		return 0, nil
	}
	// The compaction that allows this must be durable before the segments
	// that held what it compacted go.
	if err := w.Sync(); err != nil {
		return 0, err
	}
	n := 0
	for w.released > 0 && len(w.segs) > w.opts.MaxSegments {
		if err := os.Remove(w.segs[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("wal: release: %w", err)
		}
		w.segs = w.segs[1:]
		w.released--
		n++
	}
	if err := syncDir(w.dir); err != nil {
		return n, fmt.Errorf("wal: release: %w", err)
	}
	return n, nil
}

// Segments is how many segment files the WAL has.
func (w *WAL) Segments() int { return len(w.segs) }

// Dir is the WAL's directory.
func (w *WAL) Dir() string { return w.dir }

// Close syncs and closes the WAL.
func (w *WAL) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	return err
}

func cloneMeta(m *raftpb.SnapshotMetadata) *raftpb.SnapshotMetadata {
	if m == nil {
		return &raftpb.SnapshotMetadata{Index: proto.Uint64(0), Term: proto.Uint64(0)}
	}
	return proto.Clone(m).(*raftpb.SnapshotMetadata)
}
