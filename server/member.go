package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/alarm"
	"github.com/cairn-kv/cairn/apply"
	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/pkg/authtoken"
	"github.com/cairn-kv/cairn/pkg/clock"
	"github.com/cairn-kv/cairn/pkg/wait"
	"github.com/cairn-kv/cairn/raftnode"
	"github.com/cairn-kv/cairn/server/compactor"
	"github.com/cairn-kv/cairn/server/duties"
	"github.com/cairn-kv/cairn/storage"
	"github.com/cairn-kv/cairn/transport"
	"github.com/cairn-kv/cairn/watch"
)

// maxGapBetweenApplyAndCommitIndex bounds the apply backlog; past it new
// proposals fail with ErrTooManyRequests, as etcd.
const maxGapBetweenApplyAndCommitIndex = 5000

// Member is one running Cairn member.
type Member struct {
	cfg     Config
	lg      *slog.Logger
	eng     *storage.Engine
	kv      *mvcc.Store
	applier *apply.Applier
	node    *raftnode.Node
	cluster *membership.Cluster

	ids     idGen
	waits   wait.Registry[apply.Result]
	applied wait.Index
	reads   readBatcher
	hub     *watch.Hub
	lessor  *lease.Lessor
	// auth is the auth state; tokens the --auth-token provider;
	// bcryptSem the slots bcrypt work runs in (see bcryptSlot).
	auth      *auth.Store
	tokens    authtoken.Provider
	bcryptSem chan struct{}
	// bcryptWaiters counts the calls in bcryptSlot.
	bcryptWaiters atomic.Int64
	// alarms are the cluster's active alarms; raisingNoSpace is set while
	// this member proposes its NOSPACE alarm.
	alarms         *alarm.Store
	raisingNoSpace atomic.Bool
	disk, walDisk  diskSpace // free space of the data and WAL dirs' file systems
	// defragMu: Defragment holds it for reading, Close for writing before
	// the engine closes (Pebble panics on a compaction of a closed DB).
	defragMu sync.RWMutex
	// restarted is set when the member started on a data dir that already
	// belonged to the cluster (etcd's memberInitialized): only then does
	// the initial corruption check run.
	restarted bool
	// compactor runs --auto-compaction-*; nil when it is off.
	compactor *compactor.Compactor
	metrics   *metrics
	// transport reaches the other members; set before the node starts.
	transport *transport.Transport
	// duties are the leader's: lease expiry and checkpoints.
	duties *duties.Duties
	// clock is cfg.Clock, or the real one.
	clock clock.Clock
	// confMu makes membership changes one at a time.
	confMu sync.Mutex

	stopping  chan struct{}
	published chan struct{}
	wg        sync.WaitGroup
	failed    chan error
	// dead is closed when the member fails (see Failed): requests are then
	// refused with ErrStopped at once.
	dead     chan struct{}
	deadOnce sync.Once
	// reportCorruptOnce: a member that finds its storage corrupt asks a
	// peer once to raise CORRUPT for it (see reportCorrupt).
	reportCorruptOnce sync.Once
	closeOne          sync.Once
}

// New opens the data directory, bootstraps or restores the member, and
// starts its Raft and apply loops. Restart cost does not depend on the
// number of keys: it reads meta keys and replays the Raft log tail.
func New(cfg Config) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	// Creating "bootstrap": the data dir is marked whole only once the
	// membership and the Raft log are stored (see start), so a first start
	// that stops midway is done again rather than taken for a member.
	eng, err := storage.Open(cfg.Dir, storage.Options{Creating: "bootstrap"})
	if err != nil {
		return nil, err
	}
	m := &Member{cfg: cfg, lg: lg, eng: eng, stopping: make(chan struct{}), failed: make(chan error, 1), dead: make(chan struct{}),
		published: make(chan struct{}), metrics: newMetrics(), clock: clock.OrReal(cfg.Clock)}
	if err := m.start(); err != nil {
		// Stop whatever started, before the storage it uses closes.
		close(m.stopping)
		m.stopCompactor()
		if m.duties != nil {
			m.duties.Stop()
		}
		if m.node != nil {
			m.node.Stop()
		}
		m.wg.Wait() // the loops, if they started
		if m.transport != nil {
			m.transport.Close()
		}
		if m.hub != nil {
			m.hub.Close()
		}
		if m.kv != nil {
			m.kv.Close()
		}
		eng.Close()
		return nil, err
	}
	return m, nil
}

