package server

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/server/compactor"
)

// startCompactor starts automatic compaction if the configuration asks for
// it (--auto-compaction-retention above zero). Every member keeps the
// schedule; only the leader compacts, through Raft like a client's Compact.
func (m *Member) startCompactor() error {
	if m.cfg.AutoCompactionPeriod <= 0 && m.cfg.AutoCompactionRevisions <= 0 {
		return nil
	}
	c, err := compactor.Start(compactor.Config{
		Mode:      m.cfg.AutoCompactionMode,
		Period:    m.cfg.AutoCompactionPeriod,
		Retention: m.cfg.AutoCompactionRevisions,
		Rev:       m.kv.Rev,
		Compact: func(ctx context.Context, rev int64) error {
			_, err := m.Compact(ctx, &pb.CompactionRequest{Revision: rev})
			return err
		},
		IsCompacted: func(err error) bool { return errors.Is(err, mvcc.ErrCompacted) },
		Leading:     func() bool { return m.node.Status().Lead == m.cluster.LocalID },
		Clock:       m.clock,
		Logger:      m.lg,
	})
	if err != nil {
		return err
	}
	m.compactor = c
	return nil
}

// stopCompactor stops automatic compaction, if it runs, and waits for it.
func (m *Member) stopCompactor() {
	if m.compactor != nil {
		m.compactor.Stop()
	}
}
