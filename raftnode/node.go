package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/pkg/clock"
	"github.com/cairn-kv/cairn/storage"
)

// ErrStopped is returned for requests made after Stop.
var ErrStopped = errors.New("raftnode: stopped")

// DefaultCatchUpEntries is how many applied entries the log keeps behind a
// log compaction, so a lagging member can catch up without a snapshot (as
// etcd's --snapshot-catchup-entries default).
const DefaultCatchUpEntries = 5000

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
	// SnapshotCount is the number of applied entries between log
	// compactions; CatchUpEntries how many applied entries a compaction
	// keeps (etcd --snapshot-count, --snapshot-catchup-entries; 0 means
	// DefaultCatchUpEntries). A member further behind gets a snapshot.
	SnapshotCount  uint64
	CatchUpEntries uint64
	// NoSync skips fsync (etcd --unsafe-no-fsync).
	NoSync bool
	// WALDir is the directory of the Raft write-ahead log (etcd --wal-dir);
	// "" means "wal" inside the engine's data dir. MaxWALs is how many
	// released WAL segment files to keep (etcd --max-wals; 0: all).
	WALDir  string
	MaxWALs int
	// Transport sends messages to peers; nil for a single member.
	Transport Transport
	Logger    *slog.Logger
	// Clock drives the ticks (every TickInterval) and LastTick; nil: the
	// real one (tests pass a clock.Fake).
	Clock clock.Clock
	// ObserveFsync, if set, is called on the Raft loop with the duration
	// of each synced write of the log and hard state (etcd's WAL fsync).
	ObserveFsync func(time.Duration)
	// ObserveLeader, if set, is called on the Raft loop with the leader's
	// ID (0: none) whenever the leader or this node's role changes.
	ObserveLeader func(lead uint64)
	// ConfVerdict returns the change the apply loop handed Raft for the
	// conf change entry at index (see Apply.Decide), for the entries up to
	// Applied that Start replays into Raft's configuration; ok is false if
	// none was recorded (an entry applied before verdicts were recorded:
	// the entry's own change is used). Nil: none is ever recorded.
	ConfVerdict func(index uint64) (cc *raftpb.ConfChangeV2, ok bool, err error)

	// trace, if set (by tests), receives each step the loop takes for a
	// Ready, in order (see interaction_test.go).
	trace func(event string)
}

// Transport is how the loop reaches peers. Send must not block.
type Transport interface {
	Send([]*raftpb.Message)
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

// Apply is what the apply loop receives, in log order: committed entries,
// or a snapshot to install in their place.
//
// Membership is decided by the apply loop, as in etcd: for each conf
// change entry among Entries, in order, the apply loop validates the change
// against the replicated membership and calls Decide with the change Raft
// is to apply, or a change of node raft.None (a no-op) if it rejected it.
// The Raft loop waits for every verdict of a Ready before it goes on, so
// Raft's configuration and the membership store never disagree.
type Apply struct {
	Entries  []*raftpb.Entry
	Snapshot *SnapshotInstall
	verdicts chan *raftpb.ConfChangeV2
}

// Decide hands the Raft loop the verdict on the next conf change entry of
// a.Entries (see Apply). It never blocks.
func (a Apply) Decide(cc *raftpb.ConfChangeV2) {
	select {
	case a.verdicts <- cc:
	default:
		panic("raftnode: more verdicts than conf change entries")
	}
}

// noopConfChange is the verdict on a rejected conf change: a change of
// node raft.None, which Raft applies as nothing (etcd's rejection). It is
// not the empty ConfChangeV2, which means "leave the joint configuration"
// and on which Raft panics when the configuration is not joint.
func noopConfChange() *raftpb.ConfChangeV2 {
	return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{
		Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(raft.None),
	}}}
}

// SnapshotInstall is a snapshot received from the leader and accepted by
// Raft. The apply loop, once every earlier entry is applied, stops its
// writers, calls Install, reloads its state from storage (now at
// Metadata.Index) and calls Done; the Raft loop waits for that.
type SnapshotInstall struct {
	Metadata *raftpb.SnapshotMetadata
	eng      *storage.Engine
	path     string
	done     chan error
}

