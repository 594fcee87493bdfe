package e2e

import (
	"context"
	"io"
	"math/rand"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// tcpProxy forwards connections from its own 127.0.0.1 port to target; Cut
// drops every connection and refuses new ones until Heal. Put in front of a
// member's peer port, it partitions the member from the cluster without
// privileges.
type tcpProxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { l.Close(); p.Cut(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) addr() string { return p.l.Addr().String() }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// Cut drops all traffic through the proxy.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// Heal lets traffic through again.
func (p *tcpProxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// proxiedCluster is a cluster whose members reach each other through a
// proxy in front of each member's peer port.
func proxiedCluster(t *testing.T, n int, extra ...string) ([]*clusterMember, []*tcpProxy, []*proc, string) {
	t.Helper()
	ms, _ := newCluster(t, n)
	proxies := make([]*tcpProxy, n)
	var initial []string
	for i, m := range ms {
		proxies[i] = newTCPProxy(t, strings.TrimPrefix(m.peerURL, "http://"))
		initial = append(initial, m.name+"=http://"+proxies[i].addr())
	}
	init := strings.Join(initial, ",")
	procs := make([]*proc, n)
	for i, m := range ms {
		procs[i] = startCairn(t, append([]string{
			"--name", m.name, "--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", "http://" + proxies[i].addr(),
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
