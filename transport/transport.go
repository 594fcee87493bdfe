package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/pkg/codec"
)

// ErrLeaseNotFound is returned by forwarded lease calls for a lease the
// leader does not have.
var ErrLeaseNotFound = errors.New("transport: lease not found")

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

// peer is the outbound side towards one member.
type peer struct {
	t      *Transport
	id     uint64
	target string
	scheme string // of the peer URL: https dials with TLS
	conn   *grpc.ClientConn
	queue  chan *raftpb.Message
	stop   chan struct{}
	done   chan struct{}
}

const queueLen = 4096

// Keepalive on peer connections: a peer that stops answering without
// closing the connection (a dropped route, a member restarted behind a
// partition) is noticed within peerKeepaliveTime + peerKeepaliveTimeout,
// not after TCP's retransmission timeout of many minutes; the stream (or
// snapshot transfer) then fails and is retried on a new connection.
// gRPC raises a Time under 10 s to 10 s.
var (
	peerKeepaliveTime    = 10 * time.Second
	peerKeepaliveTimeout = 5 * time.Second
)

// MaxMessageBytes bounds every message a peer may send (a Raft message, a
// snapshot chunk, a forwarded lease call), given the member's
// --max-request-bytes: Raft packs up to 1 MiB of entries into a message
// (raftnode's MaxSizePerMsg) and always at least one entry, itself at most
// a request; a snapshot chunk is 1 MiB and one record. Members must share
// --max-request-bytes, or a follower with a smaller one refuses what the
// leader sends.
func MaxMessageBytes(maxRequestBytes uint) int {
	const overhead = 2<<20 + 64<<10
	if maxRequestBytes > 1<<30 {
		maxRequestBytes = 1 << 30
	}
	return int(maxRequestBytes) + overhead
}

// maxCallBytes bounds the body of a forwarded lease call or a Bootstrap
// request, which carry an ID or nothing (etcd 3.7.1 fixed an unbounded
// peer lease request body).
const maxCallBytes = 4 << 10

// ServerOptions are the gRPC server options of the peer listener: the
// codec, the largest message (MaxMessageBytes), and a keepalive policy
// that admits peers' pings.
func ServerOptions(maxRequestBytes uint) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodec(codec.Codec{}),
		grpc.MaxRecvMsgSize(MaxMessageBytes(maxRequestBytes)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	}
}

func newPeer(t *Transport, id uint64, target, scheme string) (*peer, error) {
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds(scheme, t.tls)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: peerKeepaliveTime, Timeout: peerKeepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(codec.Codec{}), grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		return nil, fmt.Errorf("transport: peer %x at %s: %w", id, target, err)
	}
	p := &peer{t: t, id: id, target: target, scheme: scheme, conn: conn, queue: make(chan *raftpb.Message, queueLen), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p, nil
}

func (p *peer) enqueue(m *raftpb.Message) bool {
	select {
	case p.queue <- m:
		return true
	default:
		return false
	}
}

func (p *peer) close() {
	close(p.stop)
	<-p.done
	p.conn.Close()
}

// run keeps a stream open to the peer and writes queued messages to it.
func (p *peer) run() {
	defer close(p.done)
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		err := p.stream()
		if err == nil {
			return
		}
		if p.t.h.Unreachable != nil {
			p.t.h.Unreachable(p.id)
		}
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// stream sends until the stream breaks (error) or the peer is closed (nil).
func (p *peer) stream() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A send blocked on a peer that does not read must end on close.
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	s, err := p.conn.NewStream(p.t.outgoing(ctx), &serviceDesc.Streams[0], "/"+serviceName+"/Send")
	if err != nil {
		return err
	}
	for {
		select {
		case <-p.stop:
			return nil
		case m := <-p.queue:
			if err := s.SendMsg(m); err != nil {
				// The peer's reason, if it closed the stream on purpose.
				if rerr := s.RecvMsg(&blob{}); status.Code(rerr) == codes.PermissionDenied && p.t.h.Removed != nil {
					p.t.h.Removed()
				}
				return err
			}
			if p.t.h.SentBytes != nil {
				p.t.h.SentBytes(p.id, proto.Size(m))
			}
		}
	}
}

