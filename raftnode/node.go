package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairn-kv/cairn/storage"
)

// ErrStopped is returned for requests made after Stop.
var ErrStopped = errors.New("raftnode: stopped")

// catchUpEntries is how many applied entries the log keeps behind a log
// compaction, so a lagging member can catch up without a snapshot (as
// etcd's --snapshot-catchup-entries).
const catchUpEntries = 5000

// Config configures a Node.
type Config struct {
	// ID is this member's Raft ID; Voters the initial voters for a fresh log.
	ID     uint64
	Voters []uint64
	// Engine stores the log. Applied is the state machine's applied index.
	Engine  *storage.Engine
	Applied uint64
	// TickInterval is the heartbeat interval; ElectionTicks the election
	// timeout in ticks (etcd --election-timeout / --heartbeat-interval).
	TickInterval  time.Duration
	ElectionTicks int
	// SnapshotCount is the number of applied entries between log compactions.
	SnapshotCount uint64
	// NoSync skips fsync (etcd --unsafe-no-fsync).
	NoSync bool
	// Transport sends messages to peers; nil for a single member.
	Transport Transport
	Logger    *slog.Logger
}

// Transport is how the loop reaches peers. Send must not block.
type Transport interface {
	Send([]raftpb.Message)
}

// ReadState is a read index answered by Raft: once the applied index
// reaches Index, a read sees every write committed before the request.
type ReadState struct {
	Index uint64
	Ctx   []byte
}

// Status is a snapshot of this node's Raft state.
type Status struct {
	ID, Lead, Term, Commit, Applied uint64
}

type proposal struct {
	data []byte
	cc   *raftpb.ConfChangeV2 // a conf change instead of data
	done chan error
}

// Node runs the Raft loop.
type Node struct {
	cfg Config
	lg  *slog.Logger
	rn  *raft.RawNode
	ls  *logStore

	proposeC   chan proposal
	readIndexC chan []byte
	appliedC   chan uint64
	committedC chan []raftpb.Entry
	readStateC chan ReadState
	leaderC    chan struct{}
	stepC      chan raftpb.Message
	inspectC   chan func(*raft.RawNode)
	unreachC   chan uint64

	// mu guards the status the loop publishes for other goroutines.
	mu     sync.Mutex
	status Status

	confState raftpb.ConfState // owned by the loop

	stop chan struct{}
	done chan struct{}
	err  error
}

// Start restores (or bootstraps) the log and starts the Raft loop.
func Start(cfg Config) (*Node, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	ls, fresh, err := loadLogStore(cfg.Engine, cfg.NoSync)
	if err != nil {
		return nil, err
	}
	if fresh {
		if err := ls.bootstrap(cfg.Voters); err != nil {
			return nil, fmt.Errorf("raftnode: bootstrap: %w", err)
		}
	}
	snap, _ := ls.ms.Snapshot()
	applied := cfg.Applied
	if applied < snap.Metadata.Index {
		applied = snap.Metadata.Index
	}
	// The state machine never applies past the durable commit index (the
	// hard state is written before entries are handed to apply), but if a
	// crash ever left the stored commit behind, what was applied was
	// committed: raise it rather than let raft refuse to start.
	if hs, _, _ := ls.ms.InitialState(); applied > hs.Commit {
		if last, _ := ls.ms.LastIndex(); applied <= last {
			hs.Commit = applied
			if err := ls.ms.SetHardState(hs); err != nil {
				return nil, err
			}
		}
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             1,
		Storage:                   ls.ms,
		Applied:                   applied,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           512,
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    raftLogger{lg},
	})
	if err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	n := &Node{
		cfg: cfg, lg: lg, rn: rn, ls: ls,
		proposeC:   make(chan proposal, 1024),
		readIndexC: make(chan []byte, 64),
		appliedC:   make(chan uint64, 64),
		committedC: make(chan []raftpb.Entry, 256),
		readStateC: make(chan ReadState, 64),
		leaderC:    make(chan struct{}, 1),
		stepC:      make(chan raftpb.Message, 4096),
		inspectC:   make(chan func(*raft.RawNode)),
		unreachC:   make(chan uint64, 64),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	n.status = Status{ID: cfg.ID, Applied: applied}
	// A single voter need not wait an election timeout to lead.
	if len(cfg.Voters) == 1 && cfg.Voters[0] == cfg.ID {
		_ = rn.Campaign()
	}
	go n.run(applied)
	return n, nil
}

// Committed delivers committed entries, in log order, for the apply loop.
func (n *Node) Committed() <-chan []raftpb.Entry { return n.committedC }

