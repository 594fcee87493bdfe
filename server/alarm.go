package server

import (
	"context"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/alarm"
	"github.com/cairn-kv/cairn/apply"
)

// Alarm raises, clears or lists alarms through Raft, as etcd's
// Maintenance.Alarm (`etcdctl alarm list`, `alarm disarm`). An action other
// than GET, ACTIVATE or DEACTIVATE is refused before it is proposed.
func (m *Member) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	switch r.Action {
	case pb.AlarmRequest_GET, pb.AlarmRequest_ACTIVATE, pb.AlarmRequest_DEACTIVATE:
	default:
		return nil, apply.ErrAlarmAction
	}
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{Alarm: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AlarmResponse), nil
}

// Alarms lists the active alarms (for Status), by type then member.
func (m *Member) Alarms() []*pb.AlarmMember { return m.alarms.Get(pb.AlarmType_NONE) }

// statusErrors is StatusResponse.errors as etcd fills it: "no leader"
// without a leader, then one entry per active alarm.
func (m *Member) statusErrors(lead uint64) []string {
	var errs []string
	if lead == 0 {
		errs = append(errs, "etcdserver: no leader")
	}
	for _, a := range m.Alarms() {
		errs = append(errs, alarm.String(a))
	}
	return errs
}

// raiseNoSpace proposes this member's NOSPACE alarm, once, in the
// background, as etcd does when a write exceeds the quota: from then on the
// cluster refuses writes that add data until an operator makes room and
// disarms it.
func (m *Member) raiseNoSpace() {
	if m.alarms.Active(pb.AlarmType_NOSPACE) || !m.raisingNoSpace.CompareAndSwap(false, true) {
		return
	}
	m.lg.Warn("message exceeded backend quota; raising alarm", "quota-size-bytes", m.cfg.QuotaBackendBytes)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer m.raisingNoSpace.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.reqTimeout())
		defer cancel()
		go func() {
			select {
			case <-m.stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, err := m.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
			Action: pb.AlarmRequest_ACTIVATE, MemberID: m.cluster.LocalID, Alarm: pb.AlarmType_NOSPACE,
		}})
		if err != nil {
			m.lg.Warn("cannot raise the NOSPACE alarm", "error", fmt.Sprint(err))
		}
	}()
}

// Defragment compacts the whole store in Pebble (etcd's defrag rewrites its
// bbolt file, blocking every request meanwhile): tombstones and overwritten
// versions are dropped and space goes back to the file system, while reads
// and writes go on. It returns once the compaction is done.
func (m *Member) Defragment(ctx context.Context) error {
	m.defragMu.RLock()
	defer m.defragMu.RUnlock()
	select {
	case <-m.stopping:
		return ErrStopped
	default:
	}
	start := time.Now()
	before := m.eng.Size()
	if err := m.eng.DB.Compact(ctx, []byte{0}, []byte{0xff, 0xff}, true); err != nil {
		return err
	}
	m.lg.Info("finished defragmenting the storage", "took", time.Since(start).Round(time.Millisecond), "size-before", before)
	return nil
}
