package embed

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/version"
)

// scrape GETs a /metrics page and returns each series ("name{labels}") with
// its value.
func scrape(t *testing.T, u string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET %s: Content-Type %q, want text/plain", u, ct)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("GET %s: bad line %q", u, line)
		}
		out[line[:i]] = v
	}
	return out
}

// expectSeries fails unless series exists and ok(its value).
func expectSeries(t *testing.T, m map[string]float64, series, want string, ok func(float64) bool) {
	t.Helper()
	v, found := m[series]
	switch {
	case !found:
		t.Errorf("%s: missing, want %s", series, want)
	case !ok(v):
		t.Errorf("%s: got %v, want %s", series, v, want)
	}
}

func valueEq(x float64) func(float64) bool { return func(v float64) bool { return v == x } }
func valueGE(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }

// A member serves etcd's metrics at /metrics on its client port and on
// --listen-metrics-urls, with values that follow what clients did.
func TestMetrics(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ListenMetricsURLs = []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const puts, ranges = 7, 3
	for i := range puts {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	for range ranges {
		if _, err := cli.Get(ctx, "k", clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "k0"); err != nil {
		t.Fatal(err)
	}
	// A txn of two puts: etcd counts it as a txn and as two puts.
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("t1", "v"), clientv3.OpPut("t2", "v")).Commit(); err != nil {
		t.Fatal(err)
	}
	srv.Member().ReportHealth(true)
	srv.Member().ReportHealth(false)

	m := scrape(t, "http://"+srv.ClientEndpoints()[0]+"/metrics")
	kv := func(metric, code, method string) string {
		return fmt.Sprintf(`%s{grpc_code=%q,grpc_method=%q,grpc_service="etcdserverpb.KV",grpc_type="unary"}`, metric, code, method)
	}
	expectSeries(t, m, "etcd_server_has_leader", "1", valueEq(1))
	expectSeries(t, m, "etcd_server_is_leader", "1", valueEq(1))
	expectSeries(t, m, "etcd_server_is_learner", "0", valueEq(0))
	expectSeries(t, m, "etcd_server_leader_changes_seen_total", ">= 1", valueGE(1))
	expectSeries(t, m, "etcd_server_proposals_applied_total", fmt.Sprintf(">= %d", puts), valueGE(puts))
	expectSeries(t, m, "etcd_server_proposals_committed_total", ">= applied", valueGE(m["etcd_server_proposals_applied_total"]))
	expectSeries(t, m, "etcd_server_proposals_pending", "0", valueEq(0))
	// One may have failed: the member publishes itself before it has a leader.
	expectSeries(t, m, "etcd_server_proposals_failed_total", "present", valueGE(0))
	expectSeries(t, m, "etcd_server_slow_apply_total", "present", valueGE(0))
	expectSeries(t, m, "etcd_server_quota_backend_bytes", "2 GiB", valueEq(DefaultQuotaBackendBytes))
	expectSeries(t, m, fmt.Sprintf(`etcd_server_id{server_id="%x"}`, srv.Member().ID()), "1", valueEq(1))
	expectSeries(t, m, fmt.Sprintf(`etcd_server_version{server_version=%q}`, version.APIVersion), "1", valueEq(1))
	expectSeries(t, m, "etcd_server_health_success", ">= 1", valueGE(1))
	expectSeries(t, m, "etcd_server_health_failures", ">= 1", valueGE(1))
	expectSeries(t, m, "etcd_disk_wal_fsync_duration_seconds_count", "> 0", valueGE(1))
	expectSeries(t, m, `etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"}`, "present (etcd's buckets)", valueGE(0))
	expectSeries(t, m, "etcd_disk_backend_commit_duration_seconds_count", fmt.Sprintf(">= %d", puts), valueGE(puts))
	expectSeries(t, m, "etcd_mvcc_db_total_size_in_bytes", "> 0", valueGE(1))
	expectSeries(t, m, "etcd_mvcc_db_total_size_in_use_in_bytes", "> 0", valueGE(1))
	expectSeries(t, m, "etcd_mvcc_put_total", fmt.Sprintf("%d", puts+2), valueEq(puts+2))
	expectSeries(t, m, "etcd_mvcc_delete_total", "1", valueEq(1))
	expectSeries(t, m, "etcd_mvcc_txn_total", "1", valueEq(1))
	expectSeries(t, m, "etcd_mvcc_range_total", fmt.Sprintf(">= %d", ranges), valueGE(ranges))
	expectSeries(t, m, kv("grpc_server_handled_total", "OK", "Put"), fmt.Sprintf(">= %d", puts), valueGE(puts))
	expectSeries(t, m, kv("grpc_server_handled_total", "OK", "Range"), fmt.Sprintf(">= %d", ranges), valueGE(ranges))
	// Every method's series exist from the start, as etcd's.
	expectSeries(t, m, kv("grpc_server_handled_total", "Unavailable", "Compact"), "0", valueEq(0))
	expectSeries(t, m, `grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}`, fmt.Sprintf(">= %d", puts), valueGE(puts))
	expectSeries(t, m, `grpc_server_started_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"}`, "0", valueEq(0))
	expectSeries(t, m, `grpc_server_msg_received_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}`, fmt.Sprintf(">= %d", puts), valueGE(puts))
	expectSeries(t, m, "go_goroutines", "> 0", valueGE(1))
	expectSeries(t, m, "process_start_time_seconds", "> 0", valueGE(1))
	for s := range m {
		if strings.HasPrefix(s, "grpc_server_handling_seconds") {
			t.Errorf("%s: present with --metrics=basic", s)
			break
		}
	}

	// The metrics listener serves /metrics and the health endpoints on its
	// own port.
	eps := srv.MetricsEndpoints()
	if len(eps) != 1 || eps[0] == srv.ClientEndpoints()[0] {
		t.Fatalf("MetricsEndpoints() = %q, want one address of its own", eps)
	}
	m2 := scrape(t, "http://"+eps[0]+"/metrics")
	expectSeries(t, m2, "etcd_server_is_leader", "1", valueEq(1))
	expectSeries(t, m2, kv("grpc_server_handled_total", "OK", "Put"), fmt.Sprintf(">= %d", puts), valueGE(puts))
	resp, err := http.Get("http://" + eps[0] + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		t.Errorf("GET /health on the metrics listener: %s %s, want 200 and health true", resp.Status, body)
	}
	resp, err = http.Get("http://" + eps[0] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz on the metrics listener: %s, want 200", resp.Status)
	}
	resp, err = http.Get("http://" + eps[0] + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /version on the metrics listener: %s, want 404 (it serves /metrics and health only)", resp.Status)
	}
}

// --metrics=extensive adds gRPC handling-time histograms; two members in
// one process keep their own registries.
func TestMetricsExtensive(t *testing.T) {
	var srvs []*Server
	for _, level := range []string{MetricsBasic, MetricsExtensive} {
		cfg := testConfig(t.TempDir())
		cfg.Metrics = level
		srv, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		srvs = append(srvs, srv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srvs[1].ClientEndpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	const put = `{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}`
	m := scrape(t, "http://"+srvs[1].ClientEndpoints()[0]+"/metrics")
	expectSeries(t, m, "grpc_server_handling_seconds_count"+put, "1", valueEq(1))
	expectSeries(t, m, `grpc_server_handling_seconds_bucket{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary",le="+Inf"}`, "1", valueEq(1))
	other := scrape(t, "http://"+srvs[0].ClientEndpoints()[0]+"/metrics")
	expectSeries(t, other, "grpc_server_started_total"+put, "0 (the other member's)", valueEq(0))
	if _, ok := other["grpc_server_handling_seconds_count"+put]; ok {
		t.Errorf("grpc_server_handling_seconds present with --metrics=basic")
	}
}

// In a 3-member cluster every member knows the leader, one leads, and Raft
// traffic between the leader and each follower shows in the per-peer byte
// counters, labelled with the peer's hex ID.
func TestMetricsCluster(t *testing.T) {
	const n = 3
	cfgs := make([]Config, n)
	var initial []string
	for i := range cfgs {
		// Reserve distinct ports: each member must know the others' at start.
		peer := freeAddr(t)
		cfgs[i] = testConfig(t.TempDir())
		cfgs[i].Name = fmt.Sprintf("m%d", i)
		cfgs[i].ListenPeerURLs = []url.URL{{Scheme: "http", Host: peer}}
		cfgs[i].HeartbeatMs, cfgs[i].ElectionMs = 50, 500
		initial = append(initial, cfgs[i].Name+"=http://"+peer)
	}
	srvs := make([]*Server, n)
	errs := make(chan error, n)
	for i := range cfgs {
		cfgs[i].InitialCluster = strings.Join(initial, ",")
		go func() {
			var err error
			srvs[i], err = Start(cfgs[i])
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range srvs {
		defer s.Close()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: srvs[0].ClientEndpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}

	// Raft messages flow between the leader and each follower.
	scrapes := make([]map[string]float64, n)
	leader := -1
	for i, s := range srvs {
		scrapes[i] = scrape(t, "http://"+s.ClientEndpoints()[0]+"/metrics")
		expectSeries(t, scrapes[i], "etcd_server_has_leader", "1", valueEq(1))
		if scrapes[i]["etcd_server_is_leader"] == 1 {
			if leader >= 0 {
				t.Fatalf("etcd_server_is_leader is 1 on members %d and %d", leader, i)
			}
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("etcd_server_is_leader is 0 on every member")
	}
	for i := range srvs {
		if i == leader {
			continue
		}
		for _, pair := range [][2]int{{leader, i}, {i, leader}} {
			m, peer := scrapes[pair[0]], fmt.Sprintf("%x", srvs[pair[1]].Member().ID())
			expectSeries(t, m, `etcd_network_peer_sent_bytes_total{To="`+peer+`"}`, "> 0", valueGE(1))
			expectSeries(t, m, `etcd_network_peer_received_bytes_total{From="`+peer+`"}`, "> 0", valueGE(1))
		}
	}
}

// freeAddr returns a 127.0.0.1 address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