// LeaderChanged receives a value after the leader or this node's role
// changed (coalesced: read Status for the news).
func (n *Node) LeaderChanged() <-chan struct{} { return n.leaderC }

// ReadStates delivers answers to ReadIndex requests.
func (n *Node) ReadStates() <-chan ReadState { return n.readStateC }

// Done is closed when the loop has stopped; Err then tells why.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is the error that stopped the loop, nil after Stop.
func (n *Node) Err() error {
	<-n.done
	return n.err
}

// Propose hands data to Raft and waits until the leader accepted it into
// its log (not until it is committed). It fails if there is no leader.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	return n.submit(ctx, proposal{data: data, done: make(chan error, 1)})
}

// ProposeConfChange proposes a membership change, as Propose does data.
func (n *Node) ProposeConfChange(ctx context.Context, cc raftpb.ConfChangeV2) error {
	return n.submit(ctx, proposal{cc: &cc, done: make(chan error, 1)})
}

// Progress reports, on the leader, each member's match index and the
// leader's last index (ok false on a follower).
func (n *Node) Progress(ctx context.Context) (match map[uint64]uint64, last uint64, ok bool) {
	type answer struct {
		match map[uint64]uint64
		last  uint64
		ok    bool
	}
	ch := make(chan answer, 1)
	f := func(rn *raft.RawNode) {
		st := rn.Status()
		if st.RaftState != raft.StateLeader {
			ch <- answer{}
			return
		}
		m := map[uint64]uint64{}
		for id, pr := range st.Progress {
			m[id] = pr.Match
		}
		ch <- answer{m, st.Progress[st.ID].Match, true}
	}
	select {
	case n.inspectC <- f:
	case <-ctx.Done():
		return nil, 0, false
	case <-n.done:
		return nil, 0, false
	}
	select {
	case a := <-ch:
		return a.match, a.last, a.ok
	case <-ctx.Done():
		return nil, 0, false
	case <-n.done:
		return nil, 0, false
	}
}

// TransferLeader asks Raft to hand leadership to transferee.
func (n *Node) TransferLeader(ctx context.Context, transferee uint64) error {
	select {
	case n.inspectC <- func(rn *raft.RawNode) { rn.TransferLeader(transferee) }:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}

func (n *Node) submit(ctx context.Context, p proposal) error {
	select {
	case n.proposeC <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}

// Step hands a message from a peer to Raft. It never blocks: when the loop
// is behind, the message is dropped and Raft retransmits.
func (n *Node) Step(m raftpb.Message) {
	select {
	case n.stepC <- m:
	default:
	}
}

// ReportUnreachable tells Raft that a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) {
	select {
	case n.unreachC <- id:
	default:
	}
}

// ReadIndex asks Raft for a read index; the answer, carrying rctx, comes on
// ReadStates.
func (n *Node) ReadIndex(ctx context.Context, rctx []byte) error {
	select {
	case n.readIndexC <- rctx:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}

// Applied tells the loop the state machine's durable applied index, which
// lets it compact the log.
func (n *Node) Applied(index uint64) {
	select {
	case n.appliedC <- index:
	default: // a later report will do
	}
}

// Status returns the last published Raft status.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

// Stop ends the loop and waits for it.
func (n *Node) Stop() {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.done
}

func (n *Node) run(applied uint64) {
	defer close(n.done)
	defer close(n.committedC)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	snap, _ := n.ls.ms.Snapshot()
	lastCompact := snap.Metadata.Index // the log's compaction index
	compactedAt := lastCompact         // the applied index at the last compaction
	n.confState = snap.Metadata.ConfState
	for {
		select {
		case <-n.stop:
			return
		case <-ticker.C:
			n.rn.Tick()
		case p := <-n.proposeC:
			n.propose(p)
			for more := true; more; {
				select {
				case p := <-n.proposeC:
					n.propose(p)
				default:
					more = false
				}
			}
		case rctx := <-n.readIndexC:
			n.rn.ReadIndex(rctx)
		case m := <-n.stepC:
			n.step(m)
			for more := true; more; {
				select {
				case m := <-n.stepC:
					n.step(m)
				default:
					more = false
				}
			}
		case id := <-n.unreachC:
			n.rn.ReportUnreachable(id)
		case f := <-n.inspectC:
			f(n.rn)
		case idx := <-n.appliedC:
			if idx > applied {
				applied = idx
			}
			// Every SnapshotCount applied entries, drop the log up to
			// catchUpEntries behind the applied index (or less, to keep
			// what a follower still needs).
			if applied-compactedAt >= n.cfg.SnapshotCount && applied > catchUpEntries {
				compactedAt = applied
				if idx := n.compactIndex(applied - catchUpEntries); idx > lastCompact {
					if err := n.ls.compact(idx, n.confState); err != nil {
						n.fail(fmt.Errorf("raftnode: compact log: %w", err))
						return
					}
					lastCompact = idx
				}
			}
		}
		for n.rn.HasReady() {
			if err := n.handleReady(); err != nil {
				if !errors.Is(err, ErrStopped) {
					n.fail(err)
				}
				return
			}
		}
	}
}

// handleReady follows raft's contract for one Ready: persist entries and
// hard state (synced), send messages, hand committed entries to the apply
// loop, then Advance.
func (n *Node) handleReady() error {
	rd := n.rn.Ready()
	if err := n.ls.save(&rd); err != nil {
		return fmt.Errorf("raftnode: persist: %w", err)
	}
	if n.cfg.Transport != nil && len(rd.Messages) > 0 {
		n.send(rd.Messages)
	}
	for _, rs := range rd.ReadStates {
		select {
		case n.readStateC <- ReadState{Index: rs.Index, Ctx: rs.RequestCtx}:
		case <-n.stop:
			return ErrStopped
		}
	}
	if len(rd.CommittedEntries) > 0 {
		for _, e := range rd.CommittedEntries {
			if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
				n.confState = n.applyConfChange(e)
			}
		}
		select {
		case n.committedC <- rd.CommittedEntries:
		case <-n.stop:
			return ErrStopped
		}
	}
	n.publish(rd)
	n.rn.Advance(rd)
	return nil
}

func (n *Node) step(m raftpb.Message) {
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		n.lg.Debug("raft step failed", "type", m.Type.String(), "from", fmt.Sprintf("%x", m.From), "error", err)
	}
}

