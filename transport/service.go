package transport

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/pkg/codec"
)

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
		{MethodName: "HashKV", Handler: hashKVHandler},
		{MethodName: "ReportCorrupt", Handler: reportCorruptHandler},
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