// Register adds the peer service to a gRPC server on the peer listener.
func (t *Transport) Register(s *grpc.Server) {
	s.RegisterService(&serviceDesc, t)
}

const serviceName = "cairn.peer.v1.Peer"

// peerService is the interface the hand-written service description
// dispatches to (gRPC checks the implementation against it).
type peerService interface {
	recv(grpc.ServerStream) error
	recvSnapshot(grpc.ServerStream) error
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*peerService)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Send",
		ClientStreams: true,
		Handler: func(srv any, s grpc.ServerStream) error {
			return srv.(peerService).recv(s)
		},
	}, {
		StreamName:    "Snapshot",
		ClientStreams: true,
		Handler: func(srv any, s grpc.ServerStream) error {
			return srv.(peerService).recvSnapshot(s)
		},
	}},
	Methods: []grpc.MethodDesc{
		{MethodName: "LeaseRenew", Handler: leaseRenewHandler},
		{MethodName: "LeaseTimeToLive", Handler: leaseTTLHandler},
		{MethodName: "LeaseLeases", Handler: leaseLeasesHandler},
		{MethodName: "Bootstrap", Handler: bootstrapHandler},
	},
}

// Metadata keys of every peer stream and call: the sender's member ID and
// its cluster ID, in hex.
const (
	mdFrom      = "cairn-from"
	mdClusterID = "cairn-cluster-id"
)

// outgoing adds this member's ID and cluster to a call's metadata.
func (t *Transport) outgoing(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx,
		mdFrom, strconv.FormatUint(t.id, 16), mdClusterID, strconv.FormatUint(t.h.ClusterID, 16))
}

// sender checks the metadata of a stream or call from a peer and returns
// the sender's ID: it must name this cluster and a member this one
// reaches. A removed member is told so (PermissionDenied), which is how it
// learns it is gone.
func (t *Transport) sender(ctx context.Context) (uint64, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	get := func(key string) (uint64, bool) {
		v := md.Get(key)
		if len(v) != 1 {
			return 0, false
		}
		n, err := strconv.ParseUint(v[0], 16, 64)
		return n, err == nil
	}
	cid, ok := get(mdClusterID)
	if !ok || (t.h.ClusterID != 0 && cid != t.h.ClusterID) {
		return 0, status.Errorf(codes.FailedPrecondition, "transport: request cluster ID mismatch (got %x, want %x)", cid, t.h.ClusterID)
	}
	from, ok := get(mdFrom)
	if !ok {
		return 0, status.Error(codes.InvalidArgument, "transport: the sender is not named")
	}
	if t.h.IsRemoved != nil && t.h.IsRemoved(from) {
		return 0, status.Error(codes.PermissionDenied, "the member has been permanently removed from the cluster")
	}
	t.mu.Lock()
	_, known := t.peers[from]
	t.mu.Unlock()
	if !known {
		return 0, status.Errorf(codes.NotFound, "transport: sender %x is not a member this one knows", from)
	}
	return from, nil
}

// recv steps the messages a peer streams to us (see receive).
func (t *Transport) recv(s grpc.ServerStream) error {
	from, err := t.sender(s.Context())
	if err != nil {
		return err
	}
	for {
		var b blob
		if err := s.RecvMsg(&b); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := t.receive(from, b.b); err != nil {
			t.lg.Warn("refusing a peer's message stream", "from", fmt.Sprintf("%x", from), "error", err)
			return err
		}
	}
}

