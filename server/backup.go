package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-kv/cairn/apply"
	"github.com/cairn-kv/cairn/backup"
)

// backupDir is where backups are written before they are streamed, inside
// the data dir so they are on the same volume; it is emptied at start.
const backupDir = "backup.tmp"

// Backup is a point-in-time backup of the member's state in etcd's snapshot
// format (see package backup), ready to be read: File is open at its start
// and already unlinked, so closing it frees the space.
type Backup struct {
	File *os.File
	// Size is the file's size in bytes, SHA-256 trailer included.
	Size int64
	// Version is the storage version the file declares.
	Version string
}

// Snapshot writes a backup of the state as of now (a Pebble snapshot:
// writes go on meanwhile) and returns it for streaming (etcd's
// Maintenance.Snapshot). Memory stays bounded; the file lives in the data
// dir until closed.
func (m *Member) Snapshot(ctx context.Context) (*Backup, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := filepath.Join(m.cfg.Dir, backupDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server: backup: %w", err)
	}
	snap := m.eng.DB.NewSnapshot()
	defer snap.Close()
	index, term, err := apply.AppliedIndexOf(snap)
	if err != nil {
		return nil, fmt.Errorf("server: backup: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("snapshot-%d-%d.db", index, time.Now().UnixNano()))
	start := time.Now()
	info, err := backup.Write(path, dir, backup.Source{State: snap, AppliedIndex: index, Term: term, Members: m.cluster.List()})
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	_ = os.Remove(path) // the open file keeps the data until closed
	if err != nil {
		return nil, fmt.Errorf("server: backup: %w", err)
	}
	m.lg.Info("wrote database snapshot", "revision", info.Revision, "versions", info.Keys,
		"total-bytes", info.Size, "took", time.Since(start).Round(time.Millisecond))
	return &Backup{File: f, Size: info.Size, Version: backup.StorageVersion}, nil
}

// removeBackupFiles deletes what a backup interrupted by a crash left.
func (m *Member) removeBackupFiles() error {
	return os.RemoveAll(filepath.Join(m.cfg.Dir, backupDir))
}
