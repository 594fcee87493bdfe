package server

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"

	"github.com/cairn-kv/cairn/membership"
)

// testCluster is n members in this process, each with its peer service on
// a real socket.
type testCluster struct {
	cfgs    []Config
	members []*Member
	peers   []*grpc.Server
	lis     []net.Listener
}

func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	c := &testCluster{cfgs: make([]Config, n), members: make([]*Member, n), peers: make([]*grpc.Server, n), lis: make([]net.Listener, n)}
	initial := map[string][]string{}
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.lis[i] = l
		initial[fmt.Sprintf("m%d", i)] = []string{"http://" + l.Addr().String()}
	}
	for i := range n {
		cfg := testConfig(t, t.TempDir(), initial[fmt.Sprintf("m%d", i)][0])
		cfg.Name, cfg.InitialCluster = fmt.Sprintf("m%d", i), initial
		cfg.TickInterval = 20 * time.Millisecond
		c.cfgs[i] = cfg
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); c.start(t, i) }()
	}
	wg.Wait()
	for i := range n {
		if c.members[i] == nil {
			t.FailNow()
		}
	}
	t.Cleanup(func() {
		for i := range c.members {
			c.stop(i)
		}
	})
	return c
}

// start runs member i (again) on its directory and peer address.
func (c *testCluster) start(t *testing.T, i int) {
	m, err := New(c.cfgs[i])
	if err != nil {
		t.Error(err)
		return
	}
	if c.lis[i] == nil {
		l, err := net.Listen("tcp", c.cfgs[i].PeerURLs[0][len("http://"):])
		if err != nil {
			m.Close()
			t.Error(err)
			return
		}
		c.lis[i] = l
	}
	s := grpc.NewServer(m.PeerServerOptions()...)
	m.RegisterPeerService(s)
	go s.Serve(c.lis[i])
	c.members[i], c.peers[i] = m, s
	select {
	case <-m.Published():
	case <-time.After(30 * time.Second):
		t.Errorf("member %d did not publish itself", i)
	}
}

func (c *testCluster) stop(i int) {
	if c.members[i] == nil {
		return
	}
	c.peers[i].Stop() // closes the listener
	c.members[i].Close()
	c.members[i], c.peers[i], c.lis[i] = nil, nil, nil
}

func (c *testCluster) leader() *Member {
	for _, m := range c.members {
		if m != nil && m.Leader() == m.ID() {
			return m
		}
	}
	return nil
}

// Membership changes proposed from every member, on views that may be
// stale, while leadership moves and a member restarts: Raft's
// configuration and the membership store agree on every member at the
// end, and the three voters still make a quorum.
func TestConfChangesRacingLeaderChanges(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var voters []uint64
	for _, m := range c.members {
		voters = append(voters, m.ID())
	}
	for round := range 5 {
		proposer := c.members[round%3]
		learnerURL := freeURL(t)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // leadership moves while the changes are made
			defer wg.Done()
			mctx, mcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
			defer mcancel()
			if l := c.leader(); l != nil {
				_ = l.MoveLeader(mctx, voters[(round+1)%3])
			}
		}()
		rctx, rcancel := context.WithTimeout(ctx, 1500*time.Millisecond) // a change lost to a leader change times out
		learner, _, err := proposer.MemberAdd(rctx, []string{learnerURL}, true)
		var rmErr error
		if err == nil {
			_, rmErr = c.members[(round+1)%3].MemberRemove(rctx, learner.ID)
			// A lagging member's promote of the learner just removed.
			_, _ = c.members[(round+2)%3].proposeConfChange(rctx, membership.Change{Op: "promote", Member: membership.Member{ID: learner.ID}}, raftpb.ConfChangeAddNode)
		}
		rcancel()
		wg.Wait()
		t.Logf("%s round %d: add %v, remove %v", time.Now().Format("05.000"), round, err, rmErr)
		removeOthers(t, ctx, c, voters)
		if round == 2 { // restart in the middle
			c.stop(2)
			c.start(t, 2)
			if t.Failed() {
				t.FailNow()
			}
		}
	}
	resp, err := c.members[0].Put(ctx, &pb.PutRequest{Key: []byte("end"), Value: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range c.members {
		if _, err := m.Range(ctx, &pb.RangeRequest{Key: []byte("end")}); err != nil { // linearizable: applied past the put
			t.Fatalf("member %d: %v", i, err)
		}
		if m.Rev() < resp.Header.Revision {
			t.Fatalf("member %d at revision %d, want %d", i, m.Rev(), resp.Header.Revision)
		}
		checkConfAgrees(t, m, sortedIDs(voters))
	}
}

func sortedIDs(ids []uint64) []uint64 {
	out := append([]uint64(nil), ids...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// removeOthers removes the members a round left besides the cluster's
// own: a learner whose removal lost the race with a leader change, or one
// the "stale" promote found still there and made a voter (both legitimate
// outcomes: the point is that Raft and the membership agree on them).
func removeOthers(t *testing.T, ctx context.Context, c *testCluster, own []uint64) {
	t.Helper()
	for {
		m := c.leader() // the freshest view
		if m == nil {
			m = c.members[0]
		}
		var others []uint64
		for _, mem := range m.Members() {
			if !slices.Contains(own, mem.ID) {
				others = append(others, mem.ID)
			}
		}
		if len(others) == 0 {
			return
		}
		for _, id := range others {
			if _, err := m.MemberRemove(ctx, id); err != nil {
				select { // an election or a stale view: retry shortly
				case <-ctx.Done():
					t.Fatalf("remove member %x: %v", id, err)
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	}
}