func (m *Member) start() error {
	cluster, err := membership.Load(m.eng.DB)
	var current []membership.Member
	if errors.Is(err, membership.ErrNotBootstrapped) && m.cfg.NoBootstrap {
		return fmt.Errorf("%s holds no membership but is marked as a member's data dir (a first start stopped midway?); refusing to bootstrap a new cluster in it: remove it to bootstrap again", m.cfg.Dir)
	}
	if errors.Is(err, membership.ErrNotBootstrapped) && m.cfg.InitialClusterState == "existing" {
		cluster, current, err = m.join()
		if err != nil {
			return err
		}
	} else if errors.Is(err, membership.ErrNotBootstrapped) {
		cluster, err = membership.Bootstrap(m.cfg.InitialCluster, m.cfg.InitialClusterToken, m.cfg.Name)
		if err != nil {
			return err
		}
		b := m.eng.DB.NewBatch()
		if err := cluster.Save(b); err != nil {
			b.Close()
			return err
		}
		if err := b.Commit(pebble.Sync); err != nil {
			b.Close()
			return err
		}
		b.Close()
		m.lg.Info("bootstrapped new cluster", "cluster-id", fmt.Sprintf("%x", cluster.ID), "member-id", fmt.Sprintf("%x", cluster.LocalID))
	} else if err != nil {
		return err
	} else {
		m.restarted = true
		m.lg.Info("restarting member", "cluster-id", fmt.Sprintf("%x", cluster.ID), "member-id", fmt.Sprintf("%x", cluster.LocalID),
			"state-open", m.eng.Recovery.Took.String(), "state-log-bytes", m.eng.Recovery.LogBytes)
	}
	m.cluster = cluster
	m.ids.init(cluster.LocalID, time.Now())

	if err := m.removeBackupFiles(); err != nil {
		return err
	}
	m.kv, err = mvcc.OpenWith(m.eng, m.lg, mvcc.Options{LiveCacheBytes: m.cfg.LiveCacheBytes})
	if err != nil {
		return err
	}
	appliedIndex, _, err := apply.AppliedIndex(m.eng)
	if err != nil {
		return err
	}
	// No MinTTL: the TTL a grant carries is final (see LeaseGrant).
	m.lessor, err = lease.Open(m.eng, lease.Config{Now: m.clock.Now})
	if err != nil {
		return err
	}
	m.duties = m.newDuties()
	m.applier = apply.New(m.kv, m.lessor, cluster, appliedIndex)
	if err := m.openAuth(); err != nil {
		return err
	}
	m.applier.Auth = m.auth
	if m.alarms, err = alarm.Load(m.eng.DB); err != nil {
		return err
	}
	m.applier.Alarms = m.alarms
	m.applier.MaxLearners = maxLearners
	m.applier.WrapCommit = m.metrics.timeCommit
	if wrap := m.cfg.wrapCommit; wrap != nil {
		m.applier.WrapCommit = func(commit func() error) error {
			return wrap(func() error { return m.metrics.timeCommit(commit) })
		}
	}
	m.hub = watch.NewHub(m.kv, m.kv.Rev(), watch.Config{
		IsCompacted: func(err error) bool { return errors.Is(err, mvcc.ErrCompacted) },
		Logger:      m.lg,
	})
	m.applied.Set(appliedIndex)
	voters := make([]uint64, 0, len(cluster.Members))
	for _, mem := range cluster.Members {
		if !mem.IsLearner {
			voters = append(voters, mem.ID)
		}
	}
	m.transport = transport.New(cluster.LocalID, transport.Handlers{
		Step:            func(msg *raftpb.Message) { m.node.Step(msg) },
		Unreachable:     func(id uint64) { m.node.ReportUnreachable(id) },
		LeaseRenew:      m.leaseRenewLocal,
		LeaseTimeToLive: m.leaseTimeToLiveLocal,
		LeaseLeases:     m.leaseLeasesLocal,
		Bootstrap:       func() ([]byte, error) { return m.cluster.JoinInfo(m.eng.DB) },
		IsRemoved:       func(id uint64) bool { return m.cluster.IsRemoved(id) },
		Removed:         func() { m.fail(ErrMemberRemoved) },
		IsLeaseNotFound: func(err error) bool { return errors.Is(err, lease.ErrLeaseNotFound) },
		Snapshot:        m.receiveSnapshot,
		HashKV:          m.HashKV,
		CorruptReported: m.corruptReported,
		SentBytes:       m.metrics.sentBytes,
		ReceivedBytes:   m.metrics.receivedBytes,
		ClusterID:       cluster.ID,
	}, m.lg, m.cfg.PeerTLS)
	m.node, err = raftnode.Start(raftnode.Config{
		ID:             cluster.LocalID,
		Voters:         voters,
		Engine:         m.eng,
		Applied:        appliedIndex,
		TickInterval:   m.cfg.TickInterval,
		ElectionTicks:  m.cfg.ElectionTicks,
		SnapshotCount:  m.cfg.SnapshotCount,
		CatchUpEntries: m.cfg.CatchUpEntries,
		NoSync:         m.cfg.NoSync,
		WALDir:         m.cfg.WALDir,
		MaxWALs:        m.cfg.MaxWALs,
		Transport:      m.transport,
		Logger:         m.lg,
		Clock:          m.clock,
		ObserveFsync:   m.metrics.observeFsync,
		ObserveLeader:  m.metrics.observeLeader(),
		ConfVerdict: func(index uint64) (*raftpb.ConfChangeV2, bool, error) {
			return apply.ConfVerdict(m.eng.DB, index)
		},
	})
	if err != nil {
		return err
	}
	// The membership and the Raft log are durable: the dir is a member.
	if err := m.eng.Complete(); err != nil {
		return err
	}
	// Peers only after the node: their streams report to it.
	for _, mem := range append(cluster.List(), current...) {
		if err := m.transport.SetPeer(mem.ID, mem.PeerURLs); err != nil {
			return err
		}
	}
	m.reads.init()
	m.metrics.registerState(m)
	m.wg.Add(3)
	go m.applyLoop()
	go m.readLoop()
	go m.publishLoop()
	m.duties.Start()
	m.startCorruptChecks()
	return m.startCompactor()
}

