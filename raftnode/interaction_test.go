package raftnode

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/pkg/clock"
	"github.com/cairn-kv/cairn/storage"
)

// TestInteraction runs the transcripts in testdata/interaction, in the
// style of etcd-io/raft's interaction tests: a few Nodes, each with its
// own storage, its Raft loop and an apply loop, on a fake clock; messages
// are held in an outbox and delivered one at a time by the transcript, and
// after each step every node is left to settle (its loop idle, its apply
// loop done), so each node's trace is deterministic. The output is, for
// each node, the steps its Raft loop took for each Ready, in order:
//
//	install snapshot ...  a snapshot handed to apply and installed
//	persist ...           entries and hard state made durable
//	send ...              messages handed to the transport
//	apply [...]           committed entries handed to the apply loop
//	conf-change ...       the apply loop's verdict on a conf change, applied
//	advance               the Ready acknowledged
//
// Besides the transcript, every trace is checked for raft's ordering
// contract, whatever the transcript says: within a Ready, install comes
// before persist, persist before send and apply, apply before the verdicts,
// and the verdicts before Advance.
//
// Commands:
//
//	start voters=(1,2,3)          start one node per voter
//	campaign id=1                 have node 1 campaign
//	propose id=1 data=x           propose x on node 1
//	propose-conf id=1 add=4 | learner=4 | remove=3
//	transfer-leader id=1 to=2     have leader 1 hand leadership to 2
//	reject-conf [off]             apply loops reject (or accept) conf changes from now on
//	deliver [to=2] [drop]         deliver (or drop) the messages queued now, in order
//	stabilize                     deliver until no message is left
//	tick                          advance the clock by one tick
//	snapshot id=2 from=1 term=2 index=20 voters=(1,2,3)
//	                              stream an (empty) snapshot to node 2 as if from 1
//	status                        each node's Raft status and applied entries
//
// Run with -rewrite to regenerate the expected output.
func TestInteraction(t *testing.T) {
	datadriven.Walk(t, "testdata/interaction", func(t *testing.T, path string) {
		c := &icluster{t: t, clk: clock.NewFake(time.Unix(1_700_000_000, 0)), nodes: map[uint64]*inode{}}
		defer c.stop()
		datadriven.RunTest(t, path, c.run)
	})
}

const itick = 100 * time.Millisecond

// settleWait bounds each wait for a node to settle: generous, as the
// machine may be loaded.
const settleWait = 30 * time.Second

type icluster struct {
	t     *testing.T
	clk   *clock.Fake
	ids   []uint64
	nodes map[uint64]*inode

	rejectConf atomic.Bool

	mu     sync.Mutex
	outbox []*raftpb.Message
}

// inode is one node under test: its Raft loop's trace and an apply loop.
type inode struct {
	id  uint64
	n   *Node
	eng *storage.Engine

	mu      sync.Mutex
	events  []string
	applied []string
	// pending counts Applies handed over and not yet done by the apply loop.
	pending atomic.Int64
	done    chan struct{}
}

func (c *icluster) Send(msgs []*raftpb.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.outbox = append(c.outbox, proto.Clone(m).(*raftpb.Message))
	}
}

func (c *icluster) start(voters []uint64) {
	for _, id := range voters {
		eng, err := storage.Open(c.t.TempDir(), storage.Options{})
		if err != nil {
			c.t.Fatal(err)
		}
		in := &inode{id: id, eng: eng, done: make(chan struct{})}
		n, err := Start(Config{
			ID: id, Voters: voters, Engine: eng, TickInterval: itick, ElectionTicks: 10, SnapshotCount: 10000,
			NoSync: true, Transport: c, Clock: c.clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			trace: in.trace,
		})
		if err != nil {
			c.t.Fatal(err)
		}
		in.n = n
		go in.applyLoop(c)
		c.nodes[id] = in
		c.ids = append(c.ids, id)
	}
	slices.Sort(c.ids)
}

