package api

import (
	"context"
	"crypto/sha256"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/server"
)

// Maintenance is what the Maintenance and Cluster services need from the member.
type Maintenance interface {
	Headers
	Status() *pb.StatusResponse
	Members() []membership.Member
	MemberAdd(ctx context.Context, peerURLs []string, isLearner bool) (membership.Member, []membership.Member, error)
	MemberRemove(ctx context.Context, id uint64) ([]membership.Member, error)
	MemberUpdate(ctx context.Context, id uint64, peerURLs []string) ([]membership.Member, error)
	MemberPromote(ctx context.Context, id uint64) ([]membership.Member, error)
	IsLearner() bool
	MoveLeader(ctx context.Context, target uint64) error
	HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error)
	Snapshot(ctx context.Context) (*server.Backup, error)
	Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error)
	Defragment(ctx context.Context) error
	Hash(ctx context.Context) (*pb.HashResponse, error)
}

// maintenanceServer is etcd's Maintenance service. While auth is enabled
// Status and listing alarms need a caller, every other call role root
// (etcd's authMaintenanceServer).
type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	m Maintenance
	x *authn // nil: no auth
}

func (s *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	if err := s.x.requireAuthInfo(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	return s.m.Status(), nil
}

// Alarm raises, clears or lists alarms (see server.Member.Alarm).
func (s *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	check := s.x.isAdmin
	if r.GetAction() == pb.AlarmRequest_GET {
		check = s.x.requireAuthInfo
	}
	if err := check(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := s.m.Alarm(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Header = s.m.Header(0)
	return resp, nil
}

// Defragment compacts the member's storage (see server.Member.Defragment);
// reads and writes go on meanwhile. Like etcd's, the response has no header.
func (s *maintenanceServer) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if err := s.m.Defragment(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.DefragmentResponse{}, nil
}

// HashKV hashes the member's key-value history up to a revision, for
// comparing members (see server.Member.HashKV).
func (s *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := s.m.HashKV(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

// snapshotChunk is how many bytes each Snapshot response carries, as etcd's
// snapshotSendBufferSize.
const snapshotChunk = 32 * 1024

// Snapshot streams a backup in etcd's format (see server.Member.Snapshot):
// chunks of the file with the bytes remaining after each, then one more
// response whose blob is the SHA-256 of everything sent, as etcd's
// maintenance server does; etcdctl snapshot save checks it.
func (s *maintenanceServer) Snapshot(r *pb.SnapshotRequest, srv pb.Maintenance_SnapshotServer) error {
	if err := s.x.isAdmin(srv.Context()); err != nil {
		return toGRPCError(err)
	}
	b, err := s.m.Snapshot(srv.Context())
	if err != nil {
		return toGRPCError(err)
	}
	defer b.File.Close()
	// The file ends with its SHA-256: send the bbolt part, then the hash.
	total := b.Size - sha256.Size
	h := sha256.New()
	for sent := int64(0); sent < total; {
		buf := make([]byte, min(snapshotChunk, total-sent)) // Send may keep it: never reused
		if _, err := io.ReadFull(b.File, buf); err != nil {
			return toGRPCError(err)
		}
		sent += int64(len(buf))
		h.Write(buf)
		if err := srv.Send(&pb.SnapshotResponse{RemainingBytes: uint64(total - sent), Blob: buf, Version: b.Version}); err != nil {
			return err
		}
	}
	return srv.Send(&pb.SnapshotResponse{RemainingBytes: 0, Blob: h.Sum(nil), Version: b.Version})
}

// Hash is a hash of the member's whole replicated state (see
// server.Member.Hash), for comparing members.
func (s *maintenanceServer) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := s.m.Hash(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	if err := s.m.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MoveLeaderResponse{Header: s.m.Header(0)}, nil
}

// Downgrade is not implemented; like etcd's, it needs role root first.
func (s *maintenanceServer) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	return s.UnimplementedMaintenanceServer.Downgrade(ctx, r)
}

// clusterServer is etcd's Cluster service: while auth is enabled,
// changing membership needs role root, MemberList a caller (etcd 3.7's
// requireAuthInfo).
type clusterServer struct {
	pb.UnimplementedClusterServer
	m Maintenance
	x *authn // nil: no auth
}

// header is the Cluster service's header: etcd's carries no revision.
func (s *clusterServer) header() *pb.ResponseHeader {
	hdr := s.m.Header(0)
	hdr.Revision = 0
	return hdr
}

func toPBMembers(members []membership.Member) []*pb.Member {
	out := make([]*pb.Member, len(members))
	for i, m := range members {
		out[i] = &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
	}
	return out
}

func (s *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if err := s.x.requireAuthInfo(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberListResponse{Header: s.header(), Members: toPBMembers(s.m.Members())}, nil
}

func (s *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	nm, members, err := s.m.MemberAdd(ctx, r.PeerURLs, r.IsLearner)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberAddResponse{Header: s.header(), Member: &pb.Member{ID: nm.ID, PeerURLs: nm.PeerURLs, IsLearner: nm.IsLearner}, Members: toPBMembers(members)}, nil
}

func (s *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	members, err := s.m.MemberRemove(ctx, r.ID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberRemoveResponse{Header: s.header(), Members: toPBMembers(members)}, nil
}

func (s *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	members, err := s.m.MemberUpdate(ctx, r.ID, r.PeerURLs)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberUpdateResponse{Header: s.header(), Members: toPBMembers(members)}, nil
}

func (s *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if err := s.x.isAdmin(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	members, err := s.m.MemberPromote(ctx, r.ID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberPromoteResponse{Header: s.header(), Members: toPBMembers(members)}, nil
}