// snapKey names a received snapshot file: Raft's MsgSnap carries no file
// name (a name from a peer would be trusted input), only the metadata.
type snapKey struct{ index, term uint64 }

// maxReceivedSnapshots bounds the snapshot files kept on disk waiting for
// Raft; past it the oldest is removed.
const maxReceivedSnapshots = 4

// Install replaces the state and the Raft log with the snapshot, in one
// atomic step: a crash leaves either the old state or the new one.
func (s *SnapshotInstall) Install() error { return s.eng.IngestSnapshot(s.path) }

// Done reports the outcome of the install to the Raft loop; an error stops it.
func (s *SnapshotInstall) Done(err error) { s.done <- err }

type snapStatus struct {
	to uint64
	ok bool
}

// confPoint is the conf state as of a log index.
type confPoint struct {
	index uint64
	cs    *raftpb.ConfState
}

type proposal struct {
	data []byte
	cc   *raftpb.ConfChangeV2 // a conf change instead of data
	done chan error
}

// Node runs the Raft loop.
type Node struct {
	// lastTick is when the loop last ticked Raft (Unix nanoseconds): a
	// leader that has not ticked for a while was paused and may have been
	// deposed without knowing it.
	lastTick atomic.Int64
	cfg      Config
	lg       *slog.Logger
	rn       *raft.RawNode
	ls       *logStore
	ticker   clock.Ticker // owned by the loop

	proposeC   chan proposal
	readIndexC chan []byte
	appliedC   chan uint64
	committedC chan Apply
	snapC      chan *raftpb.Message
	snapStatC  chan snapStatus
	readStateC chan ReadState
	leaderC    chan struct{}
	stepC      chan *raftpb.Message
	inspectC   chan func(*raft.RawNode)
	unreachC   chan uint64

	// mu guards the status the loop publishes for other goroutines.
	mu     sync.Mutex
	status Status

	confState   *raftpb.ConfState // owned by the loop
	lastCompact uint64            // the log's compaction index; owned by the loop
	compactedAt uint64            // the applied index at the last compaction; owned by the loop

	// confMu guards confHist: the conf state after each conf change from
	// the log's compaction index on, for ConfStateAt.
	confMu   sync.Mutex
	confHist []confPoint

	// recvMu guards received: the snapshot files ReceiveSnapshot wrote,
	// by the (index, term) of their metadata, until one is installed.
	recvMu   sync.Mutex
	received map[snapKey]string

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
	ls, fresh, err := loadLogStore(cfg.Engine, logOptions{walDir: cfg.WALDir, maxSegments: cfg.MaxWALs, noSync: cfg.NoSync, applied: cfg.Applied, lg: lg})
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			ls.close()
		}
	}()
	ls.observeFsync = cfg.ObserveFsync
	if fresh {
		if err := ls.bootstrap(cfg.Voters); err != nil {
			return nil, fmt.Errorf("raftnode: bootstrap: %w", err)
		}
	}
	if cfg.CatchUpEntries == 0 {
		cfg.CatchUpEntries = DefaultCatchUpEntries
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
	// A snapshot received but not installed before a restart is of no use:
	// the leader sends another.
	if err := cfg.Engine.RemoveSnapshotFiles(""); err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	snap, _ := ls.ms.Snapshot()
	applied := cfg.Applied
	snapIndex, snapTerm := snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
	if applied < snapIndex {
		applied = snapIndex
	}
	// A crash right after a snapshot install leaves the hard state of
	// before it: the snapshot's index is committed, raise it.
	if hs, _, _ := ls.ms.InitialState(); !raft.IsEmptyHardState(hs) && hs.GetCommit() < snapIndex {
		hs.Commit = proto.Uint64(snapIndex)
		if hs.GetTerm() < snapTerm {
			hs.Term, hs.Vote = proto.Uint64(snapTerm), proto.Uint64(0)
		}
		if err := ls.ms.SetHardState(hs); err != nil {
			return nil, err
		}
	}
	// The state machine never applies past the durable commit index (the
	// hard state is written before entries are handed to apply), but if a
	// crash ever left the stored commit behind, what was applied was
	// committed: raise it rather than let raft refuse to start.
	if hs, _, _ := ls.ms.InitialState(); applied > hs.GetCommit() {
		if last, _ := ls.ms.LastIndex(); applied <= last {
			hs.Commit = proto.Uint64(applied)
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
		committedC: make(chan Apply, 256),
		snapC:      make(chan *raftpb.Message, 16),
		snapStatC:  make(chan snapStatus, 64),
		readStateC: make(chan ReadState, 64),
		leaderC:    make(chan struct{}, 1),
		stepC:      make(chan *raftpb.Message, 4096),
		inspectC:   make(chan func(*raft.RawNode)),
		unreachC:   make(chan uint64, 64),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		received:   map[snapKey]string{},
	}
	n.status = Status{ID: cfg.ID, Applied: applied}
	n.lastCompact, n.compactedAt = snapIndex, snapIndex
	n.confState = cloneConfState(snap.GetMetadata().GetConfState())
	n.confHist = []confPoint{{snapIndex, n.confState}}
	// Raft does not hand out entries up to the applied index again, but its
	// configuration starts from the snapshot's: replay the conf changes
	// applied since, as they were when first committed.
	if applied > snapIndex {
		ents, err := ls.ms.Entries(snapIndex+1, applied+1, math.MaxUint64)
		if err != nil {
			return nil, fmt.Errorf("raftnode: read applied entries: %w", err)
		}
		for _, e := range ents {
			if !isConfChange(e) {
				continue
			}
			cc, err := n.replayVerdict(e)
			if err != nil {
				return nil, err
			}
			n.confState = cloneConfState(rn.ApplyConfChange(cc))
			n.recordConf(e.GetIndex(), n.confState)
		}
	}
	// A single voter need not wait an election timeout to lead.
	if len(cfg.Voters) == 1 && cfg.Voters[0] == cfg.ID {
		_ = rn.Campaign()
	}
	started = true
	n.lastTick.Store(cfg.Clock.Now().UnixNano())
	n.ticker = cfg.Clock.NewTicker(cfg.TickInterval)
	go n.run(applied)
	return n, nil
}

// Committed delivers committed entries and snapshots, in log order, for
// the apply loop.
func (n *Node) Committed() <-chan Apply { return n.committedC }

// SnapshotRequests delivers, on the leader, Raft's requests to send a
// snapshot to a member too far behind for the log (MsgSnap). The receiver
// fills in the metadata of the state it sends (an applied index at or
// after the one asked for), streams it, and calls ReportSnapshot.
func (n *Node) SnapshotRequests() <-chan *raftpb.Message { return n.snapC }

// ReportSnapshot tells Raft whether a snapshot reached member to.
func (n *Node) ReportSnapshot(to uint64, ok bool) {
	select {
	case n.snapStatC <- snapStatus{to, ok}:
	case <-n.done:
	}
}

// ConfStateAt is the Raft configuration as of log index (which must not be
// below the log's compaction index): what a snapshot of the state at that
// index carries.
func (n *Node) ConfStateAt(index uint64) *raftpb.ConfState {
	n.confMu.Lock()
	defer n.confMu.Unlock()
	cs := n.confHist[0].cs
	for _, p := range n.confHist {
		if p.index > index {
			break
		}
		cs = p.cs
	}
	return cloneConfState(cs)
}

func (n *Node) recordConf(index uint64, cs *raftpb.ConfState) {
	n.confMu.Lock()
	defer n.confMu.Unlock()
	n.confHist = append(n.confHist, confPoint{index, cs})
}

// resetConf forgets the history before index, or all of it for a snapshot.
func (n *Node) resetConf(index uint64, snapshot *raftpb.ConfState) {
	n.confMu.Lock()
	defer n.confMu.Unlock()
	if snapshot != nil {
		n.confHist = []confPoint{{index, cloneConfState(snapshot)}}
		return
	}
	i := 0
	for i+1 < len(n.confHist) && n.confHist[i+1].index <= index {
		i++
	}
	n.confHist = n.confHist[i:]
}

// ReceiveSnapshot writes the state streamed with snapshot message m (next
// returns its keys in order, then io.EOF) into a snapshot file, then hands
// m to Raft, which installs it through the apply loop if it still needs it.
func (n *Node) ReceiveSnapshot(m *raftpb.Message, next func() (key, value []byte, err error)) error {
	if m.GetType() != raftpb.MsgSnap || m.Snapshot == nil || m.Snapshot.Metadata == nil {
		return fmt.Errorf("raftnode: %s is not a snapshot message", m.GetType())
	}
	meta, err := proto.Marshal(m.Snapshot.Metadata)
	if err != nil {
		return err
	}
	f, err := n.cfg.Engine.CreateSnapshotFile(map[string][]byte{string(keySnapshot): meta})
	if err != nil {
		return err
	}
	for {
		k, v, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = f.Add(k, v)
		}
		if err != nil {
			f.Abort()
			return err
		}
	}
	keys := f.Keys()
	path, err := f.Finish()
	if err != nil {
		return err
	}
	key := snapKey{m.Snapshot.Metadata.GetIndex(), m.Snapshot.Metadata.GetTerm()}
	n.lg.Info("received snapshot", "from", fmt.Sprintf("%x", m.GetFrom()), "index", key.index, "term", key.term, "keys", keys)
	n.keepReceived(key, path)
	m = proto.Clone(m).(*raftpb.Message)
	m.Snapshot = &raftpb.Snapshot{Metadata: m.Snapshot.Metadata}
	select {
	case n.stepC <- m:
		return nil
	case <-n.done:
		return ErrStopped
	}
}

