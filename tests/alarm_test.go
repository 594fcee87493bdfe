package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestQuotaNoSpaceAlarm: past --quota-backend-bytes a write raises the
// NOSPACE alarm, after which puts fail with etcd's error while reads,
// deletes, compaction and defragmentation work; the alarm survives a
// restart and clears only when disarmed.
func TestQuotaNoSpaceAlarm(t *testing.T) {
	m := newMember(t)
	p := m.start(t)
	cli := newClient(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, m.endpoint())
	if err != nil {
		t.Fatal(err)
	}
	memberID := st.Header.MemberId
	cli.Close()
	p.stop(t)

	// A quota a few MiB above what an empty member takes.
	quota := st.DbSize + 4<<20
	m.extra = []string{"--quota-backend-bytes", fmt.Sprint(quota)}
	p = m.start(t)
	cli = newClient(t, m)
	value := strings.Repeat("v", 64<<10)
	var full error
	for i := 0; i < 2000 && full == nil; i++ { // at most ~128 MiB
		_, full = cli.Put(ctx, fmt.Sprintf("big/%04d", i), value)
	}
	if !errors.Is(full, rpctypes.ErrNoSpace) {
		t.Fatalf("writing past the %d-byte quota: %v, want %v", quota, full, rpctypes.ErrNoSpace)
	}
	eventually(t, "the NOSPACE alarm is listed", func() error {
		alarms, err := cli.AlarmList(ctx)
		if err != nil {
			return err
		}
		if len(alarms.Alarms) != 1 || alarms.Alarms[0].Alarm != pb.AlarmType_NOSPACE || alarms.Alarms[0].MemberID != memberID {
			return fmt.Errorf("alarms %v", alarms.Alarms)
		}
		return nil
	})
	st, err = cli.Status(ctx, m.endpoint())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("memberID:%d alarm:NOSPACE", memberID); len(st.Errors) != 1 || st.Errors[0] != want {
		t.Errorf("status errors %q, want [%q]", st.Errors, want)
	}
	if _, err := cli.Put(ctx, "small", "x"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Errorf("put under NOSPACE: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	if _, err := cli.Grant(ctx, 60); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Errorf("lease grant under NOSPACE: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	get, err := cli.Get(ctx, "big/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || get.Count == 0 {
		t.Fatalf("count under NOSPACE: %v, %v", get, err)
	}
	del, err := cli.Delete(ctx, "big/", clientv3.WithPrefix())
	if err != nil || del.Deleted != get.Count {
		t.Fatalf("delete under NOSPACE: %v, %v; want %d deleted", del, err, get.Count)
	}
	if _, err := cli.Compact(ctx, del.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact under NOSPACE: %v", err)
	}
	if _, err := cli.Defragment(ctx, m.endpoint()); err != nil {
		t.Fatalf("defragment under NOSPACE: %v", err)
	}

	// The alarm is replicated state: it survives a restart, and clears
	// only when disarmed.
	cli.Close()
	p.stop(t)
	m.extra = nil // the default 2 GiB quota
	m.start(t)
	cli = newClient(t, m)
	if _, err := cli.Put(ctx, "small", "x"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Errorf("put after restart with the alarm raised: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: memberID, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "small", "x"); err != nil {
		t.Errorf("put after disarm: %v", err)
	}
	alarms, err := cli.AlarmList(ctx)
	if err != nil || len(alarms.Alarms) != 0 {
		t.Errorf("alarms after disarm: %v, %v", alarms, err)
	}

	// Beyond etcd: an action outside the enum is refused (etcd 3.6 panics).
	conn := cli.ActiveConnection()
	_, err = pb.NewMaintenanceClient(conn).Alarm(ctx, &pb.AlarmRequest{Action: 7, Alarm: pb.AlarmType_NOSPACE})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("alarm action 7: %v, want InvalidArgument", err)
	}
}
