package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// clusterMember is one member of a test cluster: fixed ports and data dir
// across restarts.
type clusterMember struct {
	name, dataDir, clientURL, peerURL string
}

func newCluster(t *testing.T, n int) ([]*clusterMember, string) {
	t.Helper()
	var ms []*clusterMember
	var initial []string
	for i := 1; i <= n; i++ {
		m := &clusterMember{
			name:      fmt.Sprintf("n%d", i),
			dataDir:   fmt.Sprintf("%s/n%d", t.TempDir(), i),
			clientURL: "http://" + freeAddr(t),
			peerURL:   "http://" + freeAddr(t),
		}
		ms = append(ms, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	return ms, strings.Join(initial, ",")
}

func (m *clusterMember) endpoint() string { return strings.TrimPrefix(m.clientURL, "http://") }

// start execs the member; it does not wait (a member is ready only once a
// quorum runs).
func (m *clusterMember) start(t *testing.T, initial string, extra ...string) *proc {
	t.Helper()
	return startCairn(t, append([]string{
		"--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", initial, "--initial-cluster-token", "e2e-cluster",
		"--heartbeat-interval", "50", "--election-timeout", "500"}, extra...)...)
}

func waitReady(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.stderr.ready:
	case <-p.exited:
		t.Fatalf("cairn exited before it was ready (%v); stderr:\n%s", p.waitErr, p.stderr)
	case <-time.After(startTimeout):
		t.Fatalf("cairn not ready after %v; stderr:\n%s", startTimeout, p.stderr)
	}
}

// Kill -9 the leader of a 3-member cluster under concurrent writes: a new
// leader takes over, writes resume, no acknowledged write is lost, and the
// killed member, restarted on its data dir, catches up.
func TestClusterLeaderKill(t *testing.T) {
	ms, initial := newCluster(t, 3)
	procs := make([]*proc, len(ms))
	for i, m := range ms {
		procs[i] = m.start(t, initial)
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.endpoint())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// Which member leads?
	leader := -1
	for i, m := range ms {
		ctx, cancel := opCtx()
		st, err := cli.Status(ctx, m.endpoint())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader == st.Header.MemberId {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no member says it leads")
	}

	// Writers, each through its own member, record what was acknowledged.
	var mu sync.Mutex
	acked := map[string]string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wc, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[w%3].endpoint(), ms[(w+1)%3].endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer wc.Close()
		wg.Add(1)
		go func(w int, c *clientv3.Client) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k, v := fmt.Sprintf("w%d/%06d", w, i), fmt.Sprintf("v%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				_, err := c.Put(ctx, k, v)
				cancel()
				if err == nil {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}
		}(w, wc)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("writes before the kill", func() bool { return count() >= 300 })
	before := count()
	procs[leader].kill(t)
	killed := time.Now()
	waitFor("writes after the kill", func() bool { return count() >= before+300 })
	t.Logf("leader %s killed; %d writes acknowledged before, %d after; first 300 writes after it took %v",
		ms[leader].name, before, count()-before, time.Since(killed))
	close(stop)
	wg.Wait()

	// Every acknowledged write is on a survivor, read linearizably.
	var survivors []string
	for i, m := range ms {
		if i != leader {
			survivors = append(survivors, m.endpoint())
		}
	}
	sc, err := clientv3.New(clientv3.Config{Endpoints: survivors, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := sc.Get(ctx, "w", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	for k, v := range acked {
		if got[k] != v {
			t.Fatalf("acknowledged %s=%s lost after the leader's kill (read %q)", k, v, got[k])
		}
	}
	lastRev := resp.Header.Revision

	// The killed member comes back on its data dir and catches up.
	p := ms[leader].start(t, initial)
	waitReady(t, p)
	rc, err := clientv3.New(clientv3.Config{Endpoints: []string{ms[leader].endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	// Puts that timed out at the client may still commit after the writers
	// stopped, so compare with what the survivors hold now, not before.
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := opCtx()
		want, err1 := sc.Get(ctx, "w", clientv3.WithPrefix(), clientv3.WithCountOnly())
		r, err2 := rc.Get(ctx, "w", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		cancel()
		if err1 == nil && err2 == nil && want.Header.Revision >= lastRev && r.Header.Revision == want.Header.Revision && r.Count == want.Count {
			break
		}
		last = fmt.Sprintf("survivors %v / %v; restarted %v / %v", want, err1, r, err2)
		if time.Now().After(deadline) {
			t.Fatalf("restarted member did not catch up: %s; stderr:\n%s", last, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually retries fn every 50 ms until it returns nil, and fails the
// test, saying what did not happen, after 20 s.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpGet GETs url and returns "<status code> <body>".
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}
