package apply

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/mvcc"
)

// Errors of the alarm-aware applier, as etcd's etcdserver errors.
var (
	// ErrNoSpace fails a write that adds data while a NOSPACE alarm is
	// active (etcd's capped applier: puts, txns with writes, lease grants).
	ErrNoSpace = errors.New("apply: database space exceeded")
	// ErrCorrupt fails every write while a CORRUPT alarm is active.
	ErrCorrupt = errors.New("apply: corrupt cluster")
	// ErrAlarmAction is returned for an AlarmRequest whose action is not
	// GET, ACTIVATE or DEACTIVATE (etcd 3.6 panics on one).
	ErrAlarmAction = errors.New("apply: unknown alarm action")
)

// Alarms is the alarm state machine as apply uses it (package alarm).
type Alarms interface {
	Activate(b *pebble.Batch, member uint64, typ pb.AlarmType) (*pb.AlarmMember, error)
	Deactivate(b *pebble.Batch, member uint64, typ pb.AlarmType) (*pb.AlarmMember, error)
	Get(typ pb.AlarmType) []*pb.AlarmMember
	Active(typ pb.AlarmType) bool
}

// checkAlarms refuses what the active alarms forbid, before anything is
// written: with CORRUPT every write (etcd's applierV3Corrupt), with NOSPACE
// what adds data (etcd's applierV3Capped). Reads, deletes, compaction and
// alarm changes go through under NOSPACE, so an operator can make room and
// disarm.
func (a *Applier) checkAlarms(req *pb.InternalRaftRequest) error {
	if a.Alarms == nil {
		return nil
	}
	if a.Alarms.Active(pb.AlarmType_CORRUPT) {
		switch {
		case req.Put != nil, req.DeleteRange != nil, req.Compaction != nil, req.LeaseGrant != nil, req.LeaseRevoke != nil,
			req.Txn != nil && !IsTxnReadOnly(req.Txn):
			return ErrCorrupt
		}
	}
	if a.Alarms.Active(pb.AlarmType_NOSPACE) {
		switch {
		case req.Put != nil, req.LeaseGrant != nil, req.Txn != nil && !IsTxnReadOnly(req.Txn):
			return ErrNoSpace
		}
	}
	return nil
}

// applyAlarm raises, clears or lists alarms, as etcd's applier: the
// response lists the alarm raised or cleared (none if it changed nothing),
// or those of the type asked for.
func (a *Applier) applyAlarm(wb *mvcc.Batch, r *pb.AlarmRequest) Result {
	if a.Alarms == nil {
		return Result{Err: ErrAlarmAction}
	}
	resp := &pb.AlarmResponse{Header: &pb.ResponseHeader{}}
	var m *pb.AlarmMember
	var err error
	switch r.Action {
	case pb.AlarmRequest_GET:
		resp.Alarms = a.Alarms.Get(r.Alarm)
		return Result{Resp: resp}
	case pb.AlarmRequest_ACTIVATE:
		m, err = a.Alarms.Activate(wb.Pebble(), r.MemberID, r.Alarm)
	case pb.AlarmRequest_DEACTIVATE:
		m, err = a.Alarms.Deactivate(wb.Pebble(), r.MemberID, r.Alarm)
	default:
		return Result{Err: ErrAlarmAction}
	}
	if err != nil {
		return Result{Err: err}
	}
	if m != nil {
		resp.Alarms = append(resp.Alarms, m)
	}
	return Result{Resp: resp}
}