// Failed delivers an error if the member stopped on its own (a storage
// failure, its removal from the cluster); from then on it refuses requests
// with ErrStopped at once.
func (m *Member) Failed() <-chan error { return m.failed }

// alive returns ErrStopped once the member failed or is closing.
func (m *Member) alive() error {
	select {
	case <-m.dead:
		return ErrStopped
	case <-m.stopping:
		return ErrStopped
	default:
		return nil
	}
}

// Close stops the member and waits for its goroutines.
func (m *Member) Close() error {
	var err error
	m.closeOne.Do(func() {
		close(m.stopping)
		m.stopCompactor()
		m.duties.Stop()
		m.node.Stop()
		m.wg.Wait()
		m.transport.Close()
		m.hub.Close()
		m.kv.Close()
		m.defragMu.Lock()
		err = m.eng.Close()
		m.defragMu.Unlock()
	})
	return err
}

func (m *Member) fail(err error) {
	m.lg.Error("member failed", "error", err)
	m.deadOnce.Do(func() { close(m.dead) })
	if m.eng.CorruptionErr() != nil {
		m.reportCorruptOnce.Do(m.reportCorrupt)
	}
	select {
	case m.failed <- err:
	default:
	}
}

// applyLoop applies committed entries in log order; after each batch
// commits it wakes the waiting clients. Between batches it installs the
// snapshots a follower receives and takes those the leader sends, so that
// both see the state at an applied index.
func (m *Member) applyLoop() {
	defer m.wg.Done()
	for {
		select {
		case a, ok := <-m.node.Committed():
			if !ok {
				if err := m.node.Err(); err != nil {
					m.fail(err)
				}
				return
			}
			if a.Snapshot != nil {
				if err := m.installSnapshot(a.Snapshot); err != nil {
					m.fail(err)
					return
				}
				continue
			}
			if err := m.apply(a); err != nil {
				m.fail(err)
				return
			}
		case req := <-m.node.SnapshotRequests():
			m.sendSnapshot(req)
		}
	}
}

