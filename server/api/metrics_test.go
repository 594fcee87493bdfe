package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{nil, codes.OK},
		{rpctypes.ErrGRPCKeyNotFound, codes.InvalidArgument},
		{rpctypes.ErrGRPCNoLeader, codes.Unavailable},
		{context.Canceled, codes.Canceled},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{errors.New("plain"), codes.Unknown},
	} {
		if got := errorCode(tc.err); got != tc.want {
			t.Errorf("errorCode(%v): got %v, want %v", tc.err, got, tc.want)
		}
	}
}

// The unary interceptor counts each call once as started and once as
// handled with its code, under the method's registered type.
func TestUnaryCounts(t *testing.T) {
	g := newGRPCMetrics(true)
	info := &grpc.UnaryServerInfo{FullMethod: "/etcdserverpb.KV/Put"}
	g.methods[info.FullMethod] = g.newMethod("unary", "etcdserverpb.KV", "Put")
	ok := func(context.Context, any) (any, error) { return "done", nil }
	fail := func(context.Context, any) (any, error) { return nil, rpctypes.ErrGRPCNoLeader }
	for _, h := range []grpc.UnaryHandler{ok, ok, fail} {
		g.unary(context.Background(), nil, info, h)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	const put = " grpc_method=Put grpc_service=etcdserverpb.KV grpc_type=unary"
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{"grpc_server_started_total" + put, 3},
		{"grpc_server_handled_total grpc_code=OK" + put, 2},
		{"grpc_server_handled_total grpc_code=Unavailable" + put, 1},
		{"grpc_server_handled_total grpc_code=NotFound" + put, 0},
		{"grpc_server_msg_received_total" + put, 3},
		{"grpc_server_msg_sent_total" + put, 3},
		{"grpc_server_handling_seconds" + put, 3},
	} {
		if v, ok := got[tc.series]; !ok || v != tc.want {
			t.Errorf("%s: got %v (present %v), want %v", tc.series, v, ok, tc.want)
		}
	}
}

// BenchmarkUnaryInterceptor is the cost the metrics add to each unary call.
func BenchmarkUnaryInterceptor(b *testing.B) {
	for _, extensive := range []bool{false, true} {
		b.Run(fmt.Sprintf("extensive=%v", extensive), func(b *testing.B) {
			g := newGRPCMetrics(extensive)
			info := &grpc.UnaryServerInfo{FullMethod: "/etcdserverpb.KV/Range"}
			g.methods[info.FullMethod] = g.newMethod("unary", "etcdserverpb.KV", "Range")
			ic := g.unaryAfterLearnerCheck(func() bool { return false })
			h := func(context.Context, any) (any, error) { return nil, nil }
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ic(ctx, nil, info, h)
				}
			})
		})
	}
}