// keepReceived records the file of a received snapshot, replacing one with
// the same metadata and dropping the oldest beyond maxReceivedSnapshots.
func (n *Node) keepReceived(key snapKey, path string) {
	n.recvMu.Lock()
	defer n.recvMu.Unlock()
	if old, ok := n.received[key]; ok && old != path {
		_ = os.Remove(old)
	}
	n.received[key] = path
	for len(n.received) > maxReceivedSnapshots {
		oldest := key
		for k := range n.received {
			if k.index < oldest.index || (k.index == oldest.index && k.term < oldest.term) {
				oldest = k
			}
		}
		_ = os.Remove(n.received[oldest])
		delete(n.received, oldest)
	}
}

// takeReceived returns the file received for snapshot key and forgets
// every other one (Raft installs no older snapshot after this one).
func (n *Node) takeReceived(key snapKey) (string, bool) {
	n.recvMu.Lock()
	defer n.recvMu.Unlock()
	path, ok := n.received[key]
	for k, p := range n.received {
		if k != key {
			_ = os.Remove(p)
		}
	}
	n.received = map[snapKey]string{}
	return path, ok
}

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
func (n *Node) ProposeConfChange(ctx context.Context, cc *raftpb.ConfChangeV2) error {
	return n.submit(ctx, proposal{cc: cc, done: make(chan error, 1)})
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
// is behind, the message is dropped and Raft retransmits. Snapshots come
// only through ReceiveSnapshot: a MsgSnap here is dropped, as are messages
// Raft keeps to itself (local messages, which a peer never sends).
func (n *Node) Step(m *raftpb.Message) {
	if m.GetType() == raftpb.MsgSnap || raft.IsLocalMsg(m.GetType()) {
		return
	}
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

// LastTick is when the Raft loop last ticked.
func (n *Node) LastTick() time.Time { return time.Unix(0, n.lastTick.Load()) }

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
	defer func() {
		if err := n.ls.close(); err != nil && n.err == nil {
			n.fail(fmt.Errorf("raftnode: close write-ahead log: %w", err))
		}
	}()
	defer n.ticker.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.cfg.Engine.Corrupted():
			n.fail(n.cfg.Engine.CorruptionErr())
			return
		case <-n.ticker.C():
			n.rn.Tick()
			n.lastTick.Store(n.cfg.Clock.Now().UnixNano())
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
		case s := <-n.snapStatC:
			st := raft.SnapshotFinish
			if !s.ok {
				st = raft.SnapshotFailure
			}
			n.rn.ReportSnapshot(s.to, st)
		case f := <-n.inspectC:
			f(n.rn)
		case idx := <-n.appliedC:
			if idx > applied {
				applied = idx
			}
			// Every SnapshotCount applied entries (or 64 MiB of them),
			// drop the log up to CatchUpEntries (at most 64 MiB) behind
			// the applied index; a member that needs what is gone gets a
			// snapshot.
			if n.ls.compactDue(applied, n.compactedAt, n.cfg.SnapshotCount) {
				n.compactedAt = applied
				if idx := n.ls.compactIndex(applied, n.cfg.CatchUpEntries); idx > n.lastCompact {
					if err := n.ls.compact(idx, n.ConfStateAt(idx)); err != nil {
						n.fail(fmt.Errorf("raftnode: compact log: %w", err))
						return
					}
					n.lastCompact = idx
					n.resetConf(idx, nil)
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
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := n.ls.save(&rd); err != nil {
		return fmt.Errorf("raftnode: persist: %w", err)
	}
	if n.cfg.trace != nil {
		n.tracePersist(rd)
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
		var confs []*raftpb.Entry
		for _, e := range rd.CommittedEntries {
			if isConfChange(e) {
				confs = append(confs, e)
			}
		}
		a := Apply{Entries: rd.CommittedEntries}
		if len(confs) > 0 {
			a.verdicts = make(chan *raftpb.ConfChangeV2, len(confs))
		}
		if n.cfg.trace != nil {
			n.cfg.trace("apply " + describeEntries(rd.CommittedEntries))
		}
		select {
		case n.committedC <- a:
		case <-n.stop:
			return ErrStopped
		}
		// Raft's configuration follows the apply loop's verdicts, in log
		// order, before this Ready is acknowledged (etcd waits the same
		// way for its apply loop on a conf change).
		for _, e := range confs {
			select {
			case cc := <-a.verdicts:
				n.confState = cloneConfState(n.rn.ApplyConfChange(cc))
				n.recordConf(e.GetIndex(), n.confState)
				if n.cfg.trace != nil {
					n.cfg.trace(fmt.Sprintf("conf-change %d verdict %s: %s", e.GetIndex(), describeConfChange(cc), describeConfState(n.confState)))
				}
			case <-n.stop:
				return ErrStopped
			}
		}
	}
	n.publish(rd)
	n.rn.Advance(rd)
	if n.cfg.trace != nil {
		n.cfg.trace("advance")
	}
	return nil
}

// installSnapshot has the apply loop install a snapshot Raft accepted
// (after every entry before it), then makes Raft's storage start at it.
// The file holds the new Raft snapshot metadata and clears the old log, so
// the install persists the Raft side too.
func (n *Node) installSnapshot(snap *raftpb.Snapshot) error {
	meta := snap.GetMetadata()
	path, ok := n.takeReceived(snapKey{meta.GetIndex(), meta.GetTerm()})
	if !ok {
		return fmt.Errorf("raftnode: Raft accepted a snapshot at index %d term %d that was never received", meta.GetIndex(), meta.GetTerm())
	}
	inst := &SnapshotInstall{Metadata: meta, eng: n.cfg.Engine, path: path, done: make(chan error, 1)}
	if n.cfg.trace != nil {
		n.cfg.trace(fmt.Sprintf("install snapshot %d/%d %s", meta.GetIndex(), meta.GetTerm(), describeConfState(meta.GetConfState())))
	}
	select {
	case n.committedC <- Apply{Snapshot: inst}:
	case <-n.stop:
		return ErrStopped
	}
	select {
	case err := <-inst.done:
		if err != nil {
			return fmt.Errorf("raftnode: install snapshot at index %d: %w", meta.GetIndex(), err)
		}
	case <-n.stop:
		return ErrStopped
	}
	if err := n.ls.installed(meta); err != nil {
		return fmt.Errorf("raftnode: install snapshot: %w", err)
	}
	n.confState = cloneConfState(meta.GetConfState())
	n.resetConf(meta.GetIndex(), meta.GetConfState())
	n.lastCompact, n.compactedAt = meta.GetIndex(), meta.GetIndex()
	if err := n.cfg.Engine.RemoveSnapshotFiles(""); err != nil {
		n.lg.Warn("cannot remove old snapshot files", "error", err)
	}
	n.lg.Info("installed snapshot", "index", meta.GetIndex(), "term", meta.GetTerm())
	return nil
}

func (n *Node) step(m *raftpb.Message) {
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		n.lg.Debug("raft step failed", "type", m.GetType().String(), "from", fmt.Sprintf("%x", m.GetFrom()), "error", err)
	}
}

// send hands messages to the transport, and snapshot messages to whoever
// reads SnapshotRequests (the state comes from the apply loop).
func (n *Node) send(msgs []*raftpb.Message) {
	out := msgs[:0:0]
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			select {
			case n.snapC <- m:
			default:
				n.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
			}
			continue
		}
		out = append(out, m)
	}
	if n.cfg.trace != nil {
		for _, m := range msgs {
			n.cfg.trace("send " + describeMessage(m))
		}
	}
	n.cfg.Transport.Send(out)
}