func (m *Member) apply(a raftnode.Apply) error {
	start := time.Now()
	res, err := m.applier.Apply(a.Entries)
	if err != nil {
		return err
	}
	// The Raft loop waits for these before it goes on.
	for _, cc := range res.ConfChanges {
		a.Decide(cc)
	}
	if res.Index == 0 {
		return nil
	}
	m.metrics.observeApplied(res, time.Since(start))
	// Watchers first, then clients: Notify only queues the batch for the
	// hub's notifier (it waits only if the notifier is far behind), and a
	// watch created once a client has seen a revision starts after it.
	// As in etcd, a client may read a revision before its watchers get
	// the events; no watch response's header runs ahead of them.
	m.hub.Notify(res.Batch.Rev(), res.Batch.Events)
	m.applied.Set(res.Index)
	m.node.Applied(res.Index)
	for _, r := range res.Results {
		m.afterConfChange(r)
		m.waits.Trigger(r.ID, r)
	}
	return nil
}

// PeerServerOptions are the options of the gRPC server on the peer
// listeners (see RegisterPeerService); they bound what a peer may send by
// this member's MaxRequestBytes.
func (m *Member) PeerServerOptions() []grpc.ServerOption {
	return transport.ServerOptions(m.cfg.MaxRequestBytes)
}

// RegisterPeerService adds the peer service (Raft messages, forwarded
// lease requests) to the gRPC server on the peer listeners.
func (m *Member) RegisterPeerService(s *grpc.Server) { m.transport.Register(s) }

// NewWatchStream opens a stream of watchers.
func (m *Member) NewWatchStream() *watch.Stream { return m.hub.NewStream() }

// ID is this member's ID; ClusterID the cluster's.
func (m *Member) ID() uint64        { return m.cluster.LocalID }
func (m *Member) ClusterID() uint64 { return m.cluster.ID }

// Published is closed once this member's name and client URLs are part of
// the cluster's state (etcd's members serve clients from then on).
func (m *Member) Published() <-chan struct{} { return m.published }

// Members lists the cluster's members.
func (m *Member) Members() []membership.Member { return m.cluster.List() }

// publishLoop records this member's name and client URLs in the cluster
// through Raft, as etcd's members publish theirs, retrying until it is
// done; other members then list them.
func (m *Member) publishLoop() {
	defer m.wg.Done()
	for {
		if self, ok := m.cluster.Member(m.cluster.LocalID); ok && self.Name == m.cfg.Name && slices.Equal(self.ClientURLs, m.cfg.ClientURLs) {
			close(m.published)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.reqTimeout())
		_, err := m.propose(ctx, &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID:        m.cluster.LocalID,
			MemberAttributes: &membershippb.Attributes{Name: m.cfg.Name, ClientUrls: m.cfg.ClientURLs},
		}})
		cancel()
		if err == nil {
			continue
		}
		retry := 500 * time.Millisecond
		if m.node.Status().Lead == 0 {
			retry = 20 * time.Millisecond // dropped for want of a leader: soon there is one
		}
		select {
		case <-m.stopping:
			return
		case <-time.After(retry):
		}
	}
}

// Term is the current Raft term.
func (m *Member) Term() uint64 { return m.node.Status().Term }

// Rev is the current store revision.
func (m *Member) Rev() int64 { return m.kv.Rev() }

// Header returns a response header for the current state.
func (m *Member) Header(rev int64) *pb.ResponseHeader {
	if rev == 0 {
		rev = m.kv.Rev()
	}
	return &pb.ResponseHeader{ClusterId: m.cluster.ID, MemberId: m.cluster.LocalID, Revision: rev, RaftTerm: m.Term()}
}

