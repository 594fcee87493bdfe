package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// snapshotFlags make the leader compact its log after 100 entries, keeping
// 20: a member that misses more needs a snapshot.
var snapshotFlags = []string{"--snapshot-count", "100", "--snapshot-catchup-entries", "20"}

func dial(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// allKeys is every key a member has: read locally (serializable), or
// linearizably, which includes every write acknowledged anywhere.
func allKeys(t *testing.T, cli *clientv3.Client, linearizable bool) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithFromKey()}
	if !linearizable {
		opts = append(opts, clientv3.WithSerializable())
	}
	return cli.Get(ctx, "\x00", opts...)
}

// waitSameState waits until cli's member has the cluster's state (same
// revision, same keys and versions) as a linearizable read through leader
// sees it, and fails the test otherwise.
func waitSameState(t *testing.T, leader, cli *clientv3.Client) {
	t.Helper()
	want, err := allKeys(t, leader, true)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := allKeys(t, cli, false)
		if err == nil && got.Header.Revision == want.Header.Revision {
			if g, w := fmt.Sprint(got.Kvs), fmt.Sprint(want.Kvs); g != w {
				t.Fatalf("member at revision %d has different keys:\n got %s\nwant %s", got.Header.Revision, g, w)
			}
			return
		}
		if time.Now().After(deadline) {
			rev := int64(-1)
			if got != nil {
				rev = got.Header.Revision
			}
			t.Fatalf("member at revision %d (%v) after 30 s, leader at %d", rev, err, want.Header.Revision)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkHashKV checks that every member has the same history of versions
// up to the leader's current revision (etcdctl endpoint hashkv --cluster),
// not only the same live keys.
func checkHashKV(t *testing.T, leader *clientv3.Client, ms []*clusterMember) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := leader.Get(ctx, "hashkv-probe")
	if err != nil {
		t.Fatal(err)
	}
	rev := r.Header.Revision
	var first *clientv3.HashKVResponse
	for _, m := range ms {
		var h *clientv3.HashKVResponse
		eventually(t, "HashKV on "+m.name, func() error {
			var err error
			h, err = leader.HashKV(ctx, m.endpoint(), rev)
			return err
		})
		if first == nil {
			first = h
			continue
		}
		if h.Hash != first.Hash || h.CompactRevision != first.CompactRevision || h.HashRevision != rev {
			t.Errorf("HashKV at %d: %s has %x (compacted %d, at %d), %s has %x (compacted %d)",
				rev, m.name, h.Hash, h.CompactRevision, h.HashRevision, ms[0].name, first.Hash, first.CompactRevision)
		}
	}
	checkHash(t, ms, rev)
}

// checkHash checks that every member, once at revision rev, has the same
// Maintenance.Hash: the whole replicated state (leases, members, alarms
// too), not only the versions.
func checkHash(t *testing.T, ms []*clusterMember, rev int64) {
	t.Helper()
	eventually(t, "the same Maintenance.Hash on every member", func() error {
		got := map[uint32][]string{}
		for _, m := range ms {
			conn, err := grpc.NewClient(m.endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			h, err := pb.NewMaintenanceClient(conn).Hash(ctx, &pb.HashRequest{})
			cancel()
			conn.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if h.Header.Revision != rev {
				return fmt.Errorf("%s is at revision %d, not %d", m.name, h.Header.Revision, rev)
			}
			got[h.Hash] = append(got[h.Hash], m.name)
		}
		if len(got) != 1 {
			return fmt.Errorf("members disagree: %v", got)
		}
		return nil
	})
}

// A follower cut off while the leader compacts its log past what the
// follower has gets a snapshot when the partition heals: it ends with the
// leader's keys, its open watchers see every event once and in order, a
// lease it knew only from the snapshot is revoked with its keys, and the
// state survives a kill -9 and restart.
func TestSnapshotCatchesUpPartitionedFollower(t *testing.T) {
	ms, proxies, procs, init := proxiedCluster(t, 3, snapshotFlags...)
	leader := clusterLeader(t, ms)
	victim := (leader + 1) % 3
	lc := dial(t, ms[leader].endpoint())
	vc := dial(t, ms[victim].endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start, err := lc.Put(ctx, "w/start", "0")
	if err != nil {
		t.Fatal(err)
	}
	waitSameState(t, lc, vc)
	// A watcher on the victim, from the next revision on.
	wch := vc.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1), clientv3.WithPrevKV())

	proxies[victim].Cut()
	type ev struct {
		typ        mvccpb.Event_EventType
		key, value string
		rev        int64
	}
	var want []ev
	// A lease and its keys, created while the victim is away.
	lease, err := lc.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		key := fmt.Sprintf("w/%03d", i%120)
		if i%7 == 3 {
			r, err := lc.Delete(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if r.Deleted == 1 {
				want = append(want, ev{mvccpb.DELETE, key, "", r.Header.Revision})
			}
			continue
		}
		val := fmt.Sprintf("v%d", i)
		var opts []clientv3.OpOption
		if i%10 == 0 {
			opts = append(opts, clientv3.WithLease(lease.ID))
		}
		r, err := lc.Put(ctx, key, val, opts...)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ev{mvccpb.PUT, key, val, r.Header.Revision})
	}
	for i := 0; i < 5; i++ {
		if _, err := lc.Put(ctx, fmt.Sprintf("lease/%d", i), "x", clientv3.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
	}
	proxies[victim].Heal()
	waitSameState(t, lc, vc)
	if !strings.Contains(procs[leader].stderr.String(), "sent snapshot") {
		t.Errorf("the leader logged no snapshot sent; stderr:\n%s", procs[leader].stderr)
	}
	if !strings.Contains(procs[victim].stderr.String(), "installed snapshot") {
		t.Errorf("the follower logged no snapshot installed; stderr:\n%s", procs[victim].stderr)
	}

	// The watcher saw every event exactly once, in order.
	var got []ev
	timeout := time.After(20 * time.Second)
	for len(got) < len(want) {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				t.Fatalf("watch ended after %d of %d events: %v", len(got), len(want), wr.Err())
			}
			for _, e := range wr.Events {
				got = append(got, ev{e.Type, string(e.Kv.Key), string(e.Kv.Value), e.Kv.ModRevision})
			}
		case <-timeout:
			t.Fatalf("watch on the follower got %d of %d events", len(got), len(want))
		}
	}
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Fatalf("watch events on the follower:\n got %s\nwant %s", g, w)
	}

	// The follower applies the revoke with the attachments it got in the
	// snapshot.
	if _, err := lc.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	waitSameState(t, lc, vc)
	if r, err := vc.Get(ctx, "lease/", clientv3.WithPrefix(), clientv3.WithSerializable()); err != nil || len(r.Kvs) != 0 {
		t.Fatalf("leased keys on the follower after revoke: %v, %v", r, err)
	}
	// It serves writes (forwarded) and reads as any member.
	if _, err := vc.Put(ctx, "after", "snapshot"); err != nil {
		t.Fatal(err)
	}
	waitSameState(t, lc, vc)
	for _, m := range ms {
		waitSameState(t, lc, dial(t, m.endpoint()))
	}
	checkHashKV(t, lc, ms)

	// The installed state is durable: kill -9, restart, same state.
	procs[victim].kill(t)
	m := ms[victim]
	p := startCairn(t, append([]string{
		"--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", "http://" + proxies[victim].Addr(),
		"--initial-cluster", init, "--initial-cluster-token", "e2e-cluster",
		"--heartbeat-interval", "50", "--election-timeout", "500"}, snapshotFlags...)...)
	waitReady(t, p)
	vc2 := dial(t, m.endpoint())
	waitSameState(t, lc, vc2)
}

