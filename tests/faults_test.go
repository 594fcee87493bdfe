package e2e

import (
	"context"
	"math/rand"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/tests/internal/tcpproxy"
)

// proxiedCluster is a cluster whose members reach each other through a
// proxy in front of each member's peer port.
func proxiedCluster(t *testing.T, n int, extra ...string) ([]*clusterMember, []*tcpproxy.Proxy, []*proc, string) {
	t.Helper()
	ms, _ := newCluster(t, n)
	proxies := make([]*tcpproxy.Proxy, n)
	var initial []string
	for i, m := range ms {
		proxies[i] = tcpproxy.New(t, strings.TrimPrefix(m.peerURL, "http://"))
		initial = append(initial, m.name+"=http://"+proxies[i].Addr())
	}
	init := strings.Join(initial, ",")
	procs := make([]*proc, n)
	for i, m := range ms {
		procs[i] = startCairn(t, append([]string{
			"--name", m.name, "--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", "http://" + proxies[i].Addr(),
			"--initial-cluster", init, "--initial-cluster-token", "e2e-cluster",
			"--heartbeat-interval", "50", "--election-timeout", "500"}, extra...)...)
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	return ms, proxies, procs, init
}

func memberStatus(t *testing.T, m *clusterMember) (term, lead, rev uint64, err error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.endpoint()}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return 0, 0, 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := cli.Status(ctx, m.endpoint())
	if err != nil {
		return 0, 0, 0, err
	}
	return st.RaftTerm, st.Leader, uint64(st.Header.Revision), nil
}

// Partition a follower away under load, heal it: the majority keeps
// serving, the member catches up, and (with pre-vote and check-quorum) its
// return does not depose the leader. The history stays linearizable.
func TestPartitionedFollowerCatchesUp(t *testing.T) {
	ms, proxies, _, _ := proxiedCluster(t, 3)
	h := recordHistory(t, ms)
	h.waitOps(150)
	leader := clusterLeader(t, ms)
	victim := (leader + 1) % 3
	termBefore, _, _, err := memberStatus(t, ms[leader])
	if err != nil {
		t.Fatal(err)
	}
	proxies[victim].Cut()
	h.waitOps(300) // the majority keeps going
	// Long enough for the isolated member's election timeout to fire.
	time.Sleep(1500 * time.Millisecond)
	// It knows it has no leader; it still serves local reads.
	for path, want := range map[string]string{
		"/health":                   `503 {"health":"false","reason":"RAFT NO LEADER"}` + "\n",
		"/health?serializable=true": `200 {"health":"true","reason":""}`,
	} {
		if got := httpGet(t, ms[victim].clientURL+path); got != want {
			t.Errorf("GET %s on the partitioned member: %q, want %q", path, got, want)
		}
	}
	proxies[victim].Heal()
	h.waitOps(150)
	h.check()

	_, _, want, err := memberStatus(t, ms[leader])
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, got, err := memberStatus(t, ms[victim])
		if err == nil && got >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healed member at revision %d (%v), leader at %d", got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	termAfter, lead, _, err := memberStatus(t, ms[leader])
	if err != nil {
		t.Fatal(err)
	}
	if termAfter != termBefore || lead == 0 {
		t.Fatalf("leader's term went from %d to %d (leader %x) when the partitioned member came back: pre-vote should keep it", termBefore, termAfter, lead)
	}
}

// Kill every member at once and restart them in random order: the cluster
// comes back with every acknowledged write (checked as a linearizable
// history across the outage).
func TestRestartAllMembersInRandomOrder(t *testing.T) {
	ms, initial := newCluster(t, 3)
	procs := startAll(t, ms, initial)
	h := recordHistory(t, ms)
	h.waitOps(200)
	for _, p := range procs {
		p.kill(t)
	}
	order := rand.Perm(len(ms))
	for _, i := range order {
		procs[i] = ms[i].start(t, initial)
		time.Sleep(time.Duration(rand.Intn(300)) * time.Millisecond)
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	h.waitOps(200)
	h.check()
}