// propose replicates req through Raft and waits for its applied result.
func (m *Member) propose(ctx context.Context, req *pb.InternalRaftRequest) (_ any, err error) {
	if err := m.alive(); err != nil {
		return nil, err
	}
	m.metrics.proposalsPending.Inc()
	defer m.metrics.proposalsPending.Dec()
	st := m.node.Status()
	if exceedsRequestLimit(m.applied.Get(), st.Commit, req, featureEnabled(m.cfg.FeatureGates, PriorityRequest)) {
		return nil, ErrTooManyRequests
	}
	defer func(start time.Time) { m.metrics.observeRequest(requestType(req), start, err) }(time.Now())
	id := m.ids.next()
	req.Header = &pb.RequestHeader{ID: id}
	if ai := authInfoFrom(ctx); ai != nil && req.Authenticate == nil {
		req.Header.Username, req.Header.AuthRevision = ai.Username, ai.Revision
	}
	data, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	if uint(len(data)) > m.cfg.MaxRequestBytes {
		return nil, ErrRequestTooLarge
	}
	ch := m.waits.Register(id)
	ctx, cancel := context.WithTimeout(ctx, m.cfg.reqTimeout())
	defer cancel()
	if err := m.node.Propose(ctx, data); err != nil {
		m.waits.Cancel(id)
		m.metrics.proposalsFailed.Inc()
		switch {
		case errors.Is(err, raftnode.ErrStopped):
			return nil, ErrStopped
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			return nil, m.ctxErr(ctx, err)
		default: // raft dropped the proposal: no leader
			return nil, ErrNoLeader
		}
	}
	select {
	case r := <-ch:
		return r.Resp, r.Err
	case <-ctx.Done():
		m.waits.Cancel(id)
		m.metrics.proposalsFailed.Inc()
		return nil, m.ctxErr(ctx, ctx.Err())
	case <-m.stopping:
		m.metrics.proposalsFailed.Inc()
		return nil, ErrStopped
	case <-m.dead:
		m.waits.Cancel(id)
		m.metrics.proposalsFailed.Inc()
		return nil, ErrStopped
	}
}

// join fetches the cluster's description from a member named in
// --initial-cluster and saves the state a joining member starts from.
func (m *Member) join() (*membership.Cluster, []membership.Member, error) {
	var lastErr error
	for name, urls := range m.cfg.InitialCluster {
		if name == m.cfg.Name {
			continue
		}
		for _, u := range urls {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			info, err := transport.FetchBootstrap(ctx, u, m.cfg.PeerTLS)
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			cluster, current, err := membership.Join(info, m.cfg.PeerURLs)
			if err != nil {
				return nil, nil, err
			}
			b := m.eng.DB.NewBatch()
			defer b.Close()
			if err := cluster.Save(b); err != nil {
				return nil, nil, err
			}
			if err := b.Commit(pebble.Sync); err != nil {
				return nil, nil, err
			}
			m.lg.Info("joining existing cluster", "cluster-id", fmt.Sprintf("%x", cluster.ID), "member-id", fmt.Sprintf("%x", cluster.LocalID))
			return cluster, current, nil
		}
	}
	return nil, nil, fmt.Errorf("server: --initial-cluster-state existing: no member of --initial-cluster answered: %v", lastErr)
}

// ctxErr tells a client's own cancellation apart from the member's timeout.
func (m *Member) ctxErr(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= 0 {
		return ErrTimeout
	}
	return err
}

// idGen makes request IDs unique across members and restarts: the low 16
// bits of the member ID, then a counter seeded from the clock in ms.
type idGen struct {
	prefix uint64
	suffix atomic.Uint64
}

func (g *idGen) init(memberID uint64, now time.Time) {
	g.prefix = (memberID & 0xffff) << 48
	g.suffix.Store(uint64(now.UnixMilli()) << 8 & (1<<48 - 1))
}

func (g *idGen) next() uint64 {
	return g.prefix | (g.suffix.Add(1) & (1<<48 - 1))
}
