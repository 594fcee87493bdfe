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

type clusterServer struct {
	pb.UnimplementedClusterServer
	m Maintenance
}

func (s *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	members := s.m.Members()
	// etcd's Cluster service headers carry no revision.
	hdr := s.m.Header(0)
	hdr.Revision = 0
	resp := &pb.MemberListResponse{Header: hdr, Members: make([]*pb.Member, len(members))}
	for i, m := range members {
		resp.Members[i] = &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
	}
	return resp, nil
}
