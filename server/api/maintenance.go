package api

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/membership"
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
}

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	m Maintenance
}

func (s *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	return s.m.Status(), nil
}

// Alarm reports no alarms: Cairn raises none yet (NOSPACE is returned as
// an error on the write instead).
func (s *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{Header: s.m.Header(0)}, nil
}

// Defragment is a no-op that succeeds: Pebble reclaims space by compaction,
// with no stop-the-world rewrite. Like etcd's, the response has no header.
func (s *maintenanceServer) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	return &pb.DefragmentResponse{}, nil
}

// HashKV hashes the member's key-value history up to a revision, for
// comparing members (see server.Member.HashKV).
func (s *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	resp, err := s.m.HashKV(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := s.m.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MoveLeaderResponse{Header: s.m.Header(0)}, nil
}

type clusterServer struct {
	pb.UnimplementedClusterServer
	m Maintenance
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
	return &pb.MemberListResponse{Header: s.header(), Members: toPBMembers(s.m.Members())}, nil
}

func (s *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	nm, members, err := s.m.MemberAdd(ctx, r.PeerURLs, r.IsLearner)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberAddResponse{Header: s.header(), Member: &pb.Member{ID: nm.ID, PeerURLs: nm.PeerURLs, IsLearner: nm.IsLearner}, Members: toPBMembers(members)}, nil
}

func (s *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	members, err := s.m.MemberRemove(ctx, r.ID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberRemoveResponse{Header: s.header(), Members: toPBMembers(members)}, nil
}

func (s *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	members, err := s.m.MemberUpdate(ctx, r.ID, r.PeerURLs)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberUpdateResponse{Header: s.header(), Members: toPBMembers(members)}, nil
}

func (s *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	members, err := s.m.MemberPromote(ctx, r.ID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return &pb.MemberPromoteResponse{Header: s.header(), Members: toPBMembers(members)}, nil
}
