package transport

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ErrLeaseNotFound is returned by forwarded lease calls for a lease the
// leader does not have.
var ErrLeaseNotFound = errors.New("transport: lease not found")

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
