package e2e

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestKeepAliveRightAfterGrantThroughFollowers: in a 3-member cluster, a
// lease granted through one follower is renewed at once through the
// other (which forwards to the leader) and through the leader, with the
// lease's TTL, never "lease not found". The leader may not have applied
// the grant yet when such a keep-alive arrives; it then waits for its
// applied index (FastLeaseKeepAlive). That window is narrow, so this test
// guards the path end to end more than it provokes the race.
func TestKeepAliveRightAfterGrantThroughFollowers(t *testing.T) {
	ms, initial := newCluster(t, 3)
	procs := make([]*proc, len(ms))
	for i, m := range ms {
		procs[i] = m.start(t, initial)
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	clients := make([]*clientv3.Client, len(ms))
	for i, m := range ms {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{m.endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	leader := -1
	for leader < 0 {
		for i, m := range ms {
			ctx, cancel := opCtx()
			st, err := clients[i].Status(ctx, m.endpoint())
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				leader = i
			}
		}
	}
	f1, f2 := (leader+1)%3, (leader+2)%3
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		g, err := clients[f1].Grant(ctx, 60)
		if err != nil {
			cancel()
			t.Fatalf("grant %d through a follower: %v", i, err)
		}
		for _, via := range []int{f2, leader} {
			ka, err := clients[via].KeepAliveOnce(ctx, g.ID)
			if err != nil || ka.TTL != 60 {
				t.Errorf("grant %d: keep-alive through member %d right after: %v, %v; want TTL 60", i, via, ka, err)
			}
		}
		cancel()
	}
}