// send hands messages to the transport. Snapshots are not transferred yet
// (the log is never compacted past a follower's match index instead, see
// compactIndex), so a snapshot message is reported as failed.
func (n *Node) send(msgs []raftpb.Message) {
	out := msgs[:0:0]
	for _, m := range msgs {
		if m.Type == raftpb.MsgSnap {
			n.rn.ReportSnapshot(m.To, raft.SnapshotFailure)
			continue
		}
		out = append(out, m)
	}
	n.cfg.Transport.Send(out)
}

// compactIndex lowers a log compaction index to below every follower's
// match index: until snapshots can be streamed, a follower must always find
// the entries it needs in the leader's log. On a follower (which does not
// know its peers' progress) the index stands.
func (n *Node) compactIndex(idx uint64) uint64 {
	st := n.rn.Status()
	if st.RaftState != raft.StateLeader {
		return idx
	}
	for id, pr := range st.Progress {
		if id != n.cfg.ID && pr.Match < idx {
			if pr.Match == 0 {
				return 0
			}
			idx = pr.Match
		}
	}
	return idx
}

func (n *Node) propose(p proposal) {
	if p.cc != nil {
		p.done <- n.rn.ProposeConfChange(*p.cc)
		return
	}
	p.done <- n.rn.Propose(p.data)
}

func (n *Node) applyConfChange(e raftpb.Entry) raftpb.ConfState {
	var cc raftpb.ConfChangeI
	if e.Type == raftpb.EntryConfChange {
		var c raftpb.ConfChange
		if err := c.Unmarshal(e.Data); err != nil {
			n.lg.Error("bad conf change entry", "index", e.Index, "error", err)
			return *n.rn.ApplyConfChange(raftpb.ConfChangeV2{})
		}
		cc = c
	} else {
		var c raftpb.ConfChangeV2
		if err := c.Unmarshal(e.Data); err != nil {
			n.lg.Error("bad conf change entry", "index", e.Index, "error", err)
			return *n.rn.ApplyConfChange(raftpb.ConfChangeV2{})
		}
		cc = c
	}
	return *n.rn.ApplyConfChange(cc)
}

func (n *Node) publish(rd raft.Ready) {
	st := n.rn.BasicStatus()
	n.mu.Lock()
	n.status = Status{ID: st.ID, Lead: st.Lead, Term: st.Term, Commit: st.Commit, Applied: st.Applied}
	n.mu.Unlock()
	if rd.SoftState != nil {
		n.lg.Info("raft state", "leader", fmt.Sprintf("%x", rd.SoftState.Lead), "role", rd.SoftState.RaftState.String())
		select {
		case n.leaderC <- struct{}{}:
		default:
		}
	}
}

func (n *Node) fail(err error) {
	n.lg.Error("raft loop stopped", "error", err)
	n.err = err
}
