package compat

import (
	"context"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// alarmStep is one request of the alarm transcript, and its normalized
// outcome on one server.
type alarmStep struct {
	name string
	do   func(c *grpc.ClientConn) outcome
}

func alarmCall(action pb.AlarmRequest_AlarmAction, member uint64, typ pb.AlarmType) func(*grpc.ClientConn) outcome {
	return func(c *grpc.ClientConn) outcome {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		r, err := pb.NewMaintenanceClient(c).Alarm(ctx, &pb.AlarmRequest{Action: action, MemberID: member, Alarm: typ})
		if err != nil {
			return outcome{err: status.Convert(err)}
		}
		normalizeMaintenance(r)
		// etcd lists alarms in map order.
		slices.SortFunc(r.Alarms, func(a, b *pb.AlarmMember) int { return int(a.Alarm) - int(b.Alarm) })
		return outcome{resp: r}
	}
}

func kvCall(req any) func(*grpc.ClientConn) outcome {
	return func(c *grpc.ClientConn) outcome { return call(pb.NewKVClient(c), req, nil) }
}

// TestAlarmDiff: raising, listing and clearing alarms, and what NOSPACE and
// CORRUPT let through, against etcd: the same responses and errors. An
// alarm type outside the enum is stored and listed, as etcd does.
func TestAlarmDiff(t *testing.T) {
	t.Parallel()
	cairnEps, etcdEps := cluster.StartBoth(t)
	etcdConn, cairnConn := dial(t, etcdEps[0]), dial(t, cairnEps[0])
	grant := func(c *grpc.ClientConn) outcome {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		r, err := pb.NewLeaseClient(c).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 77, TTL: 60})
		if err != nil {
			return settle(nil, nil, err)
		}
		return settle(r, r.Header, nil)
	}
	readTxn := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a")}}}}}
	writeTxn := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("t"), Value: []byte("v")}}}}}
	steps := []alarmStep{
		{"put", kvCall(put("a", "1"))},
		{"activate NOSPACE", alarmCall(pb.AlarmRequest_ACTIVATE, 1, pb.AlarmType_NOSPACE)},
		{"activate NOSPACE again", alarmCall(pb.AlarmRequest_ACTIVATE, 1, pb.AlarmType_NOSPACE)},
		{"activate type 42", alarmCall(pb.AlarmRequest_ACTIVATE, 2, pb.AlarmType(42))},
		{"activate NONE", alarmCall(pb.AlarmRequest_ACTIVATE, 3, pb.AlarmType_NONE)},
		{"get all", alarmCall(pb.AlarmRequest_GET, 0, pb.AlarmType_NONE)},
		{"get NOSPACE", alarmCall(pb.AlarmRequest_GET, 0, pb.AlarmType_NOSPACE)},
		{"put under NOSPACE", kvCall(put("a", "2"))},
		{"write txn under NOSPACE", kvCall(writeTxn)},
		{"read txn under NOSPACE", kvCall(readTxn)},
		{"lease grant under NOSPACE", grant},
		{"range under NOSPACE", kvCall(&pb.RangeRequest{Key: []byte("a")})},
		{"delete under NOSPACE", kvCall(del("a"))},
		{"deactivate NOSPACE of another member", alarmCall(pb.AlarmRequest_DEACTIVATE, 9, pb.AlarmType_NOSPACE)},
		{"deactivate NOSPACE", alarmCall(pb.AlarmRequest_DEACTIVATE, 1, pb.AlarmType_NOSPACE)},
		{"put after disarm", kvCall(put("a", "3"))},
		{"activate CORRUPT", alarmCall(pb.AlarmRequest_ACTIVATE, 1, pb.AlarmType_CORRUPT)},
		{"put under CORRUPT", kvCall(put("a", "4"))},
		{"delete under CORRUPT", kvCall(del("a"))},
		{"compact under CORRUPT", kvCall(&pb.CompactionRequest{Revision: 2})},
		{"deactivate CORRUPT", alarmCall(pb.AlarmRequest_DEACTIVATE, 1, pb.AlarmType_CORRUPT)},
		{"deactivate type 42", alarmCall(pb.AlarmRequest_DEACTIVATE, 2, pb.AlarmType(42))},
		{"get all at the end", alarmCall(pb.AlarmRequest_GET, 0, pb.AlarmType_NONE)},
		{"lease grant at the end", grant},
	}
	for _, s := range steps {
		e, k := s.do(etcdConn), s.do(cairnConn)
		if d := diffOutcomes(e, k); d != "" {
			t.Errorf("%s: Cairn differs from etcd\netcd:  %s\ncairn: %s\ndiff (-etcd +cairn):\n%s", s.name, e, k, d)
		}
	}
}

// TestAlarmHealthDiff: /health and /readyz under each alarm, against
// etcd: /health fails with "ALARM NOSPACE" or "ALARM CORRUPT" unless
// ?exclude= names the alarm; /readyz's data_corruption check fails under
// CORRUPT.
func TestAlarmHealthDiff(t *testing.T) {
	t.Parallel()
	cairnEps, etcdEps := cluster.StartBoth(t)
	etcdConn, cairnConn := dial(t, etcdEps[0]), dial(t, cairnEps[0])
	paths := []string{"/health", "/health?exclude=NOSPACE", "/health?exclude=CORRUPT", "/health?exclude=NOSPACE&exclude=CORRUPT",
		"/health?serializable=true", "/readyz/data_corruption", "/readyz?verbose", "/livez"}
	for _, alarm := range []pb.AlarmType{pb.AlarmType_NONE, pb.AlarmType_NOSPACE, pb.AlarmType_CORRUPT} {
		if alarm != pb.AlarmType_NONE {
			for _, c := range []*grpc.ClientConn{etcdConn, cairnConn} {
				if o := alarmCall(pb.AlarmRequest_ACTIVATE, 1, alarm)(c); o.err != nil {
					t.Fatalf("activate %s: %v", alarm, o.err)
				}
			}
		}
		for _, path := range paths {
			e := httpGet(t, "GET", "http://"+etcdEps[0]+path)
			c := httpGet(t, "GET", "http://"+cairnEps[0]+path)
			e.body, c.body = sortLines(e.body), sortLines(c.body)
			if e != c {
				t.Errorf("under %s, GET %s:\netcd:  %d %q %q\ncairn: %d %q %q", alarm, path, e.status, e.contentType, e.body, c.status, c.contentType, c.body)
			}
		}
		// One alarm at a time: with several, etcd reports one in map order.
		if alarm != pb.AlarmType_NONE {
			for _, c := range []*grpc.ClientConn{etcdConn, cairnConn} {
				if o := alarmCall(pb.AlarmRequest_DEACTIVATE, 1, alarm)(c); o.err != nil {
					t.Fatalf("deactivate %s: %v", alarm, o.err)
				}
			}
		}
	}
}
