package server

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/apply"
	"github.com/cairn-kv/cairn/raftnode"
	"github.com/cairn-kv/cairn/storage"
)

// snapshotSendTimeout bounds one snapshot transfer; Raft asks again after
// a failure.
const snapshotSendTimeout = 10 * time.Minute

// snapshotRetryDelay is how long a failed snapshot transfer waits before
// Raft may try again.
const snapshotRetryDelay = time.Second

// sendSnapshot answers Raft's request to send a snapshot (req, a MsgSnap
// whose metadata is that of the log's compaction) with the state as of the
// applied index: it runs on the apply loop between batches, so a Pebble
// snapshot taken now holds exactly that state. As etcd, the metadata sent
// is the applied index and its term, which is at or after what Raft asked
// for; the follower then acknowledges the later index. The transfer itself
// runs in the background.
func (m *Member) sendSnapshot(req *raftpb.Message) {
	snap := m.eng.DB.NewSnapshot()
	index, term, err := apply.AppliedIndexOf(snap)
	if err != nil || index == 0 {
		snap.Close()
		m.lg.Error("cannot take a snapshot to send", "to", fmt.Sprintf("%x", req.GetTo()), "error", err)
		m.node.ReportSnapshot(req.GetTo(), false)
		return
	}
	msg := proto.Clone(req).(*raftpb.Message)
	msg.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: m.node.ConfStateAt(index),
	}}
	to := msg.GetTo()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer snap.Close()
		ctx, cancel := context.WithTimeout(context.Background(), snapshotSendTimeout)
		defer cancel()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			select {
			case <-m.stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
		start := time.Now()
		var keys, bytes int
		err := m.transport.SendSnapshot(ctx, msg, func(fn func(k, v []byte) error) error {
			return storage.ForEachState(snap, func(k, v []byte) error {
				keys++
				bytes += len(k) + len(v)
				return fn(k, v)
			})
		})
		m.metrics.snapshotSent(to, err == nil, time.Since(start))
		if err != nil {
			m.lg.Warn("sending snapshot failed", "to", fmt.Sprintf("%x", to), "index", index, "error", err)
			// Raft asks again at the next heartbeat: not at once, or a
			// member that keeps refusing gets the state ten times a second.
			select {
			case <-time.After(snapshotRetryDelay):
			case <-m.stopping:
			}
		} else {
			m.metrics.sentBytes(to, bytes)
			m.lg.Info("sent snapshot", "to", fmt.Sprintf("%x", to), "index", index, "term", term,
				"keys", keys, "bytes", bytes, "took", time.Since(start).Round(time.Millisecond))
		}
		m.node.ReportSnapshot(to, err == nil)
	}()
}

// receiveSnapshot is the transport's handler for a snapshot the leader
// streams.
func (m *Member) receiveSnapshot(msg *raftpb.Message, next func() ([]byte, []byte, error)) error {
	start := time.Now()
	var bytes int
	err := m.node.ReceiveSnapshot(msg, func() ([]byte, []byte, error) {
		k, v, err := next()
		bytes += len(k) + len(v)
		return k, v, err
	})
	m.metrics.snapshotReceived(msg.GetFrom(), err == nil, time.Since(start))
	if err == nil {
		m.metrics.receivedBytes(msg.GetFrom(), bytes)
	}
	return err
}

// installSnapshot replaces this member's state with a snapshot Raft
// accepted, on the apply loop (every earlier entry is applied): storage
// first, in one atomic step, then everything that caches state reloads.
// Watchers catch up from the new state's events.
func (m *Member) installSnapshot(inst *raftnode.SnapshotInstall) error {
	err := m.kv.Restore(inst.Install)
	if err == nil {
		err = m.reloadState(inst.Metadata.GetIndex())
	}
	inst.Done(err)
	if err != nil {
		return fmt.Errorf("server: install snapshot: %w", err)
	}
	return nil
}

// leaseExtend is how long a new primary lessor adds to every lease: one
// election timeout, as etcd.
func (m *Member) leaseExtend() time.Duration {
	return time.Duration(m.cfg.ElectionTicks) * m.cfg.TickInterval
}

func (m *Member) reloadState(index uint64) error {
	if err := m.lessor.Restore(m.leaseExtend()); err != nil {
		return err
	}
	if err := m.cluster.Reload(m.eng.DB); err != nil {
		return err
	}
	if err := m.auth.Reload(m.eng.DB); err != nil {
		return err
	}
	if err := m.alarms.Reload(m.eng.DB); err != nil {
		return err
	}
	m.applier.Restore(index)
	m.hub.Restore(m.kv.Rev())
	// Peers as the new member list has them.
	known := map[uint64]bool{}
	for _, mem := range m.cluster.List() {
		known[mem.ID] = true
		if mem.ID == m.cluster.LocalID {
			continue
		}
		if err := m.transport.SetPeer(mem.ID, mem.PeerURLs); err != nil {
			m.lg.Warn("cannot reach peer", "member", fmt.Sprintf("%x", mem.ID), "error", err)
		}
	}
	for _, id := range m.transport.Peers() {
		if !known[id] {
			m.transport.RemovePeer(id)
		}
	}
	m.applied.Set(index)
	m.node.Applied(index)
	if m.cluster.IsRemoved(m.cluster.LocalID) {
		m.fail(ErrMemberRemoved)
	}
	return nil
}