// receive decodes one Raft message streamed by member from and steps it.
// A message must come from its stream's sender, to this member, and be one
// that Raft exchanges between members; a snapshot never comes this way (it
// has its own stream: Snapshot), nor does a message Raft keeps local.
func (t *Transport) receive(from uint64, b []byte) error {
	m := &raftpb.Message{}
	if err := proto.Unmarshal(b, m); err != nil {
		return status.Errorf(codes.InvalidArgument, "transport: bad Raft message: %v", err)
	}
	switch {
	case m.GetFrom() != from:
		return status.Errorf(codes.InvalidArgument, "transport: a message from %x on the stream of %x", m.GetFrom(), from)
	case m.GetTo() != t.id:
		return status.Errorf(codes.InvalidArgument, "transport: a message to %x sent to %x", m.GetTo(), t.id)
	case !peerMessage(m.GetType()):
		return status.Errorf(codes.InvalidArgument, "transport: %s is not accepted on the message stream", m.GetType())
	}
	if t.h.IsRemoved != nil && t.h.IsRemoved(from) {
		return status.Error(codes.PermissionDenied, "the member has been permanently removed from the cluster")
	}
	if t.h.ReceivedBytes != nil {
		t.h.ReceivedBytes(from, len(b))
	}
	t.h.Step(m)
	return nil
}

// peerMessage reports whether members send messages of type typ to each
// other on the message stream (raft's non-local messages, but MsgSnap).
func peerMessage(typ raftpb.MessageType) bool {
	switch typ {
	case raftpb.MsgApp, raftpb.MsgAppResp, raftpb.MsgVote, raftpb.MsgVoteResp,
		raftpb.MsgPreVote, raftpb.MsgPreVoteResp, raftpb.MsgHeartbeat, raftpb.MsgHeartbeatResp,
		raftpb.MsgProp, raftpb.MsgTransferLeader, raftpb.MsgTimeoutNow,
		raftpb.MsgReadIndex, raftpb.MsgReadIndexResp:
		return true
	}
	return false
}

func (t *Transport) leaseErr(err error) error {
	if t.h.IsLeaseNotFound != nil && t.h.IsLeaseNotFound(err) {
		return status.Error(codes.NotFound, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

func leaseRenewHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	t := srv.(*Transport)
	if _, err := t.sender(ctx); err != nil {
		return nil, err
	}
	var req pb.LeaseKeepAliveRequest
	if err := decodeCall(dec, &req); err != nil {
		return nil, err
	}
	ttl, err := t.h.LeaseRenew(ctx, req.ID)
	if err != nil {
		return nil, t.leaseErr(err)
	}
	return &pb.LeaseKeepAliveResponse{ID: req.ID, TTL: ttl}, nil
}

func leaseTTLHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	t := srv.(*Transport)
	if _, err := t.sender(ctx); err != nil {
		return nil, err
	}
	var req pb.LeaseTimeToLiveRequest
	if err := decodeCall(dec, &req); err != nil {
		return nil, err
	}
	resp, err := t.h.LeaseTimeToLive(ctx, &req)
	if err != nil {
		return nil, t.leaseErr(err)
	}
	return resp, nil
}

func leaseLeasesHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	t := srv.(*Transport)
	if _, err := t.sender(ctx); err != nil {
		return nil, err
	}
	var req pb.LeaseLeasesRequest
	if err := decodeCall(dec, &req); err != nil {
		return nil, err
	}
	resp, err := t.h.LeaseLeases(ctx)
	if err != nil {
		return nil, t.leaseErr(err)
	}
	return resp, nil
}

// decodeCall decodes a forwarded call's request, which must be at most
// maxCallBytes.
func decodeCall(dec func(any) error, req proto.Message) error {
	if err := dec(req); err != nil {
		return err
	}
	if n := proto.Size(req); n > maxCallBytes {
		return status.Errorf(codes.InvalidArgument, "transport: a request of %d bytes (at most %d)", n, maxCallBytes)
	}
	return nil
}

// forward makes a unary call to peer to.
func (t *Transport) forward(ctx context.Context, to uint64, method string, req, resp any) error {
	t.mu.Lock()
	p, ok := t.peers[to]
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("transport: unknown peer %x", to)
	}
	err := p.conn.Invoke(t.outgoing(ctx), "/"+serviceName+"/"+method, req, resp)
	if status.Code(err) == codes.NotFound {
		return ErrLeaseNotFound
	}
	return err
}

