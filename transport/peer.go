package transport

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/pkg/codec"
)

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
