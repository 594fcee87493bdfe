package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/mvcc"
)

// The corruption checks of etcd 3.7.4 (server/etcdserver/corrupt.go), with
// its log lines: members compare their HashKV at the same revision, and a
// mismatch either stops a restarting member from serving (the initial
// check) or raises the CORRUPT alarm through Raft, naming the member whose
// hash is off, which then refuses every write cluster-wide with
// "etcdserver: corrupt cluster". Peers' hashes are asked over the peer
// transport (etcd asks its peers' /members/hashkv).

// peerHashKV is one other member's answer to HashKV at a revision: resp, or
// err (mvcc.ErrCompacted and mvcc.ErrFutureRev as the peer reported them).
type peerHashKV struct {
	id   uint64
	urls []string
	resp *pb.HashKVResponse
	err  error
}

// peerHashKVs asks every other member, one after the other, for its HashKV
// at rev, each within the request timeout, as etcd's getPeerHashKVs.
func (m *Member) peerHashKVs(rev int64) []peerHashKV {
	var out []peerHashKV
	for _, mem := range m.cluster.List() {
		if mem.ID == m.cluster.LocalID {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.reqTimeout())
		go func() {
			select {
			case <-m.stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
		resp, err := m.transport.HashKV(ctx, mem.ID, &pb.HashKVRequest{Revision: rev})
		cancel()
		if err != nil {
			err = peerHashErr(err)
			m.lg.Warn("failed hash kv request", "local-member-id", idString(m.cluster.LocalID),
				"requested-revision", rev, "remote-peer-id", idString(mem.ID), "error", err.Error())
		}
		out = append(out, peerHashKV{id: mem.ID, urls: mem.PeerURLs, resp: resp, err: err})
	}
	return out
}

// peerHashErr turns a peer's refusal back into mvcc's error, by its text
// (etcd's HashByRev does the same with its peers' HTTP answers).
func peerHashErr(err error) error {
	msg := status.Convert(err).Message()
	for _, e := range []error{mvcc.ErrCompacted, mvcc.ErrFutureRev} {
		if strings.Contains(msg, e.Error()) {
			return e
		}
	}
	return err
}

func idString(id uint64) string { return fmt.Sprintf("%x", id) }

// InitialCorruptCheck is etcd's initial corruption check
// (--feature-gates=InitialCorruptCheck=true): a member restarting on its
// data dir compares its HashKV with every other member's at its own
// revision before it serves, and returns "<id> found data inconsistency
// with peers" if one that has the same compacted revision has another
// hash. A peer that is behind, compacted further or unreachable is logged
// and skipped. A new member, or one with the gate off, passes at once.
func (m *Member) InitialCorruptCheck() error {
	if !m.restarted || !featureEnabled(m.cfg.FeatureGates, InitialCorruptCheck) {
		return nil
	}
	local := idString(m.cluster.LocalID)
	m.lg.Info("starting initial corruption check", "local-member-id", local, "timeout", m.cfg.reqTimeout())
	h, err := m.kv.HashKV(context.Background(), 0)
	if err != nil {
		return fmt.Errorf("%s failed to fetch hash (%w)", local, err)
	}
	mismatch := 0
	for _, p := range m.peerHashKVs(h.Revision) {
		fields := []any{"local-member-id", local, "local-member-revision", h.Revision,
			"local-member-compact-revision", h.CompactRevision, "local-member-hash", h.Hash,
			"remote-peer-id", idString(p.id), "remote-peer-endpoints", p.urls}
		switch {
		case p.resp != nil:
			fields = append(fields, "remote-peer-revision", p.resp.Header.GetRevision(),
				"remote-peer-compact-revision", p.resp.CompactRevision, "remote-peer-hash", p.resp.Hash)
			if h.Hash != p.resp.Hash {
				if h.CompactRevision == p.resp.CompactRevision {
					m.lg.Warn("found different hash values from remote peer", fields...)
					mismatch++
				} else {
					m.lg.Warn("found different compact revision values from remote peer", fields...)
				}
			}
		case errors.Is(p.err, mvcc.ErrFutureRev):
			m.lg.Warn("cannot fetch hash from slow remote peer", append(fields, "error", p.err.Error())...)
		case errors.Is(p.err, mvcc.ErrCompacted):
			m.lg.Warn("cannot fetch hash from remote peer; local member is behind", append(fields, "error", p.err.Error())...)
		}
	}
	if mismatch > 0 {
		err := fmt.Errorf("%s found data inconsistency with peers", local)
		m.lg.Error("checkInitialHashKV failed", "error", err.Error())
		return err
	}
	m.lg.Info("initial corruption checking passed; no corruption", "local-member-id", local)
	return nil
}

// startCorruptChecks starts the leader's periodic checks that the
// configuration asks for: --corrupt-check-time and CompactHashCheck.
func (m *Member) startCorruptChecks() {
	if t := m.cfg.CorruptCheckTime; t > 0 {
		m.lg.Info("enabled corruption checking", "local-member-id", idString(m.cluster.LocalID), "interval", t)
		m.wg.Add(1)
		go m.leaderCheckLoop(t, "kv hash", func() {
			if err := m.periodicCorruptCheck(); err != nil {
				m.lg.Warn("failed to check hash KV", "error", err.Error())
			}
		})
	}
	if featureEnabled(m.cfg.FeatureGates, CompactHashCheck) {
		t := m.cfg.CompactHashCheckTime
		if t <= 0 {
			t = time.Minute
		}
		var c compactHashChecker
		m.wg.Add(1)
		go m.leaderCheckLoop(t, "compact hash", func() { c.check(m) })
	}
}

// leaderCheckLoop calls check every interval while this member leads,
// until the member stops.
func (m *Member) leaderCheckLoop(interval time.Duration, name string, check func()) {
	defer m.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-m.stopping:
			m.lg.Info("server has stopped; stopping " + name + "'s monitor")
			return
		case <-m.dead:
			return
		case <-tick.C:
		}
		if m.node.Status().Lead == m.cluster.LocalID {
			check()
		}
	}
}