func (n *Node) propose(p proposal) {
	if p.cc != nil {
		p.done <- n.rn.ProposeConfChange(p.cc)
		return
	}
	p.done <- n.rn.Propose(p.data)
}

func isConfChange(e *raftpb.Entry) bool {
	t := e.GetType()
	return t == raftpb.EntryConfChange || t == raftpb.EntryConfChangeV2
}

// cloneConfState copies cs (nil: an empty conf state), so the loop's and
// the history's copies never alias a message Raft or a caller still holds.
func cloneConfState(cs *raftpb.ConfState) *raftpb.ConfState {
	if cs == nil {
		return &raftpb.ConfState{}
	}
	return proto.Clone(cs).(*raftpb.ConfState)
}

// replayVerdict is the change Raft applied for conf change entry e when it
// was first committed: the recorded verdict, or, for an entry applied
// before verdicts were recorded, the entry's own change.
func (n *Node) replayVerdict(e *raftpb.Entry) (raftpb.ConfChangeI, error) {
	if n.cfg.ConfVerdict != nil {
		cc, ok, err := n.cfg.ConfVerdict(e.GetIndex())
		if err != nil {
			return nil, fmt.Errorf("raftnode: read the verdict on conf change %d: %w", e.GetIndex(), err)
		}
		if ok {
			return cc, nil
		}
	}
	if e.GetType() == raftpb.EntryConfChange {
		c := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.Data, c); err != nil {
			return noopConfChange(), nil
		}
		return c, nil
	}
	c := &raftpb.ConfChangeV2{}
	if err := proto.Unmarshal(e.Data, c); err != nil || c.LeaveJoint() {
		return noopConfChange(), nil
	}
	return c, nil
}

func (n *Node) publish(rd raft.Ready) {
	st := n.rn.BasicStatus()
	n.mu.Lock()
	n.status = Status{ID: st.ID, Lead: st.Lead, Term: st.GetTerm(), Commit: st.GetCommit(), Applied: st.Applied}
	n.mu.Unlock()
	if rd.SoftState != nil {
		n.lg.Info("raft state", "leader", fmt.Sprintf("%x", rd.SoftState.Lead), "role", rd.SoftState.RaftState.String())
		if n.cfg.ObserveLeader != nil {
			n.cfg.ObserveLeader(rd.SoftState.Lead)
		}
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
