package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/membership"
)

// freeURL is an http URL on a free 127.0.0.1 port.
func freeURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func testConfig(t *testing.T, dir, peerURL string) Config {
	return Config{
		Name: "m1", Dir: dir, PeerURLs: []string{peerURL}, ClientURLs: []string{"http://127.0.0.1:2379"},
		InitialCluster: map[string][]string{"m1": {peerURL}}, InitialClusterToken: "t",
		SnapshotCount: 10000, MaxRequestBytes: 1 << 20, QuotaBackendBytes: 1 << 30, TickInterval: 10 * time.Millisecond, ElectionTicks: 10,
		NoSync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// startMember starts a single member and waits until it serves writes.
func startMember(t *testing.T, cfg Config) *Member {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	select {
	case <-m.Published():
	case <-deadline:
		m.Close()
		t.Fatal("member did not publish itself")
	}
	tick := time.NewTicker(10 * time.Millisecond) // LeaderChanged is the leader loop's
	defer tick.Stop()
	for m.node.Status().Lead == 0 {
		select {
		case <-tick.C:
		case <-deadline:
			m.Close()
			t.Fatal("no leader")
		}
	}
	return m
}

func put(t *testing.T, m *Member, k, v string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.Put(ctx, &pb.PutRequest{Key: []byte(k), Value: []byte(v)}); err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
}

// raftConf is Raft's configuration as of the applied index, as voters and
// learners.
func raftConf(m *Member) (voters, learners []uint64) {
	cs := m.node.ConfStateAt(m.applied.Get())
	voters, learners = slices.Clone(cs.Voters), slices.Clone(cs.Learners)
	slices.Sort(voters)
	slices.Sort(learners)
	return voters, learners
}

// memberConf is the membership store's view, as voters and learners.
func memberConf(m *Member) (voters, learners []uint64) {
	for _, mem := range m.cluster.List() {
		if mem.IsLearner {
			learners = append(learners, mem.ID)
		} else {
			voters = append(voters, mem.ID)
		}
	}
	slices.Sort(voters)
	slices.Sort(learners)
	return voters, learners
}

func checkConfAgrees(t *testing.T, m *Member, wantVoters []uint64) {
	t.Helper()
	rv, rl := raftConf(m)
	mv, ml := memberConf(m)
	if fmt.Sprint(rv, rl) != fmt.Sprint(mv, ml) {
		t.Fatalf("Raft has voters %x learners %x, membership has voters %x learners %x", rv, rl, mv, ml)
	}
	if fmt.Sprint(rv) != fmt.Sprint(wantVoters) {
		t.Fatalf("voters %x, want %x", rv, wantVoters)
	}
}

// TestStaleConfChangeIsRejectedByApply is issue 14's example: "member
// remove X" on one member, then "member promote X" proposed on a view that
// still has X as a learner. Apply rejects the promote, Raft gets a no-op,
// and no ghost voter is left (with one, this single-member cluster would
// lose its quorum). A conf change entry that carries no membership change
// is a no-op too, and the verdicts survive a restart.
func TestStaleConfChangeIsRejectedByApply(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, freeURL(t))
	m := startMember(t, cfg)
	defer func() { m.Close() }()
	self := m.ID()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	learner, _, err := m.MemberAdd(ctx, []string{freeURL(t)}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.MemberRemove(ctx, learner.ID); err != nil {
		t.Fatal(err)
	}
	// The lagging member's proposal: validated on a view in which the
	// learner still exists.
	_, err = m.proposeConfChange(ctx, membership.Change{Op: "promote", Member: membership.Member{ID: learner.ID}}, raftpb.ConfChangeAddNode)
	if !errors.Is(err, membership.ErrMemberNotFound) {
		t.Fatalf("stale promote: got %v, want %v", err, membership.ErrMemberNotFound)
	}
	// A conf change with no membership change in it (Raft would add 0x99).
	before := m.applied.Get()
	if err := m.node.ProposeConfChange(ctx, &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{
		Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(0x99)}}}); err != nil {
		t.Fatal(err)
	}
	put(t, m, "after", "1") // a write commits: the quorum is still this member
	if m.applied.Get() <= before+1 {
		t.Fatalf("applied index %d, want past the conf change at %d", m.applied.Get(), before+1)
	}
	checkConfAgrees(t, m, []uint64{self})

	// Restart: Raft's configuration is replayed from the recorded verdicts.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = startMember(t, cfg)
	checkConfAgrees(t, m, []uint64{self})
	put(t, m, "after-restart", "1")
}
