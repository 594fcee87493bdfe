package api

import (
	"context"
	"log/slog"
	"runtime/debug"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Panics in a handler are bugs; they must not take the member down with
// them. These interceptors turn one into codes.Internal and log its stack.

func recoverUnary(lg *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				lg.Error("panic in gRPC handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "cairn: internal error in %s", info.FullMethod)
			}
		}()
		return h(ctx, req)
	}
}

func recoverStream(lg *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				lg.Error("panic in gRPC stream handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "cairn: internal error in %s", info.FullMethod)
			}
		}()
		return h(srv, ss)
	}
}

// A learner serves only Status and serializable reads, as etcd's
// (isRPCSupportedForLearner); everything else gets
// ErrGRPCNotSupportedForLearner. That includes the Lock and Election
// services, which etcd serves behind the same check.
func learnerUnary(isLearner func() bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if isLearner() && !learnerAllowed(info.FullMethod, req) {
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
		return h(ctx, req)
	}
}

func learnerStream(isLearner func() bool) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if isLearner() {
			return rpctypes.ErrGRPCNotSupportedForLearner
		}
		return h(srv, ss)
	}
}

func learnerAllowed(method string, req any) bool {
	switch method {
	case "/etcdserverpb.Maintenance/Status", "/grpc.health.v1.Health/Check":
		return true
	case "/etcdserverpb.KV/Range":
		r, ok := req.(*pb.RangeRequest)
		return ok && r.Serializable
	}
	return false
}