// periodicCorruptCheck is etcd's PeriodicCheck, run by the leader: it
// hashes its state, asks the followers for theirs at the same revision,
// waits until it has applied everything committed and hashes again. It
// raises the CORRUPT alarm (once per check) for itself if its own two
// hashes at one revision differ, and for a follower that is ahead of it in
// revision or compaction, or that has the leader's first compacted
// revision and another hash. Followers that are behind (ErrFutureRev),
// compacted past the revision or unreachable are skipped.
func (m *Member) periodicCorruptCheck() error {
	ctx := context.Background()
	h, err := m.kv.HashKV(ctx, 0)
	if err != nil {
		return err
	}
	peers := m.peerHashKVs(h.Revision)
	rctx, cancel := context.WithTimeout(ctx, m.cfg.reqTimeout())
	err = m.linearizableReadNotify(rctx)
	cancel()
	if err != nil {
		return err
	}
	rev2 := m.kv.Rev()
	h2, err := m.kv.HashKV(ctx, 0)
	if err != nil {
		return err
	}
	rev2 = max(rev2, h2.Revision)
	alarmed := false
	mismatch := func(id uint64) {
		if !alarmed {
			alarmed = true
			m.triggerCorruptAlarm(id)
		}
	}
	if h2.Hash != h.Hash && h2.Revision == h.Revision && h.CompactRevision == h2.CompactRevision {
		m.lg.Warn("found hash mismatch", "revision-1", h.Revision, "compact-revision-1", h.CompactRevision, "hash-1", h.Hash,
			"revision-2", h2.Revision, "compact-revision-2", h2.CompactRevision, "hash-2", h2.Hash)
		mismatch(m.cluster.LocalID)
	}
	checked := 0
	for _, p := range peers {
		if p.resp == nil {
			continue
		}
		checked++
		if r := p.resp.Header.GetRevision(); r > rev2 {
			m.lg.Warn("revision from follower must be less than or equal to leader's",
				"leader-revision", rev2, "follower-revision", r, "follower-peer-id", idString(p.id))
			mismatch(p.id)
		}
		if p.resp.CompactRevision > h2.CompactRevision {
			m.lg.Warn("compact revision from follower must be less than or equal to leader's",
				"leader-compact-revision", h2.CompactRevision, "follower-compact-revision", p.resp.CompactRevision,
				"follower-peer-id", idString(p.id))
			mismatch(p.id)
		}
		if p.resp.CompactRevision == h.CompactRevision && p.resp.Hash != h.Hash {
			m.lg.Warn("same compact revision then hashes must match",
				"leader-compact-revision", h2.CompactRevision, "leader-hash", h.Hash,
				"follower-compact-revision", p.resp.CompactRevision, "follower-hash", p.resp.Hash,
				"follower-peer-id", idString(p.id))
			mismatch(p.id)
		}
	}
	m.lg.Info("finished peer corruption check", "number-of-peers-checked", checked)
	return nil
}

// compactHashChecker is etcd's CompactHashCheck, run by the leader: the
// members compact at the same revisions and each remembers the hash it
// computed at its last compactions (mvcc.Store.CompactionHashes), so the
// leader asks the others for the hash at each of its own, newest first,
// until one revision has been compared on every member. Members whose hash
// differs from a majority's get the CORRUPT alarm; without a majority the
// alarm names member 0 (the whole cluster). Owned by one goroutine.
type compactHashChecker struct {
	latestRevisionChecked int64
}

func (c *compactHashChecker) check(m *Member) {
	m.lg.Info("starting compact hash check", "local-member-id", idString(m.cluster.LocalID), "timeout", m.cfg.reqTimeout())
	hashes := m.kv.CompactionHashes()
	slices.SortFunc(hashes, func(a, b mvcc.KVHash) int { return cmp.Compare(b.Revision, a.Revision) })
	for i, h := range hashes {
		if h.Revision <= c.latestRevisionChecked {
			hashes = hashes[:i]
			break
		}
	}
	for i, h := range hashes {
		peers := m.peerHashKVs(h.Revision)
		if len(peers) == 0 {
			continue
		}
		if c.checkPeerHashes(m, h, peers) {
			m.lg.Info("finished compaction hash check", "number-of-hashes-checked", i+1)
			return
		}
	}
	m.lg.Info("finished compaction hash check", "number-of-hashes-checked", len(hashes))
}

