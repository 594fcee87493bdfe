package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcMetrics are the gRPC server metrics etcd exports through
// go-grpc-middleware's prometheus provider, with its names, help strings
// and labels (grpc_type, grpc_service, grpc_method, grpc_code). The series
// of every registered method are made up front, as etcd does, so a call
// only looks its method up and adds.
type grpcMetrics struct {
	started, handled, msgReceived, msgSent *prometheus.CounterVec
	// handling is nil unless --metrics=extensive.
	handling *prometheus.HistogramVec
	// methods holds the series of each registered method by full name
	// ("/etcdserverpb.KV/Put"); filled before serving, read-only after.
	methods map[string]*methodMetrics
}

// numCodes is the number of gRPC status codes (OK through Unauthenticated).
const numCodes = int(codes.Unauthenticated) + 1

type methodMetrics struct {
	started, msgReceived, msgSent prometheus.Counter
	handled                       [numCodes]prometheus.Counter
	handling                      prometheus.Observer // nil unless extensive
}

func newGRPCMetrics(handlingTime bool) *grpcMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	g := &grpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total", Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total", Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels[:3:3], "grpc_code")),
		msgReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total", Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		msgSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total", Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		methods: map[string]*methodMetrics{},
	}
	if handlingTime {
		g.handling = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: prometheus.DefBuckets,
		}, labels)
	}
	return g
}

func (g *grpcMetrics) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{g.started, g.handled, g.msgReceived, g.msgSent}
	if g.handling != nil {
		cs = append(cs, g.handling)
	}
	return cs
}

// init makes the series of every method registered on srv.
func (g *grpcMetrics) init(srv *grpc.Server) {
	for service, info := range srv.GetServiceInfo() {
		for _, mi := range info.Methods {
			g.methods["/"+service+"/"+mi.Name] = g.newMethod(grpcType(mi.IsClientStream, mi.IsServerStream), service, mi.Name)
		}
	}
}

func (g *grpcMetrics) newMethod(typ, service, method string) *methodMetrics {
	mm := &methodMetrics{
		started:     g.started.WithLabelValues(typ, service, method),
		msgReceived: g.msgReceived.WithLabelValues(typ, service, method),
		msgSent:     g.msgSent.WithLabelValues(typ, service, method),
	}
	for c := range numCodes {
		mm.handled[c] = g.handled.WithLabelValues(typ, service, method, codes.Code(c).String())
	}
	if g.handling != nil {
		mm.handling = g.handling.WithLabelValues(typ, service, method)
	}
	return mm
}

// method returns the series of a method, making them for one that was not
// registered when serving began.
func (g *grpcMetrics) method(fullMethod string, clientStream, serverStream bool) *methodMetrics {
	if mm, ok := g.methods[fullMethod]; ok {
		return mm
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	return g.newMethod(grpcType(clientStream, serverStream), service, method)
}

func grpcType(clientStream, serverStream bool) string {
	switch {
	case clientStream && serverStream:
		return "bidi_stream"
	case clientStream:
		return "client_stream"
	case serverStream:
		return "server_stream"
	}
	return "unary"
}

func (mm *methodMetrics) done(err error, start time.Time) {
	c := int(errorCode(err))
	if c < numCodes {
		mm.handled[c].Inc()
	}
	if mm.handling != nil {
		mm.handling.Observe(time.Since(start).Seconds())
	}
}

// errorCode is the status code a client sees for err, as the provider
// reports it (a context error as its own code).
func errorCode(err error) codes.Code {
	c := status.Code(err)
	if c == codes.Unknown {
		switch {
		case errors.Is(err, context.Canceled):
			return codes.Canceled
		case errors.Is(err, context.DeadlineExceeded):
			return codes.DeadlineExceeded
		}
	}
	return c
}

// unaryAfterLearnerCheck is learnerUnary followed by the metrics
// interceptor, in one.
func (g *grpcMetrics) unaryAfterLearnerCheck(isLearner func() bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if isLearner() && !learnerAllowed(info.FullMethod, req) {
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
		return g.unary(ctx, req, info, handler)
	}
}

func (g *grpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	mm := g.method(info.FullMethod, false, false)
	var start time.Time
	if mm.handling != nil {
		start = time.Now()
	}
	mm.started.Inc()
	mm.msgReceived.Inc()
	resp, err := handler(ctx, req)
	mm.msgSent.Inc()
	mm.done(err, start)
	return resp, err
}

func (g *grpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	mm := g.method(info.FullMethod, info.IsClientStream, info.IsServerStream)
	var start time.Time
	if mm.handling != nil {
		start = time.Now()
	}
	mm.started.Inc()
	err := handler(srv, &countedStream{ServerStream: ss, mm: mm})
	mm.done(err, start)
	return err
}

// countedStream counts a stream's messages (every attempt, as the
// provider does).
type countedStream struct {
	grpc.ServerStream
	mm *methodMetrics
}

func (s *countedStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	s.mm.msgSent.Inc()
	return err
}

func (s *countedStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	s.mm.msgReceived.Inc()
	return err
}

// watchMetrics are etcd 3.7's histograms of the watch send loop
// (etcdserver/api/v3rpc/metrics.go @v3.7.4): names, help strings and
// buckets (1 ms to 8.192 s) as etcd's. They exist whether or not a
// registry is given; NewServer registers them when it is.
type watchMetrics struct {
	// watchStream times forwarding one response of events, progress or a
	// compaction cancel, from taking it to having sent it; perEvent is
	// the same time divided by its events (observed only when it has
	// some: etcd divides by zero there and records +Inf).
	watchStream, perEvent prometheus.Histogram
	// controlStream times sending a watch's created or canceled response.
	controlStream prometheus.Histogram
	// progress times one round of the progress ticker.
	progress prometheus.Histogram
}

func newWatchMetrics() *watchMetrics {
	h := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd_debugging", Subsystem: "server", Name: name, Help: help,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		})
	}
	return &watchMetrics{
		watchStream: h("watch_send_loop_watch_stream_duration_seconds",
			"The total duration in seconds of running through the send loop watch stream response all events."),
		perEvent: h("watch_send_loop_watch_stream_duration_per_event_seconds",
			"The average duration in seconds of running through the send loop watch stream response, per event."),
		controlStream: h("watch_send_loop_control_stream_duration_seconds",
			"The total duration in seconds of running through the send loop control stream response."),
		progress: h("watch_send_loop_progress_duration_seconds",
			"The total duration in seconds of running through the progress loop control stream response."),
	}
}

func (w *watchMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{w.watchStream, w.perEvent, w.controlStream, w.progress}
}

// observeSent records a response the send loop forwarded, started at
// start. As etcd, whose control stream carries only created and canceled
// responses, a compaction cancel counts as a watch stream response. A nil
// w records nothing.
func (w *watchMetrics) observeSent(r *pb.WatchResponse, start time.Time) {
	if w == nil {
		return
	}
	took := time.Since(start).Seconds()
	if r.Created || (r.Canceled && r.CompactRevision == 0) {
		w.controlStream.Observe(took)
		return
	}
	w.watchStream.Observe(took)
	if n := len(r.Events); n > 0 {
		w.perEvent.Observe(took / float64(n))
	}
}

// observeProgress records a round of the progress ticker started at start.
func (w *watchMetrics) observeProgress(start time.Time) {
	if w != nil {
		w.progress.Observe(time.Since(start).Seconds())
	}
}
