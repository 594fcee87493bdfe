package server

import (
	"sync"
	"syscall"
	"time"

	"github.com/cairn-kv/cairn/wal"
)

// diskCheckInterval bounds how often the free space is read.
const diskCheckInterval = 250 * time.Millisecond

// diskSpace caches the free space of the data dir's file system.
type diskSpace struct {
	mu   sync.Mutex
	at   time.Time
	free int64
	err  error
}

// freeBytes is the space available to this process on the file system of
// dir, read at most every diskCheckInterval.
func (d *diskSpace) freeBytes(dir string) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := time.Now(); now.Sub(d.at) >= diskCheckInterval {
		var st syscall.Statfs_t
		d.err = syscall.Statfs(dir, &st)
		d.free = int64(st.Bavail) * int64(st.Bsize)
		d.at = now
	}
	return d.free, d.err
}

// diskLow reports whether the data dir's file system, or the WAL dir's,
// has less free space than the reserve (Config.DiskReserveBytes; by
// default what Pebble needs to go on writing, plus two Raft WAL segments).
func (m *Member) diskLow() bool {
	if m.cfg.DiskReserveBytes < 0 {
		return false
	}
	walReserve := int64(2 * wal.DefaultSegmentBytes)
	dataReserve := m.cfg.DiskReserveBytes
	if dataReserve == 0 {
		dataReserve = m.eng.WriteReserve()
		if m.cfg.WALDir == "" {
			dataReserve += walReserve
		}
	}
	if m.below(&m.disk, m.cfg.Dir, dataReserve) {
		return true
	}
	return m.cfg.WALDir != "" && m.below(&m.walDisk, m.cfg.WALDir, walReserve)
}

func (m *Member) below(d *diskSpace, dir string, reserve int64) bool {
	free, err := d.freeBytes(dir)
	if err != nil {
		m.lg.Warn("cannot read the free space", "dir", dir, "error", err)
		return false
	}
	return free < reserve
}
