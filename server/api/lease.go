package api

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairn-kv/cairn/lease"
)

// Leases is what the Lease service needs from the member.
type Leases interface {
	Headers
	LeaseGrant(context.Context, *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	LeaseRevoke(context.Context, *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error)
	LeaseRenew(ctx context.Context, id int64) (ttl int64, err error)
	LeaseTimeToLive(context.Context, *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases(context.Context, *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error)
}

type leaseServer struct {
	pb.UnimplementedLeaseServer
	l Leases
	x *authn // nil: no auth
}

// withCaller requires a caller while auth is enabled and returns ctx
// carrying it for the proposal (etcd's requireAuthInfo before LeaseGrant
// and LeaseRevoke; apply checks the revoke's keys).
func (s *leaseServer) withCaller(ctx context.Context) (context.Context, error) {
	if err := s.x.requireAuthInfo(ctx); err != nil {
		return ctx, err
	}
	return s.x.withInfo(ctx)
}

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	ctx, err := s.withCaller(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := s.l.LeaseGrant(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	fill(s.l, &resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	ctx, err := s.withCaller(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := s.l.LeaseRevoke(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	fill(s.l, &resp.Header)
	return resp, nil
}

// LeaseTimeToLive answers TTL -1 for a lease that does not exist, as etcd.
// While auth is enabled a caller is required, and listing the keys needs
// read permission on each (etcd's checkLeaseTimeToLive).
func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := s.x.requireAuthInfo(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	var rev uint64
	if r.Keys {
		var err error
		if rev, err = s.x.checkLeaseKeys(ctx, []int64{r.ID}, false); err != nil {
			return nil, toGRPCError(err)
		}
	}
	resp, err := s.l.LeaseTimeToLive(ctx, r)
	if errors.Is(err, lease.ErrLeaseNotFound) {
		resp, err = &pb.LeaseTimeToLiveResponse{Header: &pb.ResponseHeader{}, ID: r.ID, TTL: -1}, nil
	}
	if err == nil && r.Keys {
		err = s.x.staleSince(rev)
	}
	if err != nil {
		return nil, toGRPCError(err)
	}
	fill(s.l, &resp.Header)
	return resp, nil
}

// LeaseLeases needs read permission on every key of every lease while
// auth is enabled (etcd's checkLeaseLeases).
func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	resp, err := s.l.LeaseLeases(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	ids := make([]int64, len(resp.Leases))
	for i, l := range resp.Leases {
		ids[i] = l.ID
	}
	rev, err := s.x.checkLeaseKeys(ctx, ids, false)
	if err == nil {
		err = s.x.staleSince(rev)
	}
	if err != nil {
		return nil, toGRPCError(err)
	}
	fill(s.l, &resp.Header)
	return resp, nil
}

// LeaseKeepAlive answers each request with the lease's TTL, or TTL 0 for a
// lease that does not exist (or has expired), as etcd.
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	errc := make(chan error, 1)
	go func() { errc <- s.keepAlive(stream) }()
	select {
	case err := <-errc:
		return err
	case <-stream.Context().Done():
		if errors.Is(stream.Context().Err(), context.Canceled) {
			return rpctypes.ErrGRPCNoLeader
		}
		return stream.Context().Err()
	}
}

func (s *leaseServer) keepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &pb.LeaseKeepAliveResponse{ID: req.ID, Header: s.l.Header(0)}
		// etcd's checkLeaseRenew: write permission on the lease's keys.
		rev, err := s.x.checkLeaseKeys(stream.Context(), []int64{req.ID}, true)
		if err == nil {
			err = s.x.staleSince(rev)
		}
		if err != nil {
			return toGRPCError(err)
		}
		ttl, err := s.l.LeaseRenew(stream.Context(), req.ID)
		if errors.Is(err, lease.ErrLeaseNotFound) {
			ttl, err = 0, nil
		}
		if err != nil {
			return toGRPCError(err)
		}
		resp.TTL = ttl
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
