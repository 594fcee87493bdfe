package transport

import (
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The corruption checks' calls: a peer's HashKV, and a member reporting
// its own storage corrupt.

func hashKVHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	t := srv.(*Transport)
	if _, err := t.sender(ctx); err != nil {
		return nil, err
	}
	var req pb.HashKVRequest
	if err := decodeCall(dec, &req); err != nil {
		return nil, err
	}
	if t.h.HashKV == nil {
		return nil, status.Error(codes.Unimplemented, "transport: no HashKV")
	}
	resp, err := t.h.HashKV(ctx, &req)
	if err != nil {
		// The caller tells the errors apart by their text, as etcd's
		// peers do with /members/hashkv's.
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return resp, nil
}

// HashKV asks peer to for its HashKV at r.Revision (0: its current
// revision). An error the peer's handler returned comes back as a gRPC
// status whose message is that error's text.
func (t *Transport) HashKV(ctx context.Context, to uint64, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	var resp pb.HashKVResponse
	if err := t.invoke(ctx, to, "HashKV", r, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func reportCorruptHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	t := srv.(*Transport)
	from, err := t.sender(ctx)
	if err != nil {
		return nil, err
	}
	var req blob
	if err := dec(&req); err != nil {
		return nil, err
	}
	if t.h.CorruptReported == nil {
		return nil, status.Error(codes.Unimplemented, "transport: no CorruptReported")
	}
	if err := t.h.CorruptReported(ctx, from); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &blob{}, nil
}

// ReportCorrupt asks peer to to raise the CORRUPT alarm for this member
// (whose storage is corrupt) through Raft, and returns once it is
// committed. The peer raises it only for the caller it authenticated.
func (t *Transport) ReportCorrupt(ctx context.Context, to uint64) error {
	return t.invoke(ctx, to, "ReportCorrupt", &blob{}, &blob{})
}

// invoke makes a unary call to peer to.
func (t *Transport) invoke(ctx context.Context, to uint64, method string, req, resp any) error {
	t.mu.Lock()
	p, ok := t.peers[to]
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("transport: unknown peer %x", to)
	}
	return p.conn.Invoke(t.outgoing(ctx), "/"+serviceName+"/"+method, req, resp)
}
