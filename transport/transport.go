package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
)

// Handlers are the member's answers to what peers send.
type Handlers struct {
	// Step hands a Raft message to the local node; it must not block.
	Step func(*raftpb.Message)
	// Unreachable and SnapshotFailed report delivery failures to Raft.
	Unreachable func(id uint64)
	// LeaseRenew, LeaseTimeToLive and LeaseLeases answer a follower's
	// forwarded lease requests; lease.ErrLeaseNotFound-like errors must be
	// reported with IsLeaseNotFound true.
	LeaseRenew      func(ctx context.Context, id int64) (int64, error)
	LeaseTimeToLive func(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases     func(ctx context.Context) (*pb.LeaseLeasesResponse, error)
	IsLeaseNotFound func(error) bool
	// HashKV answers a peer's HashKV at a revision, for the corruption
	// checks (etcd serves it on its peer URLs at /members/hashkv).
	HashKV func(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error)
	// CorruptReported raises the CORRUPT alarm for member from, which found
	// its own storage corrupt and is about to stop; it returns once the
	// alarm is committed.
	CorruptReported func(ctx context.Context, from uint64) error
	// Bootstrap describes the cluster to a member joining it (see
	// FetchBootstrap); the bytes are the member's own encoding.
	Bootstrap func() ([]byte, error)
	// IsRemoved tells whether a member was removed from the cluster: its
	// messages are refused. Removed is called when a peer refuses ours.
	IsRemoved func(id uint64) bool
	Removed   func()
	// Snapshot stores a snapshot the leader streams: m is the MsgSnap with
	// its metadata; next yields the state's keys in order, then io.EOF. It
	// returns once the snapshot is durable and handed to Raft.
	Snapshot func(m *raftpb.Message, next func() (key, value []byte, err error)) error
	// SentBytes and ReceivedBytes, if set, count the encoded bytes of the
	// Raft messages sent to and received from peer id.
	SentBytes, ReceivedBytes func(id uint64, n int)
	// ClusterID is this member's cluster. Every stream and call names its
	// sender and cluster in its metadata; one from another cluster, or
	// from a member that is not a peer of this one (see SetPeer), is
	// refused (etcd checks X-Etcd-Cluster-ID and X-Server-From the same
	// way). Bootstrap, asked by a member that knows no cluster yet, is not
	// checked.
	ClusterID uint64
}

// Transport is this member's end of the peer network.
type Transport struct {
	id uint64
	h  Handlers
	lg *slog.Logger

	// tls yields the configuration of a new connection to an https peer
	// URL; nil verifies https peers against the system's roots.
	tls func() *tls.Config

	mu    sync.Mutex
	peers map[uint64]*peer
}

// New returns a transport for member id. tlsCfg, if not nil, yields the
// TLS configuration of each new connection to an https peer (etcd
// --peer-cert-file, --peer-trusted-ca-file, ...).
func New(id uint64, h Handlers, lg *slog.Logger, tlsCfg func() *tls.Config) *Transport {
	if lg == nil {
		lg = slog.Default()
	}
	return &Transport{id: id, h: h, lg: lg, tls: tlsCfg, peers: map[uint64]*peer{}}
}

// SetPeer adds peer id at urls, or updates its URLs.
func (t *Transport) SetPeer(id uint64, urls []string) error {
	if id == t.id {
		return nil
	}
	var target, scheme string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err == nil && u.Host != "" {
			target, scheme = u.Host, u.Scheme
			break
		}
	}
	if target == "" {
		return fmt.Errorf("transport: peer %x has no usable URL in %v", id, urls)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		if p.target == target && p.scheme == scheme {
			return nil
		}
		p.close()
		delete(t.peers, id)
	}
	p, err := newPeer(t, id, target, scheme)
	if err != nil {
		return err
	}
	t.peers[id] = p
	return nil
}

// Peers lists the IDs of the peers it reaches.
func (t *Transport) Peers() []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]uint64, 0, len(t.peers))
	for id := range t.peers {
		ids = append(ids, id)
	}
	return ids
}

// RemovePeer forgets peer id.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p, ok := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if ok {
		p.close()
	}
}

// Send queues messages for their peers. It never blocks.
func (t *Transport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		t.mu.Lock()
		p, ok := t.peers[m.GetTo()]
		t.mu.Unlock()
		if !ok {
			continue
		}
		if !p.enqueue(m) && t.h.Unreachable != nil {
			t.h.Unreachable(m.GetTo())
		}
	}
}

// Close stops every peer stream and waits for them.
func (t *Transport) Close() {
	t.mu.Lock()
	ps := t.peers
	t.peers = map[uint64]*peer{}
	t.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
}