// A member added after the log was compacted starts from a snapshot.
func TestSnapshotForNewMember(t *testing.T) {
	ms, _ := newCluster(t, 2)
	n1, n2 := ms[0], ms[1]
	p1 := n1.start(t, n1.name+"="+n1.peerURL, snapshotFlags...)
	waitReady(t, p1)
	cli := dial(t, n1.endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 400; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%03d", i%150), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Compact(ctx, 300); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.MemberAddAsLearner(ctx, []string{n2.peerURL}); err != nil {
		t.Fatal(err)
	}
	initial := n1.name + "=" + n1.peerURL + "," + n2.name + "=" + n2.peerURL
	p2 := startCairn(t, append([]string{
		"--name", n2.name, "--data-dir", n2.dataDir,
		"--listen-client-urls", n2.clientURL, "--advertise-client-urls", n2.clientURL,
		"--listen-peer-urls", n2.peerURL, "--initial-advertise-peer-urls", n2.peerURL,
		"--initial-cluster", initial, "--initial-cluster-state", "existing"}, snapshotFlags...)...)
	waitReady(t, p2)
	c2 := dial(t, n2.endpoint())
	waitSameState(t, cli, c2)
	if !strings.Contains(p2.stderr.String(), "installed snapshot") {
		t.Errorf("the new member logged no snapshot installed; stderr:\n%s", p2.stderr)
	}
	// The compaction came with the state.
	if _, err := c2.Get(ctx, "k000", clientv3.WithRev(299), clientv3.WithSerializable()); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Errorf("read below the compacted revision on the new member: %v, want compacted", err)
	}
	// (A learner serves only serializable reads and status, as etcd's.)
	ml, err := cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 2 {
		t.Fatalf("member list: %v, %v", ml, err)
	}
	var learner uint64
	for _, m := range ml.Members {
		if m.IsLearner {
			learner = m.ID
		}
	}
	// Refused (ErrLearnerNotReady) until the leader sees it caught up.
	eventually(t, "promote", func() error {
		_, err := cli.MemberPromote(ctx, learner)
		return err
	})
	// The member learns of its promotion when it applies it.
	eventually(t, "put on the promoted member", func() error {
		_, err := c2.Put(ctx, "from-n2", "ok")
		return err
	})
	waitSameState(t, cli, c2)
}