func (in *inode) trace(ev string) {
	if strings.HasPrefix(ev, "apply ") || strings.HasPrefix(ev, "install snapshot") {
		in.pending.Add(1) // before the Raft loop hands it over
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.events = append(in.events, ev)
}

// applyLoop plays the server's apply loop: it installs snapshots, decides
// conf changes (accepting them unless the cluster rejects them), records
// what it applied and reports the applied index.
func (in *inode) applyLoop(c *icluster) {
	defer close(in.done)
	for a := range in.n.Committed() {
		if a.Snapshot != nil {
			err := a.Snapshot.Install()
			a.Snapshot.Done(err)
			in.record(fmt.Sprintf("installed snapshot %d (error %v)", a.Snapshot.Metadata.GetIndex(), err))
			in.pending.Add(-1)
			continue
		}
		var last uint64
		for _, e := range a.Entries {
			last = e.GetIndex()
			if !isConfChange(e) {
				if len(e.Data) > 0 {
					in.record(fmt.Sprintf("%d/%d %q", e.GetIndex(), e.GetTerm(), e.Data))
				}
				continue
			}
			cc := &raftpb.ConfChangeV2{}
			if err := proto.Unmarshal(e.Data, cc); err != nil || c.rejectConf.Load() {
				in.record(fmt.Sprintf("%d/%d conf rejected", e.GetIndex(), e.GetTerm()))
				a.Decide(noopConfChange())
				continue
			}
			in.record(fmt.Sprintf("%d/%d conf accepted: %s", e.GetIndex(), e.GetTerm(), describeConfChange(cc)))
			a.Decide(cc)
		}
		if last > 0 {
			in.n.Applied(last)
		}
		in.pending.Add(-1)
	}
}

func (in *inode) record(line string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.applied = append(in.applied, line)
}

// settle returns once the node's Raft loop has nothing left to do and its
// apply loop has done everything handed to it.
func (c *icluster) settle(in *inode) {
	deadline := time.Now().Add(settleWait)
	for {
		for in.pending.Load() != 0 {
			if time.Now().After(deadline) {
				c.t.Fatalf("node %d: the apply loop did not finish", in.id)
			}
			time.Sleep(time.Millisecond)
		}
		idle := make(chan bool, 1)
		f := func(rn *raft.RawNode) {
			n := in.n
			idle <- len(n.stepC) == 0 && len(n.proposeC) == 0 && len(n.appliedC) == 0 && len(n.readIndexC) == 0 &&
				len(n.snapStatC) == 0 && len(n.unreachC) == 0 && len(n.ticker.C()) == 0 && !rn.HasReady()
		}
		select {
		case in.n.inspectC <- f:
		case <-time.After(time.Until(deadline)):
			c.t.Fatalf("node %d: the Raft loop did not settle", in.id)
		}
		if <-idle && in.pending.Load() == 0 {
			return
		}
	}
}

func (c *icluster) settleAll() {
	for _, id := range c.ids {
		c.settle(c.nodes[id])
	}
}

func (c *icluster) stop() {
	for _, id := range c.ids {
		in := c.nodes[id]
		in.n.Stop()
		<-in.done
		in.eng.Close()
	}
}

// output prints and clears each node's trace, after checking its order.
func (c *icluster) output() string {
	var b strings.Builder
	for _, id := range c.ids {
		in := c.nodes[id]
		in.mu.Lock()
		evs := in.events
		in.events = nil
		in.mu.Unlock()
		if err := checkReadyOrder(evs); err != nil {
			c.t.Errorf("node %d: %v\n%s", id, err, strings.Join(evs, "\n"))
		}
		for _, ev := range evs {
			fmt.Fprintf(&b, "%x: %s\n", id, ev)
		}
	}
	if b.Len() == 0 {
		return "ok"
	}
	return b.String()
}

// checkReadyOrder checks raft's contract on one node's trace: within each
// Ready (up to its "advance"), steps come in the order install snapshot,
// persist, send, apply, conf-change, advance (each optional; send and
// conf-change may repeat).
func checkReadyOrder(evs []string) error {
	rank := map[string]int{"install": 0, "persist": 1, "send": 2, "apply": 3, "conf-change": 4, "advance": 5}
	last := -1
	for i, ev := range evs {
		kind, _, _ := strings.Cut(ev, " ")
		r, ok := rank[kind]
		if !ok {
			return fmt.Errorf("step %d: unknown %q", i, ev)
		}
		if r < last || (r == last && kind != "send" && kind != "conf-change") {
			return fmt.Errorf("step %d: %q out of order in its Ready", i, ev)
		}
		last = r
		if kind == "advance" {
			last = -1
		}
	}
	if last != -1 {
		return fmt.Errorf("a Ready was not advanced")
	}
	return nil
}

func (c *icluster) node(d *datadriven.TestData, key string) *inode {
	var id uint64
	d.ScanArgs(c.t, key, &id)
	in, ok := c.nodes[id]
	if !ok {
		c.t.Fatalf("%s: no node %d", d.Pos, id)
	}
	return in
}

func ids(t *testing.T, d *datadriven.TestData, key string) []uint64 {
	arg, ok := d.Arg(key)
	if !ok {
		t.Fatalf("%s: missing %s", d.Pos, key)
	}
	var out []uint64
	for _, v := range arg.Vals {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s: %s: %v", d.Pos, key, err)
		}
		out = append(out, id)
	}
	return out
}

