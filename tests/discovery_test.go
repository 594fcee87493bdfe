package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/internal/dnstest"
	"github.com/cairn-kv/cairn/pkg/tlsutil/testcerts"
)

// discoveryMember is a member bootstrapped by discovery: no --initial-cluster.
type discoveryMember struct {
	name, dataDir, clientURL, peerURL string
	advertisePeerURL                  string // "" means peerURL
}

func newDiscoveryMembers(t *testing.T, names ...string) []*discoveryMember {
	t.Helper()
	var ms []*discoveryMember
	for _, n := range names {
		ms = append(ms, &discoveryMember{
			name:      n,
			dataDir:   filepath.Join(t.TempDir(), n),
			clientURL: "http://" + freeAddr(t),
			peerURL:   "http://" + freeAddr(t),
		})
	}
	return ms
}

func (m *discoveryMember) endpoint() string { return strings.TrimPrefix(m.clientURL, "http://") }

// start execs the member with the discovery flags in extra; it does not wait.
func (m *discoveryMember) start(t *testing.T, env []string, extra ...string) *proc {
	t.Helper()
	adv := m.advertisePeerURL
	if adv == "" {
		adv = m.peerURL
	}
	return startCairnEnv(t, env, append([]string{
		"--name", m.name, "--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", adv,
		"--heartbeat-interval", "50", "--election-timeout", "500"}, extra...)...)
}