// Kill -9 a member at random moments while it catches up by snapshot
// (during the transfer, the install or the log replay after it): each
// restart converges on the leader's state, and no received snapshot file
// is left behind.
func TestSnapshotKillDuringCatchUp(t *testing.T) {
	ms, proxies, procs, init := proxiedCluster(t, 3, snapshotFlags...)
	leader := clusterLeader(t, ms)
	victim := (leader + 2) % 3
	lc := dial(t, ms[leader].endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// About 30 MB of state, so a transfer takes a while.
	value := strings.Repeat("v", 2000)
	for i := 0; i < 15000; i += 100 {
		ops := make([]clientv3.Op, 0, 100)
		for j := i; j < i+100; j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("big/%05d", j), value))
		}
		if _, err := lc.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	m := ms[victim]
	args := append([]string{
		"--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", "http://" + proxies[victim].Addr(),
		"--initial-cluster", init, "--initial-cluster-token", "e2e-cluster",
		"--heartbeat-interval", "50", "--election-timeout", "500"}, snapshotFlags...)
	p := procs[victim]
	installs := 0
	for round := 0; round < 3; round++ {
		proxies[victim].Cut()
		for i := 0; i < 200; i++ {
			if _, err := lc.Put(ctx, fmt.Sprintf("round%d/%03d", round, i), "x"); err != nil {
				t.Fatal(err)
			}
		}
		proxies[victim].Heal()
		time.Sleep(time.Duration(50+round*150) * time.Millisecond)
		p.kill(t)
		log := p.stderr.String()
		if strings.Contains(log, "installed snapshot") {
			installs++
		}
		t.Logf("round %d: killed after: received %v, installed %v", round,
			strings.Contains(log, "received snapshot"), strings.Contains(log, "installed snapshot"))
		p = startCairn(t, args...)
		waitReady(t, p)
		vc := dial(t, m.endpoint())
		waitSameState(t, lc, vc)
		if strings.Contains(p.stderr.String(), "panic") {
			t.Fatalf("round %d: the restarted member panicked; stderr:\n%s", round, p.stderr)
		}
	}
	if strings.Contains(p.stderr.String(), "installed snapshot") {
		installs++
	}
	if installs == 0 {
		t.Errorf("no round caught up by snapshot")
	}
	for _, m := range ms {
		waitSameState(t, lc, dial(t, m.endpoint()))
	}
	checkHashKV(t, lc, ms)
	if ents, err := os.ReadDir(filepath.Join(m.dataDir, "snap")); err != nil || len(ents) != 0 {
		t.Errorf("snapshot files left in the data dir: %v (%v)", ents, err)
	}
}
