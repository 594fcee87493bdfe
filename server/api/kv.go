package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/apply"
	"github.com/cairn-kv/cairn/auth"
)

// KV is what the KV service needs from the member.
type KV interface {
	Range(context.Context, *pb.RangeRequest) (*pb.RangeResponse, error)
	// RangeStream sends the range in chunks, the last with the header.
	RangeStream(ctx context.Context, r *pb.RangeRequest, send func(*pb.RangeResponse) error) error
	Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(context.Context, *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	Txn(context.Context, *pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(context.Context, *pb.CompactionRequest) (*pb.CompactionResponse, error)
}

// Headers fills response headers with the member's identity and term.
type Headers interface {
	// Header returns a header at revision rev (0: the current revision).
	Header(rev int64) *pb.ResponseHeader
}

type kvServer struct {
	pb.UnimplementedKVServer
	kv        KV
	hdr       Headers
	maxTxnOps int
	x         *authn // nil: no auth
}

// fill completes a header the member started (which may carry a revision).
func fill(h Headers, rh **pb.ResponseHeader) {
	rev := int64(0)
	if *rh != nil {
		rev = (*rh).Revision
	}
	*rh = h.Header(rev)
}

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRangeRequest(r); err != nil {
		return nil, err
	}
	var resp *pb.RangeResponse
	err := s.x.doSerialize(ctx, func(ai *auth.Info) error {
		return s.x.a.AuthStore().IsRangePermitted(ai, r.Key, r.RangeEnd)
	}, func() (err error) {
		resp, err = s.kv.Range(ctx, r)
		return err
	})
	if err != nil {
		return nil, toGRPCError(err)
	}
	fill(s.hdr, &resp.Header)
	return resp, nil
}

// RangeStream is etcd 3.7's KV.RangeStream (etcd's v3rpc/key.go): the
// request checks of Range, then Unimplemented for sort orders and revision
// filters, which a client then serves with a unary Range. The member fills
// the last chunk's header revision; the cluster, member and term are
// filled here.
func (s *kvServer) RangeStream(r *pb.RangeRequest, stream pb.KV_RangeStreamServer) error {
	if err := checkRangeStreamRequest(r); err != nil {
		return err
	}
	ctx := stream.Context()
	err := s.x.doSerialize(ctx, func(ai *auth.Info) error {
		return s.x.a.AuthStore().IsRangePermitted(ai, r.Key, r.RangeEnd)
	}, func() error {
		return s.kv.RangeStream(ctx, r, func(resp *pb.RangeResponse) error {
			if resp.Header != nil {
				fill(s.hdr, &resp.Header)
			}
			// Encode first, then let the key-values go: gRPC holds the
			// encoding until the client's flow control lets it out, so a
			// stream waiting on its client holds its chunk once, not
			// twice. The member (server/rangestream.go) does not use resp
			// after send.
			msg := new(grpc.PreparedMsg)
			if err := msg.Encode(stream, &pb.RangeStreamResponse{RangeResponse: resp}); err != nil {
				return err
			}
			resp.Kvs = nil
			return stream.SendMsg(msg)
		})
	})
	if err != nil {
		return toGRPCError(err)
	}
	return nil
}

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPutRequest(r); err != nil {
		return nil, err
	}
	ctx, err := s.x.withInfo(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := s.kv.Put(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	fill(s.hdr, &resp.Header)
	return resp, nil
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDeleteRequest(r); err != nil {
		return nil, err
	}
	ctx, err := s.x.withInfo(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := s.kv.DeleteRange(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	fill(s.hdr, &resp.Header)
	return resp, nil
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxnRequest(r, s.maxTxnOps); err != nil {
		return nil, err
	}
	// Overlap checks come after the size check, so they stay cheap.
	if _, _, err := checkIntervals(r.Success); err != nil {
		return nil, err
	}
	if _, _, err := checkIntervals(r.Failure); err != nil {
		return nil, err
	}
	var resp *pb.TxnResponse
	var err error
	if s.x != nil && apply.IsTxnReadOnly(r) {
		// Served locally: checked here, as etcd's doSerialize.
		err = s.x.doSerialize(ctx, s.x.checkTxn(r), func() (err error) {
			resp, err = s.kv.Txn(ctx, r)
			return err
		})
	} else {
		if ctx, err = s.x.withInfo(ctx); err == nil {
			resp, err = s.kv.Txn(ctx, r)
		}
	}
	if err != nil {
		return nil, toGRPCError(err)
	}
	fill(s.hdr, &resp.Header)
	return resp, nil
}

// Compact needs role root while auth is enabled (etcd).
func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	ctx, err := s.x.withInfo(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := s.kv.Compact(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	fill(s.hdr, &resp.Header)
	return resp, nil
}

// Request checks, as etcd's v3rpc/key.go.

func checkRangeRequest(r *pb.RangeRequest) error {
	if r == nil || len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

// checkRangeStreamRequest is etcd's: RangeStream serves only mvcc's key
// order, without revision filters.
func checkRangeStreamRequest(r *pb.RangeRequest) error {
	if err := checkRangeRequest(r); err != nil {
		return err
	}
	if !(r.SortOrder == pb.RangeRequest_NONE || (r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND)) {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support custom sort orders")
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support revision filters")
	}
	return nil
}

func checkPutRequest(r *pb.PutRequest) error {
	if r == nil || len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.IgnoreValue && len(r.Value) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.IgnoreLease && r.Lease != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

func checkDeleteRequest(r *pb.DeleteRangeRequest) error {
	if r == nil || len(r.Key) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	return nil
}

func checkTxnRequest(r *pb.TxnRequest, maxTxnOps int) error {
	if r == nil {
		return rpctypes.ErrGRPCKeyNotFound
	}
	opc := max(len(r.Compare), len(r.Success), len(r.Failure))
	if opc > maxTxnOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if err := checkRequestOp(op, maxTxnOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRequestOp(op *pb.RequestOp, maxTxnOps int) error {
	switch v := op.Request.(type) {
	case *pb.RequestOp_RequestRange:
		return checkRangeRequest(v.RequestRange)
	case *pb.RequestOp_RequestPut:
		return checkPutRequest(v.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return checkDeleteRequest(v.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return checkTxnRequest(v.RequestTxn, maxTxnOps)
	default:
		// An op with no request at all.
		return rpctypes.ErrGRPCKeyNotFound
	}
}
