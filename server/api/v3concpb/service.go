package v3concpb

import (
	"context"

	"google.golang.org/grpc"
)

// LockServer is the server side of v3lockpb.Lock.
type LockServer interface {
	Lock(context.Context, *LockRequest) (*LockResponse, error)
	Unlock(context.Context, *UnlockRequest) (*UnlockResponse, error)
}

// ElectionServer is the server side of v3electionpb.Election.
type ElectionServer interface {
	Campaign(context.Context, *CampaignRequest) (*CampaignResponse, error)
	Proclaim(context.Context, *ProclaimRequest) (*ProclaimResponse, error)
	Leader(context.Context, *LeaderRequest) (*LeaderResponse, error)
	Observe(*LeaderRequest, ObserveStream) error
	Resign(context.Context, *ResignRequest) (*ResignResponse, error)
}

// ObserveStream is the server's end of an Observe call.
type ObserveStream interface {
	Send(*LeaderResponse) error
	grpc.ServerStream
}

// RegisterLockServer registers srv as the v3lockpb.Lock service.
func RegisterLockServer(s grpc.ServiceRegistrar, srv LockServer) {
	s.RegisterService(&lockServiceDesc, srv)
}

// RegisterElectionServer registers srv as the v3electionpb.Election service.
func RegisterElectionServer(s grpc.ServiceRegistrar, srv ElectionServer) {
	s.RegisterService(&electionServiceDesc, srv)
}

var lockServiceDesc = grpc.ServiceDesc{
	ServiceName: "v3lockpb.Lock",
	HandlerType: (*LockServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Lock", Handler: unary("/v3lockpb.Lock/Lock", LockServer.Lock)},
		{MethodName: "Unlock", Handler: unary("/v3lockpb.Lock/Unlock", LockServer.Unlock)},
	},
	Metadata: "v3lock.proto",
}

var electionServiceDesc = grpc.ServiceDesc{
	ServiceName: "v3electionpb.Election",
	HandlerType: (*ElectionServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Campaign", Handler: unary("/v3electionpb.Election/Campaign", ElectionServer.Campaign)},
		{MethodName: "Proclaim", Handler: unary("/v3electionpb.Election/Proclaim", ElectionServer.Proclaim)},
		{MethodName: "Leader", Handler: unary("/v3electionpb.Election/Leader", ElectionServer.Leader)},
		{MethodName: "Resign", Handler: unary("/v3electionpb.Election/Resign", ElectionServer.Resign)},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Observe",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			req := new(LeaderRequest)
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(ElectionServer).Observe(req, observeStream{stream})
		},
	}},
	Metadata: "v3election.proto",
}

// unary makes the grpc.MethodDesc handler of a unary method: decode the
// request, then call the method through the server's interceptors.
func unary[S any, Req any, Resp any](method string, call func(S, context.Context, *Req) (*Resp, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		req := new(Req)
		if err := dec(req); err != nil {
			return nil, err
		}
		if interceptor == nil {
			return call(srv.(S), ctx, req)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
		return interceptor(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			return call(srv.(S), ctx, req.(*Req))
		})
	}
}

type observeStream struct{ grpc.ServerStream }

func (s observeStream) Send(m *LeaderResponse) error { return s.ServerStream.SendMsg(m) }