func (c *icluster) run(t *testing.T, d *datadriven.TestData) string {
	c.t = t
	ctx, cancel := context.WithTimeout(context.Background(), settleWait)
	defer cancel()
	switch d.Cmd {
	case "start":
		c.start(ids(t, d, "voters"))
		c.settleAll()
	case "campaign":
		in := c.node(d, "id")
		in.n.inspectC <- func(rn *raft.RawNode) { _ = rn.Campaign() }
		c.settle(in)
	case "propose":
		in := c.node(d, "id")
		var data string
		d.ScanArgs(t, "data", &data)
		if err := in.n.Propose(ctx, []byte(data)); err != nil {
			return fmt.Sprintf("error: %v", err)
		}
		c.settle(in)
	case "propose-conf":
		in := c.node(d, "id")
		cc := &raftpb.ConfChangeV2{}
		for _, a := range d.CmdArgs {
			typ, ok := map[string]raftpb.ConfChangeType{"add": raftpb.ConfChangeAddNode, "learner": raftpb.ConfChangeAddLearnerNode, "remove": raftpb.ConfChangeRemoveNode}[a.Key]
			if !ok {
				continue
			}
			id, err := strconv.ParseUint(a.Vals[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			cc.Changes = append(cc.Changes, &raftpb.ConfChangeSingle{Type: typ.Enum(), NodeId: proto.Uint64(id)})
		}
		if err := in.n.ProposeConfChange(ctx, cc); err != nil {
			return fmt.Sprintf("error: %v", err)
		}
		c.settle(in)
	case "transfer-leader":
		in := c.node(d, "id")
		var to uint64
		d.ScanArgs(t, "to", &to)
		if err := in.n.TransferLeader(ctx, to); err != nil {
			return fmt.Sprintf("error: %v", err)
		}
		c.settle(in)
	case "reject-conf":
		c.rejectConf.Store(!d.HasArg("off"))
		return "ok"
	case "deliver":
		c.deliver(d, false)
	case "stabilize":
		for c.deliver(d, true) > 0 {
		}
	case "tick":
		c.clk.Advance(itick)
		c.settleAll()
	case "snapshot":
		c.snapshot(d)
	case "status":
		return c.status()
	default:
		t.Fatalf("%s: unknown command %s", d.Pos, d.Cmd)
	}
	return c.output()
}

// deliver delivers the messages queued now (to=id: only those to id;
// drop: drop them instead), each to its node, settling it after each, and
// returns how many it delivered.
func (c *icluster) deliver(d *datadriven.TestData, all bool) int {
	c.mu.Lock()
	msgs := c.outbox
	c.outbox = nil
	c.mu.Unlock()
	var to uint64
	if !all {
		d.MaybeScanArgs(c.t, "to", &to)
	}
	var kept []*raftpb.Message
	n := 0
	for _, m := range msgs {
		if to != 0 && m.GetTo() != to {
			kept = append(kept, m)
			continue
		}
		in, ok := c.nodes[m.GetTo()]
		if !ok || (!all && d.HasArg("drop")) {
			continue
		}
		in.n.Step(m)
		c.settle(in)
		n++
	}
	c.mu.Lock()
	c.outbox = append(kept, c.outbox...)
	c.mu.Unlock()
	return n
}

// snapshot streams an empty state to node id in a MsgSnap from node from,
// as the snapshot stream would.
func (c *icluster) snapshot(d *datadriven.TestData) {
	in := c.node(d, "id")
	var from, term, index uint64
	d.ScanArgs(c.t, "from", &from)
	d.ScanArgs(c.t, "term", &term)
	d.ScanArgs(c.t, "index", &index)
	m := &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(from), To: proto.Uint64(in.id), Term: proto.Uint64(term),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: &raftpb.ConfState{Voters: ids(c.t, d, "voters")},
		}},
	}
	if err := in.n.ReceiveSnapshot(m, func() ([]byte, []byte, error) { return nil, nil, io.EOF }); err != nil {
		c.t.Fatal(err)
	}
	c.settle(in)
}