// LeaseRenew asks the leader to renew a lease.
func (t *Transport) LeaseRenew(ctx context.Context, leader uint64, id int64) (int64, error) {
	var resp pb.LeaseKeepAliveResponse
	if err := t.forward(ctx, leader, "LeaseRenew", &pb.LeaseKeepAliveRequest{ID: id}, &resp); err != nil {
		return 0, err
	}
	return resp.TTL, nil
}

// LeaseTimeToLive asks the leader for a lease's time to live.
func (t *Transport) LeaseTimeToLive(ctx context.Context, leader uint64, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	var resp pb.LeaseTimeToLiveResponse
	if err := t.forward(ctx, leader, "LeaseTimeToLive", r, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// LeaseLeases asks the leader for its leases.
func (t *Transport) LeaseLeases(ctx context.Context, leader uint64) (*pb.LeaseLeasesResponse, error) {
	var resp pb.LeaseLeasesResponse
	if err := t.forward(ctx, leader, "LeaseLeases", &pb.LeaseLeasesRequest{}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// blob is a message that is just bytes (the Bootstrap answer).
type blob struct{ b []byte }

func (m *blob) Marshal() ([]byte, error) { return m.b, nil }
func (m *blob) Unmarshal(b []byte) error {
	m.b = append([]byte(nil), b...)
	return nil
}

func bootstrapHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	t := srv.(*Transport)
	var req blob
	if err := dec(&req); err != nil {
		return nil, err
	}
	if len(req.b) > maxCallBytes {
		return nil, status.Errorf(codes.InvalidArgument, "transport: a Bootstrap request of %d bytes (at most %d)", len(req.b), maxCallBytes)
	}
	if t.h.Bootstrap == nil {
		return nil, status.Error(codes.Unimplemented, "no bootstrap information")
	}
	b, err := t.h.Bootstrap()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &blob{b: b}, nil
}

// FetchBootstrap asks the member at peerURL to describe the cluster, for a
// member joining it (etcd --initial-cluster-state existing). tlsCfg is as
// New's.
func FetchBootstrap(ctx context.Context, peerURL string, tlsCfg func() *tls.Config) ([]byte, error) {
	u, err := url.Parse(peerURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("transport: bad peer URL %q", peerURL)
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(creds(u.Scheme, tlsCfg)),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(codec.Codec{})))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var resp blob
	if err := conn.Invoke(ctx, "/"+serviceName+"/Bootstrap", &blob{}, &resp); err != nil {
		return nil, err
	}
	return resp.b, nil
}

// A snapshot stream is a sequence of blobs, each tagged by its first byte:
// one snapMessage (the raftpb.Message), snapData blobs of records (uvarint
// key length, key, uvarint value length, value) of about snapChunk bytes,
// and one snapEnd with the number of records, so a cut stream is noticed.
const (
	snapMessage byte = 'M'
	snapData    byte = 'D'
	snapEnd     byte = 'E'
	snapChunk        = 1 << 20
)

// SendSnapshot streams snapshot message m (its metadata filled in) and the
// state that each yields, in key order, to member m.To. It returns nil once
// the member has stored the snapshot.
func (t *Transport) SendSnapshot(ctx context.Context, m *raftpb.Message, each func(fn func(key, value []byte) error) error) error {
	t.mu.Lock()
	p, ok := t.peers[m.GetTo()]
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("transport: unknown peer %x", m.GetTo())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := p.conn.NewStream(t.outgoing(ctx), &serviceDesc.Streams[1], "/"+serviceName+"/Snapshot")
	if err != nil {
		return err
	}
	// A send fails with io.EOF when the member ended the stream: its
	// status says why.
	send := func(b []byte) error {
		err := s.SendMsg(&blob{b: b})
		if errors.Is(err, io.EOF) {
			if rerr := s.RecvMsg(&blob{}); rerr != nil {
				return rerr
			}
		}
		return err
	}
	head, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	if err := send(append([]byte{snapMessage}, head...)); err != nil {
		return err
	}
	newBuf := func() []byte {
		b := make([]byte, 1, snapChunk+snapChunk/8)
		b[0] = snapData
		return b
	}
	buf := newBuf()
	var n uint64
	err = each(func(k, v []byte) error {
		buf = binary.AppendUvarint(buf, uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
		n++
		if len(buf) >= snapChunk {
			if err := send(buf); err != nil {
				return err
			}
			buf = newBuf() // gRPC may still hold the sent bytes: never reuse them
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(buf) > 1 {
		if err := send(buf); err != nil {
			return err
		}
	}
	if err := send(binary.AppendUvarint([]byte{snapEnd}, n)); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(&blob{})
}

// recvSnapshot hands a streamed snapshot to the Snapshot handler.
func (t *Transport) recvSnapshot(s grpc.ServerStream) error {
	from, err := t.sender(s.Context())
	if err != nil {
		return err
	}
	var head blob
	if err := s.RecvMsg(&head); err != nil {
		return err
	}
	m := &raftpb.Message{}
	if len(head.b) == 0 || head.b[0] != snapMessage || proto.Unmarshal(head.b[1:], m) != nil || m.GetType() != raftpb.MsgSnap || m.Snapshot == nil || m.Snapshot.Metadata == nil {
		return status.Error(codes.InvalidArgument, "transport: a snapshot stream must start with its MsgSnap")
	}
	if m.GetFrom() != from || m.GetTo() != t.id {
		return status.Errorf(codes.InvalidArgument, "transport: a snapshot from %x to %x on a stream from %x to %x", m.GetFrom(), m.GetTo(), from, t.id)
	}
	if t.h.Snapshot == nil {
		return status.Error(codes.Unimplemented, "transport: snapshots are not accepted")
	}
	r := &snapReader{s: s}
	if err := t.h.Snapshot(m, r.next); err != nil {
		t.lg.Warn("snapshot from peer failed", "from", fmt.Sprintf("%x", m.GetFrom()), "index", m.Snapshot.Metadata.GetIndex(), "error", err)
		return status.Error(codes.Aborted, err.Error())
	}
	return s.SendMsg(&blob{})
}

// errBadSnapshotStream is returned for a malformed or cut snapshot stream.
var errBadSnapshotStream = errors.New("transport: malformed snapshot stream")

type snapReader struct {
	s    grpc.ServerStream
	buf  []byte
	n    uint64
	done bool
}

func (r *snapReader) next() (key, value []byte, err error) {
	for len(r.buf) == 0 {
		if r.done {
			return nil, nil, io.EOF
		}
		var b blob
		if err := r.s.RecvMsg(&b); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, nil, fmt.Errorf("%w: it ends without its end mark", errBadSnapshotStream)
			}
			return nil, nil, err
		}
		if len(b.b) == 0 {
			return nil, nil, errBadSnapshotStream
		}
		switch b.b[0] {
		case snapData:
			r.buf = b.b[1:]
		case snapEnd:
			n, l := binary.Uvarint(b.b[1:])
			if l <= 0 || n != r.n {
				return nil, nil, fmt.Errorf("%w: %d records received, the sender counted %d", errBadSnapshotStream, r.n, n)
			}
			r.done = true
		default:
			return nil, nil, fmt.Errorf("%w: unknown blob tag %q", errBadSnapshotStream, b.b[0])
		}
	}
	field := func() ([]byte, bool) {
		l, n := binary.Uvarint(r.buf)
		if n <= 0 || uint64(len(r.buf)-n) < l {
			return nil, false
		}
		f := r.buf[n : n+int(l)]
		r.buf = r.buf[n+int(l):]
		return f, true
	}
	k, ok1 := field()
	v, ok2 := field()
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("%w: truncated record", errBadSnapshotStream)
	}
	r.n++
	return k, v, nil
}
