package apply

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/alarm"
	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/storage"
)

func alarmReq(action pb.AlarmRequest_AlarmAction, member uint64, typ pb.AlarmType) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: action, MemberID: member, Alarm: typ}}
}

// TestAlarmsGateWrites: under NOSPACE only what adds data is refused (etcd's
// capped applier), under CORRUPT every write; reads, deletes, compaction
// and alarm changes go through; disarming restores writes.
func TestAlarmsGateWrites(t *testing.T) {
	a, kv, _ := newAlarmApplier(t)
	readTxn := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k")}}}}}}
	writeTxn := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("t"), Value: []byte("v")}}}}}}
	del := &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("k")}}
	grant := func(id int64) *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: id, TTL: 10}}
	}
	revoke := &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 1}}
	compact := func(rev int64) *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}}
	}
	index := uint64(0)
	run := func(reqs ...*pb.InternalRaftRequest) []error {
		t.Helper()
		res, err := a.Apply(entries(t, index+1, reqs...))
		if err != nil {
			t.Fatal(err)
		}
		index += uint64(len(reqs))
		out := make([]error, len(res.Results))
		for i, r := range res.Results {
			out[i] = r.Err
		}
		return out
	}
	want := func(step string, got []error, want ...error) {
		t.Helper()
		for i := range want {
			if !errors.Is(got[i], want[i]) || (want[i] == nil) != (got[i] == nil) {
				t.Errorf("%s: request %d: got %v, want %v", step, i, got[i], want[i])
			}
		}
	}
	want("no alarm", run(putReq("k", "v"), grant(1)), nil, nil)
	want("raise NOSPACE", run(alarmReq(pb.AlarmRequest_ACTIVATE, 9, pb.AlarmType_NOSPACE)), nil)
	want("under NOSPACE", run(putReq("k", "w"), writeTxn, grant(2), readTxn, compact(2), del, revoke),
		ErrNoSpace, ErrNoSpace, ErrNoSpace, nil, nil, nil, nil)
	want("raise CORRUPT", run(alarmReq(pb.AlarmRequest_ACTIVATE, 8, pb.AlarmType_CORRUPT)), nil)
	want("under CORRUPT", run(putReq("k", "w"), del, compact(3), grant(3), revoke, readTxn),
		ErrCorrupt, ErrCorrupt, ErrCorrupt, ErrCorrupt, ErrCorrupt, nil)
	want("disarm both", run(alarmReq(pb.AlarmRequest_DEACTIVATE, 9, pb.AlarmType_NOSPACE), alarmReq(pb.AlarmRequest_DEACTIVATE, 8, pb.AlarmType_CORRUPT)), nil, nil)
	want("after disarm", run(putReq("k", "x"), writeTxn, grant(4)), nil, nil, nil)
	if got, want := keys(t, kv), "rev=5 k=x@4 t=v@5"; got != want { // the delete under NOSPACE made revision 3
		t.Errorf("store: %s, want %s", got, want)
	}
}

// TestAlarmRequests: responses as etcd's applier gives them; an alarm type
// outside the enum is stored and listed; an unknown action is refused.
func TestAlarmRequests(t *testing.T) {
	a, _, eng := newAlarmApplier(t)
	res, err := a.Apply(entries(t, 1,
		alarmReq(pb.AlarmRequest_ACTIVATE, 2, pb.AlarmType_NOSPACE),
		alarmReq(pb.AlarmRequest_ACTIVATE, 2, pb.AlarmType_NOSPACE), // again: listed, unchanged
		alarmReq(pb.AlarmRequest_ACTIVATE, 1, pb.AlarmType(42)),
		alarmReq(pb.AlarmRequest_ACTIVATE, 1, pb.AlarmType_NONE),
		alarmReq(pb.AlarmRequest_GET, 0, pb.AlarmType_NONE),
		alarmReq(pb.AlarmRequest_GET, 0, pb.AlarmType_NOSPACE),
		alarmReq(pb.AlarmRequest_DEACTIVATE, 3, pb.AlarmType_NOSPACE), // not raised
		alarmReq(pb.AlarmRequest_AlarmAction(7), 1, pb.AlarmType_NOSPACE),
	))
	if err != nil {
		t.Fatal(err)
	}
	wantAlarms := []string{
		"[member 2 NOSPACE]", "[member 2 NOSPACE]", "[member 1 42]", "[]",
		"[member 2 NOSPACE member 1 42]", "[member 2 NOSPACE]", "[]", "error",
	}
	for i, r := range res.Results {
		got := "error"
		if r.Err == nil {
			got = "["
			for j, m := range r.Resp.(*pb.AlarmResponse).Alarms {
				if j > 0 {
					got += " "
				}
				got += fmt.Sprintf("member %d %s", m.MemberID, m.Alarm)
			}
			got += "]"
		} else if !errors.Is(r.Err, ErrAlarmAction) {
			got = r.Err.Error()
		}
		if got != wantAlarms[i] {
			t.Errorf("request %d: %s, want %s", i, got, wantAlarms[i])
		}
	}
	// The alarms survive a reload from storage, as after a restart.
	reloaded, err := alarm.Load(eng.DB)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(reloaded.Get(pb.AlarmType_NONE)); got != 2 {
		t.Errorf("alarms after reload: %d, want 2", got)
	}
}

// newAlarmApplier is newApplier with an alarm store.
func newAlarmApplier(t *testing.T) (*Applier, *mvcc.Store, *storage.Engine) {
	t.Helper()
	a, kv, eng := newApplierEngine(t)
	var err error
	if a.Alarms, err = alarm.Load(eng.DB); err != nil {
		t.Fatal(err)
	}
	return a, kv, eng
}