// discoveryNew runs `cairn discovery new` and returns what it prints.
func discoveryNew(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(cairnBin, append([]string{"discovery", "new"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("cairn discovery new %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// checkFormed checks that ms run as one cluster of exactly ms: the same
// member list (names and peer URLs) on each, and a write through the first
// read through the last.
func checkFormed(t *testing.T, ms []*discoveryMember) {
	t.Helper()
	want := map[string]string{}
	for _, m := range ms {
		adv := m.advertisePeerURL
		if adv == "" {
			adv = m.peerURL
		}
		want[m.name] = adv
	}
	var clusterIDs []uint64
	for _, m := range ms {
		cli := dclient(t, m.endpoint())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := cli.MemberList(ctx)
		cancel()
		if err != nil {
			t.Fatalf("member list on %s: %v", m.name, err)
		}
		got := map[string]string{}
		for _, mm := range resp.Members {
			got[mm.Name] = strings.Join(mm.PeerURLs, ",")
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("member list on %s: got %v, want %v", m.name, got, want)
		}
		clusterIDs = append(clusterIDs, resp.Header.ClusterId)
	}
	for _, id := range clusterIDs {
		if id != clusterIDs[0] {
			t.Fatalf("cluster IDs differ: %x", clusterIDs)
		}
	}
	first, last := dclient(t, ms[0].endpoint()), dclient(t, ms[len(ms)-1].endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := first.Put(ctx, "discovered", "yes"); err != nil {
		t.Fatal(err)
	}
	resp, err := last.Get(ctx, "discovered")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "yes" {
		t.Fatalf("read back through %s: %v %v", ms[len(ms)-1].name, resp, err)
	}
}

func dclient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// wantDiscoveryFailure starts m, expects exit status 1 with want in its
// stderr, and its data dir not created.
func wantDiscoveryFailure(t *testing.T, m *discoveryMember, want string, extra ...string) {
	t.Helper()
	p := m.start(t, nil, extra...)
	if code := p.wait(t); code != 1 {
		t.Fatalf("%s: exit status %d, want 1; stderr:\n%s", m.name, code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), want) {
		t.Fatalf("%s: stderr lacks %q:\n%s", m.name, want, p.stderr)
	}
	if _, err := os.Stat(m.dataDir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(m.dataDir)
		t.Fatalf("%s: data dir exists after a failed discovery (%v, %d entries)", m.name, err, len(entries))
	}
}

// Three members bootstrap by v3 discovery (etcd 3.6's --discovery-token
// protocol) against a fourth Cairn as the discovery service, on a token
// made by `cairn discovery new --v3`; they register under
// /_etcd/registry/<token>/members/<member ID>. A fourth member on the full
// token, an unknown token, a bad size and a repeated name fail with etcd's
// errors and leave no data dir behind.
func TestDiscoveryV3(t *testing.T) {
	disc := newMember(t)
	disc.start(t)
	dcli := dclient(t, disc.endpoint())
	token := discoveryNew(t, "--v3", "--size", "3", "--endpoint", disc.endpoint())

	ms := newDiscoveryMembers(t, "d1", "d2", "d3")
	flags := []string{"--discovery-token", token, "--discovery-endpoints", disc.endpoint()}
	var procs []*proc
	for _, m := range ms {
		procs = append(procs, m.start(t, nil, flags...))
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	checkFormed(t, ms)

	// The registry holds the three members, keyed by the IDs they got.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg, err := dcli.Get(ctx, "/_etcd/registry/"+token+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range reg.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	list, err := dclient(t, ms[0].endpoint()).MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/_etcd/registry/" + token + "/_config/size": "3"}
	for _, mm := range list.Members {
		want["/_etcd/registry/"+token+"/members/"+strconv.FormatUint(mm.ID, 16)] = mm.Name + "=" + mm.PeerURLs[0]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("registry: got %v, want %v", got, want)
	}

	// A restarted member ignores discovery and keeps its data.
	procs[2].stop(t)
	p := ms[2].start(t, nil, flags...)
	waitReady(t, p)
	if !strings.Contains(p.stderr.String(), "discovery is ignored since the member has data") {
		t.Errorf("restart: no notice that discovery was skipped:\n%s", p.stderr)
	}
	checkFormed(t, ms)

	late := newDiscoveryMembers(t, "d4")[0]
	wantDiscoveryFailure(t, late, "failed to join discovery cluster (discovery: cluster is full)", flags...)
	wantDiscoveryFailure(t, late, "failed to join discovery cluster (discovery: size key not found)",
		"--discovery-token", "no-such-token", "--discovery-endpoints", disc.endpoint())
	if _, err := dcli.Put(ctx, "/_etcd/registry/bad-size/_config/size", "three"); err != nil {
		t.Fatal(err)
	}
	wantDiscoveryFailure(t, late, "failed to join discovery cluster (discovery: size key is bad)",
		"--discovery-token", "bad-size", "--discovery-endpoints", disc.endpoint())
	// Discovery bootstraps new clusters only: a member joining a running
	// one fails as etcd's does, without registering.
	wantDiscoveryFailure(t, late, "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs",
		append([]string{"--initial-cluster-state", "existing"}, flags...)...)
	reg, err = dcli.Get(ctx, "/_etcd/registry/"+token+"/members/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if reg.Count != 3 {
		t.Fatalf("registry after the failures: %d members, want 3", reg.Count)
	}
}

// Two members that register the same name on one token both fail with
// etcd's duplicate-name error once the token is full, and leave no data dir.
func TestDiscoveryV3DuplicateName(t *testing.T) {
	disc := newMember(t)
	disc.start(t)
	token := discoveryNew(t, "--v3", "--size", "2", "--endpoint", disc.endpoint())
	ms := newDiscoveryMembers(t, "a", "b")
	ms[1].name = "a"
	flags := []string{"--discovery-token", token, "--discovery-endpoints", disc.endpoint()}
	var procs []*proc
	for _, m := range ms {
		procs = append(procs, m.start(t, nil, flags...))
	}
	for i, p := range procs {
		if code := p.wait(t); code != 1 {
			t.Fatalf("member %d: exit status %d, want 1; stderr:\n%s", i, code, p.stderr)
		}
		if want := "failed to join discovery cluster (discovery: found duplicate name)"; !strings.Contains(p.stderr.String(), want) {
			t.Fatalf("member %d: stderr lacks %q:\n%s", i, want, p.stderr)
		}
		if _, err := os.Stat(ms[i].dataDir); !os.IsNotExist(err) {
			t.Fatalf("member %d: data dir exists after a failed discovery (%v)", i, err)
		}
	}
}

// Three members bootstrap from DNS SRV records (--discovery-srv, with
// --discovery-srv-name) served by an in-process DNS server: each finds
// itself among the records of _etcd-server-e2e._tcp.<domain> and names the
// others after their position until they publish their names.
func TestDiscoverySRV(t *testing.T) {
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	ms := newDiscoveryMembers(t, "s1", "s2", "s3")
	var recs []dnstest.SRV
	for _, m := range ms {
		_, port, _ := strings.Cut(strings.TrimPrefix(m.peerURL, "http://"), ":")
		p, _ := strconv.Atoi(port)
		// The records name hosts, not addresses: the peers advertise
		// the name the records give, as etcd requires.
		m.advertisePeerURL = "http://localhost:" + port
		recs = append(recs, dnstest.SRV{Target: "localhost.", Port: uint16(p)})
	}
	dns.SetSRV("_etcd-server-e2e._tcp.cairn.test", recs...)
	env := []string{"CAIRN_DISCOVERY_SRV_RESOLVER=" + dns.Addr()}
	var procs []*proc
	for _, m := range ms {
		procs = append(procs, m.start(t, env, "--discovery-srv", "cairn.test", "--discovery-srv-name", "e2e"))
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	eventually(t, "members publish their names", func() error {
		list, err := dclient(t, ms[0].endpoint()).MemberList(context.Background())
		if err != nil {
			return err
		}
		var names []string
		for _, m := range list.Members {
			names = append(names, m.Name)
		}
		slices.Sort(names)
		if fmt.Sprint(names) != "[s1 s2 s3]" {
			return fmt.Errorf("names %v", names)
		}
		return nil
	})
	checkFormed(t, ms)
	if q := dns.Queries(); !slices.Contains(q, "SRV _etcd-server-ssl-e2e._tcp.cairn.test.") || !slices.Contains(q, "SRV _etcd-server-e2e._tcp.cairn.test.") {
		t.Errorf("queries %v lack the two SRV services", q)
	}

	// A member the records do not list fails as etcd does.
	stray := newDiscoveryMembers(t, "s4")[0]
	p := stray.start(t, env, "--discovery-srv", "cairn.test", "--discovery-srv-name", "e2e")
	if code := p.wait(t); code != 1 || !strings.Contains(p.stderr.String(), `cannot find local etcd member "s4" in SRV records`) {
		t.Fatalf("stray member: status %d; stderr:\n%s", code, p.stderr)
	}
	if _, err := os.Stat(stray.dataDir); !os.IsNotExist(err) {
		t.Fatalf("stray member: data dir exists (%v)", err)
	}
}

// countingProxy is an HTTP forward proxy that counts what it relays.
type countingProxy struct{ n atomic.Int64 }

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.n.Add(1)
	out := r.Clone(r.Context())
	out.RequestURI = ""
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// Three members bootstrap from a v2 discovery URL (etcd <= 3.5's
// --discovery) that `cairn discovery new` made on a fourth Cairn's v2 keys
// API (--enable-v2), one of them through --discovery-proxy. A fourth
// member on the full URL, a member that lost its data dir, one on an
// unknown token, and two sharing a name fail with etcd 3.5's errors and
// leave no data dir.
func TestDiscoveryV2(t *testing.T) {
	disc := newMember(t, "--enable-v2")
	disc.start(t)
	if got := httpGet(t, disc.clientURL+"/v2/keys/"); !strings.HasPrefix(got, "200 ") {
		t.Skipf("this Cairn does not serve the v2 keys API: GET /v2/keys/ gave %.80s", got)
	}
	durl := discoveryNew(t, "--size", "3", "--endpoint", disc.clientURL)
	if !strings.HasPrefix(durl, disc.clientURL+"/v2/keys/discovery/") {
		t.Fatalf("discovery URL %q", durl)
	}
	proxy := &countingProxy{}
	psrv := httptest.NewServer(proxy)
	defer psrv.Close()

	ms := newDiscoveryMembers(t, "v1", "v2", "v3")
	var procs []*proc
	for i, m := range ms {
		flags := []string{"--discovery", durl}
		if i == 0 {
			flags = append(flags, "--discovery-proxy", psrv.URL)
		}
		procs = append(procs, m.start(t, nil, flags...))
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	checkFormed(t, ms)
	if proxy.n.Load() == 0 {
		t.Error("no request went through --discovery-proxy")
	}
	late := newDiscoveryMembers(t, "v4")[0]
	wantDiscoveryFailure(t, late, "failed to join discovery cluster (discovery: cluster is full)", "--discovery", durl)
	// A member that lost its data dir finds its ID registered already.
	procs[2].stop(t)
	if err := os.RemoveAll(ms[2].dataDir); err != nil {
		t.Fatal(err)
	}
	wantDiscoveryFailure(t, ms[2], "failed to join discovery cluster (discovery: found duplicate id)", "--discovery", durl)
	// An unknown token: the v2 error passed on, as etcd 3.5 does (the
	// cause is the first missing directory, as etcd's v2 store says).
	wantDiscoveryFailure(t, late, "failed to join discovery cluster (100: Key not found (/discovery/nosuch) [",
		"--discovery", disc.clientURL+"/v2/keys/discovery/nosuch")

	// Two members with one name on a token of size 2.
	durl = discoveryNew(t, "--size", "2", "--endpoint", disc.clientURL)
	dups := newDiscoveryMembers(t, "same", "same")
	var dprocs []*proc
	for _, m := range dups {
		dprocs = append(dprocs, m.start(t, nil, "--discovery", durl))
	}
	for i, p := range dprocs {
		if code := p.wait(t); code != 1 || !strings.Contains(p.stderr.String(), "failed to join discovery cluster (discovery: found duplicate name)") {
			t.Fatalf("duplicate name, member %d: status %d; stderr:\n%s", i, code, p.stderr)
		}
		if _, err := os.Stat(dups[i].dataDir); !os.IsNotExist(err) {
			t.Fatalf("duplicate name, member %d: data dir exists (%v)", i, err)
		}
	}
}

// v3 discovery over mutual TLS: the discovery Cairn serves https and
// requires client certificates; `cairn discovery new --v3` and the two
// members present theirs with --discovery-cert, --discovery-key and
// --discovery-cacert.
func TestDiscoveryV3TLS(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	disc := &member{name: "disc", dataDir: filepath.Join(t.TempDir(), "disc"),
		clientURL: "https://" + freeAddr(t), peerURL: "http://" + freeAddr(t),
		extra: []string{"--cert-file", pki.Server.Cert, "--key-file", pki.Server.Key,
			"--trusted-ca-file", pki.CA, "--client-cert-auth"}}
	disc.start(t)
	ep := strings.TrimPrefix(disc.clientURL, "https://")
	tlsFlags := []string{"--cert", pki.Client.Cert, "--key", pki.Client.Key, "--cacert", pki.CA}
	token := discoveryNew(t, append([]string{"--v3", "--size", "2", "--endpoint", ep}, tlsFlags...)...)

	ms := newDiscoveryMembers(t, "t1", "t2")
	flags := []string{"--discovery-token", token, "--discovery-endpoints", ep,
		"--discovery-cert", pki.Client.Cert, "--discovery-key", pki.Client.Key, "--discovery-cacert", pki.CA}
	var procs []*proc
	for _, m := range ms {
		procs = append(procs, m.start(t, nil, flags...))
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	checkFormed(t, ms)
}

// https peers found by SRV (_etcd-server-ssl._tcp) with no
// --peer-trusted-ca-file are verified against the system's roots for the
// SRV domain's name, as etcd does: the peer certificate names only
// cairn.test (not localhost, the host the records give), and the system
// roots are the test CA (SSL_CERT_FILE).
func TestDiscoverySRVTLS(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.Issue("domain", "cairn.test", nil, []string{"cairn.test"})
	if err != nil {
		t.Fatal(err)
	}
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	ms := newDiscoveryMembers(t, "s1", "s2", "s3")
	var recs []dnstest.SRV
	for _, m := range ms {
		addr := freeAddr(t)
		_, port, _ := strings.Cut(addr, ":")
		p, _ := strconv.Atoi(port)
		m.peerURL, m.advertisePeerURL = "https://"+addr, "https://localhost:"+port
		recs = append(recs, dnstest.SRV{Target: "localhost.", Port: uint16(p)})
	}
	dns.SetSRV("_etcd-server-ssl._tcp.cairn.test", recs...)
	env := []string{"CAIRN_DISCOVERY_SRV_RESOLVER=" + dns.Addr(), "SSL_CERT_FILE=" + pki.CA}
	var procs []*proc
	for _, m := range ms {
		procs = append(procs, m.start(t, env, "--discovery-srv", "cairn.test",
			"--peer-cert-file", cert.Cert, "--peer-key-file", cert.Key))
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	eventually(t, "members publish their names", func() error {
		list, err := dclient(t, ms[0].endpoint()).MemberList(context.Background())
		if err != nil {
			return err
		}
		for _, m := range list.Members {
			if !strings.HasPrefix(m.Name, "s") {
				return fmt.Errorf("member %x is named %q", m.ID, m.Name)
			}
		}
		return nil
	})
	checkFormed(t, ms)
}

// Four members start at once on a token of size 3, by v3 and by v2
// discovery: the first three to register (by create revision or index)
// form the cluster, the fourth fails with etcd's cluster-full error and
// leaves no data dir.
func TestDiscoveryOneTooMany(t *testing.T) {
	t.Run("v3", func(t *testing.T) {
		disc := newMember(t)
		disc.start(t)
		token := discoveryNew(t, "--v3", "--size", "3", "--endpoint", disc.endpoint())
		oneTooMany(t, "--discovery-token", token, "--discovery-endpoints", disc.endpoint())
	})
	t.Run("v2", func(t *testing.T) {
		disc := newMember(t, "--enable-v2")
		disc.start(t)
		oneTooMany(t, "--discovery", discoveryNew(t, "--size", "3", "--endpoint", disc.clientURL))
	})
}

func oneTooMany(t *testing.T, flags ...string) {
	t.Helper()
	ms := newDiscoveryMembers(t, "r1", "r2", "r3", "r4")
	procs := make([]*proc, len(ms))
	for i, m := range ms {
		procs[i] = m.start(t, nil, flags...)
	}
	var formed []*discoveryMember
	failed := 0
	for i, p := range procs {
		select {
		case <-p.stderr.ready:
			formed = append(formed, ms[i])
		case <-p.exited:
			if !strings.Contains(p.stderr.String(), "failed to join discovery cluster (discovery: cluster is full)") {
				t.Fatalf("%s exited; stderr:\n%s", ms[i].name, p.stderr)
			}
			if _, err := os.Stat(ms[i].dataDir); !os.IsNotExist(err) {
				t.Fatalf("%s: data dir exists after a failed discovery (%v)", ms[i].name, err)
			}
			failed++
		case <-time.After(startTimeout):
			t.Fatalf("%s neither ready nor exited after %v; stderr:\n%s", ms[i].name, startTimeout, p.stderr)
		}
	}
	if len(formed) != 3 || failed != 1 {
		t.Fatalf("%d members ready and %d failed, want 3 and 1", len(formed), failed)
	}
	checkFormed(t, formed)
}