func (c *icluster) status() string {
	var b strings.Builder
	for _, id := range c.ids {
		in := c.nodes[id]
		st := in.n.Status()
		var cs string
		done := make(chan struct{})
		in.n.inspectC <- func(rn *raft.RawNode) {
			s := rn.Status()
			cs = describeConfState(&raftpb.ConfState{Voters: sortedIDs(s.Config.Voters.IDs()), Learners: sortedIDs(s.Config.Learners)})
			close(done)
		}
		<-done
		fmt.Fprintf(&b, "%x: lead=%x term=%d commit=%d %s\n", id, st.Lead, st.Term, st.Commit, cs)
		in.mu.Lock()
		for _, a := range in.applied {
			fmt.Fprintf(&b, "  applied %s\n", a)
		}
		in.mu.Unlock()
	}
	return b.String()
}

func sortedIDs(m map[uint64]struct{}) []uint64 {
	out := make([]uint64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// The order check has teeth: each violation of raft's contract is caught.
func TestCheckReadyOrder(t *testing.T) {
	for _, tc := range []struct {
		evs  []string
		fail bool
	}{
		{[]string{"persist hs", "send 1->2", "send 1->3", "apply [1/1]", "conf-change 1", "conf-change 2", "advance"}, false},
		{[]string{"install snapshot 5/1", "persist hs", "send 1->2", "advance", "send 1->2", "advance"}, false},
		{[]string{"send 1->2", "persist hs", "advance"}, true},            // sent before persisted
		{[]string{"apply [1/1]", "persist entries", "advance"}, true},     // applied before persisted
		{[]string{"persist hs", "install snapshot 5/1", "advance"}, true}, // snapshot after entries
		{[]string{"apply [1/1]", "advance", "conf-change 1"}, true},       // verdict after Advance
		{[]string{"persist hs", "persist hs", "advance"}, true},           // two persists in one Ready
		{[]string{"persist hs"}, true},                                    // never advanced
	} {
		if err := checkReadyOrder(tc.evs); (err != nil) != tc.fail {
			t.Errorf("checkReadyOrder(%q) = %v, want failure %v", tc.evs, err, tc.fail)
		}
	}
}
