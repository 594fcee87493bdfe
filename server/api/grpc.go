package api

import (
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/cairn-kv/cairn/pkg/codec"
	"github.com/cairn-kv/cairn/server/api/v3concpb"
)

// grpcOverheadBytes is added to --max-request-bytes for gRPC's own message
// limit, so a request a little over the limit reaches the size check and
// gets etcd's ErrRequestTooLarge rather than a transport error (as etcd).
const grpcOverheadBytes = 512 * 1024

// Member is everything the gRPC services need from a member.
type Member interface {
	KV
	Maintenance
	Watchable
	Leases
	Authenticator
}

// Options configure the gRPC server.
type Options struct {
	// MaxRequestBytes is etcd's --max-request-bytes, in bytes.
	MaxRequestBytes uint
	// MaxTxnOps is etcd's --max-txn-ops.
	MaxTxnOps uint
	// ProgressNotifyInterval is how often idle watchers that asked for
	// progress_notify get a progress response (etcd
	// --watch-progress-notify-interval, default 10 minutes).
	ProgressNotifyInterval time.Duration
	// Logger receives handler panics. Default slog.Default().
	Logger *slog.Logger
	// Metrics, if set, receives the gRPC server metrics (etcd's
	// grpc_server_*); HandlingTime adds the grpc_server_handling_seconds
	// histogram (etcd --metrics=extensive).
	Metrics      prometheus.Registerer
	HandlingTime bool
	// Self is the member's client to itself, over which the Lock and
	// Election services run. Until it holds a client they answer
	// codes.Unavailable.
	Self *SelfClient
	// ClientCertAuth is etcd's --client-cert-auth: a caller without a
	// token is the user its verified certificate's CN names.
	ClientCertAuth bool
	// ServerOptions are appended to the server's own options, so they
	// override them: transport credentials, etcd's --max-concurrent-streams
	// and --grpc-keepalive-* settings.
	ServerOptions []grpc.ServerOption
}

// streamWorkers is how many goroutines serve client calls (grpc.NumStreamWorkers).
const streamWorkers = 256

// NewServer returns a gRPC server with etcd's v3 services over m, and
// etcd's Lock and Election services over opts.Self.
func NewServer(m Member, opts Options) *grpc.Server {
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	unary := []grpc.UnaryServerInterceptor{recoverUnary(lg), learnerUnary(m.IsLearner)}
	stream := []grpc.StreamServerInterceptor{recoverStream(lg), learnerStream(m.IsLearner)}
	var gm *grpcMetrics
	if opts.Metrics != nil {
		gm = newGRPCMetrics(opts.HandlingTime)
		// Each link of a unary chain costs an allocation per call: the
		// metrics share the learner check's link (and count what passes
		// it, as etcd's, whose metrics interceptor comes after it).
		unary[1] = gm.unaryAfterLearnerCheck(m.IsLearner)
		stream = append(stream, gm.stream)
	}
	srv := grpc.NewServer(append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.ForceServerCodec(codec.Codec{}),
		grpc.MaxRecvMsgSize(int(opts.MaxRequestBytes) + grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		// Serve calls on reused goroutines, whose stacks have already
		// grown to the Range/Put path, instead of a new 8 KiB one per call
		// (stack growth was a third of the CPU of a range); when all are
		// busy gRPC starts a goroutine as before. See docs/perf.md.
		grpc.NumStreamWorkers(streamWorkers),
		// etcd's defaults for --grpc-keepalive-min-time, -interval, -timeout.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: false}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
	}, opts.ServerOptions...)...,
	)
	x := &authn{a: m, clientCertAuth: opts.ClientCertAuth}
	pb.RegisterKVServer(srv, &kvServer{kv: m, hdr: m, maxTxnOps: int(opts.MaxTxnOps), x: x})
	wm := newWatchMetrics()
	pb.RegisterWatchServer(srv, &watchServer{w: m, maxRequestBytes: opts.MaxRequestBytes, progressEvery: opts.ProgressNotifyInterval, metrics: wm, x: x})
	pb.RegisterLeaseServer(srv, &leaseServer{l: m, x: x})
	pb.RegisterMaintenanceServer(srv, &maintenanceServer{m: m, x: x})
	pb.RegisterClusterServer(srv, &clusterServer{m: m, x: x})
	pb.RegisterAuthServer(srv, &authServer{m: m, hdr: m, x: x})
	v3concpb.RegisterLockServer(srv, &lockServer{self: opts.Self})
	v3concpb.RegisterElectionServer(srv, &electionServer{self: opts.Self})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	if gm != nil {
		// Every service is registered: make their series before serving.
		gm.init(srv)
		for _, c := range append(gm.collectors(), wm.collectors()...) {
			if err := opts.Metrics.Register(c); err != nil {
				lg.Warn("cannot register gRPC metrics", "error", err)
			}
		}
	}
	return srv
}
