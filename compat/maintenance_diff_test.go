package compat

// Maintenance, Cluster and health differential test.
//
// What it proves: the other services Cairn implements so far — Maintenance
// Status, Alarm, Defragment and HashKV, Cluster MemberList, and the gRPC health
// service — answer as etcd does, compared whole as in kv_diff_test.go.
// Besides the header identity, what must differ between two clusters is
// reduced to "set or not": member IDs, raft term and indexes, database
// sizes, and the ports in member URLs. Whether the leader is this member is
// kept. The server version is compared as "a 3.7 release" (Cairn reports
// the API release it implements, 3.7.0). Storage versions, the quota,
// errors, learner flags and downgrade info must match exactly. Status is
// compared once etcd's storage version has settled (see
// cluster.WaitEtcdSettled).

import (
	"context"
	"regexp"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// maintenanceCall is one request to a non-KV service.
type maintenanceCall struct {
	name string
	call func(ctx context.Context, conn *grpc.ClientConn) (any, error)
}

var maintenanceCalls = []maintenanceCall{
	{"Status", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewMaintenanceClient(c).Status(ctx, &pb.StatusRequest{})
	}},
	{"Alarm GET", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewMaintenanceClient(c).Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_GET})
	}},
	{"Alarm DEACTIVATE NONE", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewMaintenanceClient(c).Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, Alarm: pb.AlarmType_NONE})
	}},
	{"Defragment", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewMaintenanceClient(c).Defragment(ctx, &pb.DefragmentRequest{})
	}},
	{"MemberList", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewClusterClient(c).MemberList(ctx, &pb.MemberListRequest{})
	}},
	{"MemberList linearizable", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewClusterClient(c).MemberList(ctx, &pb.MemberListRequest{Linearizable: true})
	}},
	// After the setup (revision 5, compacted at 3). The hash itself differs
	// (etcd hashes its bbolt pages, Cairn its versions): only whether it
	// is set is compared; revisions and errors exactly.
	{"HashKV current", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewMaintenanceClient(c).HashKV(ctx, &pb.HashKVRequest{})
	}},
	{"HashKV at the compacted revision", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewMaintenanceClient(c).HashKV(ctx, &pb.HashKVRequest{Revision: 3})
	}},
	{"HashKV below the compacted revision", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewMaintenanceClient(c).HashKV(ctx, &pb.HashKVRequest{Revision: 2})
	}},
	{"HashKV future revision", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewMaintenanceClient(c).HashKV(ctx, &pb.HashKVRequest{Revision: 100})
	}},
	// Hash: etcd hashes its bbolt file, Cairn its replicated state; the
	// value differs by design, the header (revision) must not.
	{"Hash", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return pb.NewMaintenanceClient(c).Hash(ctx, &pb.HashRequest{})
	}},
	{"Health Check", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{})
	}},
	{"Health Check unknown service", func(ctx context.Context, c *grpc.ClientConn) (any, error) {
		return healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	}},
}

func TestMaintenanceDiff(t *testing.T) {
	t.Parallel()
	cairnEps, etcdEps := cluster.StartBoth(t)
	etcdConn, cairnConn := dial(t, etcdEps[0]), dial(t, cairnEps[0])
	// Some state, so that revisions and sizes are not those of a new store.
	for _, req := range []any{put("a", "1"), put("b", "2"), del("a"), put("c", "3"), &pb.CompactionRequest{Revision: 3, Physical: true}} {
		for _, kv := range []pb.KVClient{pb.NewKVClient(etcdConn), pb.NewKVClient(cairnConn)} {
			if o := call(kv, req, nil); o.err != nil {
				t.Fatalf("setup %s: %v", describe(req), o.err)
			}
		}
	}
	cluster.WaitEtcdSettled(t, etcdEps[0])
	for _, mc := range maintenanceCalls {
		e := callMaintenance(etcdConn, mc)
		k := callMaintenance(cairnConn, mc)
		if d := diffOutcomes(e, k); d != "" {
			t.Errorf("%s: Cairn differs from etcd\netcd:  %s\ncairn: %s\ndiff (-etcd +cairn):\n%s", mc.name, e, k, d)
		}
	}
}

func callMaintenance(conn *grpc.ClientConn, mc maintenanceCall) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := mc.call(ctx, conn)
	if err != nil {
		return outcome{err: status.Convert(err)}
	}
	normalizeMaintenance(resp)
	return outcome{resp: resp}
}

var rePort = regexp.MustCompile(`:\d+$`)

// reVersion37 matches an etcd 3.7 release number.
var reVersion37 = regexp.MustCompile(`\b3\.7\.\d+\b`)

func normalizeMaintenance(resp any) {
	switch r := resp.(type) {
	case *pb.StatusResponse:
		// Cairn reports the etcd API release it implements (3.7.0), not
		// etcd's patch release.
		r.Version = reVersion37.ReplaceAllString(r.Version, "3.7.x")
		if r.Header != nil && r.Leader == r.Header.MemberId {
			r.Leader = 1 // this member leads
		} else {
			r.Leader = 2 * setOrNot(r.Leader)
		}
		normalizeHeader(r.Header)
		r.RaftIndex = setOrNot(r.RaftIndex)
		r.RaftAppliedIndex = setOrNot(r.RaftAppliedIndex)
		r.RaftTerm = setOrNot(r.RaftTerm)
		r.DbSize = int64(setOrNot(uint64(r.DbSize)))
		r.DbSizeInUse = int64(setOrNot(uint64(r.DbSizeInUse)))
	case *pb.HashResponse:
		normalizeHeader(r.Header)
		r.Hash = uint32(setOrNot(uint64(r.Hash)))
	case *pb.AlarmResponse:
		normalizeHeader(r.Header)
		for _, a := range r.Alarms {
			a.MemberID = setOrNot(a.MemberID)
		}
	case *pb.DefragmentResponse:
		normalizeHeader(r.Header)
	case *pb.HashKVResponse:
		normalizeHeader(r.Header)
		r.Hash = uint32(setOrNot(uint64(r.Hash)))
	case *pb.MemberListResponse:
		normalizeHeader(r.Header)
		for _, m := range r.Members {
			m.ID = setOrNot(m.ID)
			for i, u := range m.PeerURLs {
				m.PeerURLs[i] = rePort.ReplaceAllString(u, ":<port>")
			}
			for i, u := range m.ClientURLs {
				m.ClientURLs[i] = rePort.ReplaceAllString(u, ":<port>")
			}
		}
	case *healthpb.HealthCheckResponse:
		// No header: compared whole.
	default:
		panic("normalizeMaintenance: unexpected response type")
	}
}