// checkPeerHashes compares the peers' hashes with the leader's at one
// compaction, raising alarms on a mismatch. It reports whether the check
// is over (every member compared, or alarms raised); false means a member
// was skipped and the next older compaction should be tried.
func (c *compactHashChecker) checkPeerHashes(m *Member, leader mvcc.KVHash, peers []peerHashKV) bool {
	leaderID := idString(m.cluster.LocalID)
	byHash := map[uint32][]uint64{leader.Hash: {m.cluster.LocalID}}
	checked := 0
	for _, p := range peers {
		reason := ""
		switch {
		case p.resp == nil:
			reason = "no response"
		case p.resp.CompactRevision != leader.CompactRevision:
			reason = fmt.Sprintf("the peer's CompactRevision %d doesn't match leader's CompactRevision %d",
				p.resp.CompactRevision, leader.CompactRevision)
		}
		if reason != "" {
			m.lg.Warn("Skipped peer's hash", "number-of-peers", len(peers), "leader-id", leaderID,
				"peer-id", idString(p.id), "reason", reason)
			continue
		}
		checked++
		byHash[p.resp.Hash] = append(byHash[p.resp.Hash], p.id)
	}
	if len(byHash) == 1 {
		if checked == len(peers) {
			m.lg.Info("successfully checked hash on whole cluster", "number-of-peers-checked", checked,
				"revision", leader.Revision, "compactRevision", leader.CompactRevision)
			c.latestRevisionChecked = max(c.latestRevisionChecked, leader.Revision)
			return true
		}
		m.lg.Warn("skipped revision in compaction hash check; was not able to check all peers",
			"number-of-peers-checked", checked, "number-of-peers", len(peers),
			"revision", leader.Revision, "compactRevision", leader.CompactRevision)
		return false
	}
	quorum := (len(peers)+1)/2 + 1
	quorumExist := false
	for h, ids := range byHash {
		if len(ids) >= quorum {
			quorumExist = true
			delete(byHash, h)
			break
		}
	}
	if !quorumExist {
		m.lg.Error("Detected compaction hash mismatch but cannot identify the corrupted members, so intentionally set the memberID as 0",
			"leader-id", leaderID, "leader-revision", leader.Revision,
			"leader-compact-revision", leader.CompactRevision, "leader-hash", leader.Hash)
		m.triggerCorruptAlarm(0)
	}
	for h, ids := range byHash {
		names := make([]string, len(ids))
		for i, id := range ids {
			if quorumExist {
				m.triggerCorruptAlarm(id)
			}
			names[i] = idString(id)
		}
		m.lg.Error("Detected compaction hash mismatch", "leader-id", leaderID, "leader-revision", leader.Revision,
			"leader-compact-revision", leader.CompactRevision, "leader-hash", leader.Hash,
			"peer-hash", h, "peer-ids", strings.Join(names, ","), "quorum-exist", quorumExist)
	}
	return true
}

// triggerCorruptAlarm proposes the CORRUPT alarm for member id (0: the
// whole cluster) in the background, as etcd's triggerCorruptAlarm.
func (m *Member) triggerCorruptAlarm(id uint64) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.reqTimeout())
		defer cancel()
		go func() {
			select {
			case <-m.stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, err := m.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
			Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_CORRUPT,
		}})
		if err != nil {
			m.lg.Warn("cannot raise the CORRUPT alarm", "member-id", idString(id), "error", err.Error())
		}
	}()
}

// reportCorrupt is called once when Pebble has found this member's own
// storage corrupt at run time (a block failing its checksum), as the member
// stops: its Raft node has stopped, so it asks the other members, one
// after the other, to raise the CORRUPT alarm naming it, until one has it
// committed (each within the request timeout). The cluster then refuses
// writes as after a failed hash check, and an operator sees which member
// to replace. Beyond etcd, whose member panics on a bbolt corruption and
// leaves the others serving writes.
func (m *Member) reportCorrupt() {
	for _, mem := range m.cluster.List() {
		if mem.ID == m.cluster.LocalID {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.reqTimeout())
		err := m.transport.ReportCorrupt(ctx, mem.ID)
		cancel()
		if err == nil {
			m.lg.Error("storage corrupt; raised the CORRUPT alarm through a peer", "local-member-id", idString(m.cluster.LocalID),
				"peer-id", idString(mem.ID))
			return
		}
		m.lg.Warn("cannot raise the CORRUPT alarm through a peer", "peer-id", idString(mem.ID), "error", err.Error())
	}
}

// corruptReported raises the CORRUPT alarm for member from, which reported
// its storage corrupt (see reportCorrupt), and waits until it is applied.
func (m *Member) corruptReported(ctx context.Context, from uint64) error {
	m.lg.Error("a member reported its storage corrupt; raising the CORRUPT alarm", "member-id", idString(from))
	_, err := m.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: from, Alarm: pb.AlarmType_CORRUPT,
	}})
	return err
}
