package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/pkg/tlsutil"
	"github.com/cairn-kv/cairn/pkg/tlsutil/testcerts"
)

// tlsCluster is a cluster whose client and peer URLs are https.
type tlsCluster struct {
	ms      []*clusterMember
	initial string
	pki     *testcerts.PKI
}

func newTLSCluster(t *testing.T, n int) *tlsCluster {
	t.Helper()
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &tlsCluster{pki: pki}
	var initial []string
	for i := 1; i <= n; i++ {
		m := &clusterMember{
			name:      fmt.Sprintf("n%d", i),
			dataDir:   fmt.Sprintf("%s/n%d", t.TempDir(), i),
			clientURL: "https://" + freeAddr(t),
			peerURL:   "https://" + freeAddr(t),
		}
		c.ms = append(c.ms, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	c.initial = strings.Join(initial, ",")
	return c
}

// clientFlags serve clients with mutual TLS.
func (c *tlsCluster) clientFlags() []string {
	return []string{"--cert-file", c.pki.Server.Cert, "--key-file", c.pki.Server.Key,
		"--trusted-ca-file", c.pki.CA, "--client-cert-auth", "--client-crl-file", c.pki.CRLDER}
}

// peerMTLS are the peer flags of mutual TLS with the test CA.
func (c *tlsCluster) peerMTLS(p testcerts.Pair) []string {
	return []string{"--peer-cert-file", p.Cert, "--peer-key-file", p.Key,
		"--peer-trusted-ca-file", c.pki.CA, "--peer-client-cert-auth"}
}

func (c *tlsCluster) client(t *testing.T, eps ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, TLS: c.tlsConfig(t, c.pki.Client), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func (c *tlsCluster) tlsConfig(t *testing.T, p testcerts.Pair) *tls.Config {
	t.Helper()
	pool, err := tlsutil.LoadCertPool(c.pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}
}

// leader finds the leading member through TLS clients.
func (c *tlsCluster) leader(t *testing.T, among []int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, i := range among {
			cli := c.client(t, c.ms[i].clientURL)
			ctx, cancel := opCtx()
			st, err := cli.Status(ctx, c.ms[i].clientURL)
			cancel()
			cli.Close()
			if err == nil && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no leader after 20 s")
	return -1
}

func putN(t *testing.T, cli *clientv3.Client, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("%s/%04d", prefix, i), "v")
		cancel()
		if err != nil {
			t.Fatalf("put %s/%04d: %v", prefix, i, err)
		}
	}
}

// A 3-member cluster with peer and client mutual TLS replicates, fails
// over when its leader is killed, and the old leader, restarted after the
// log was compacted past it, catches up by a snapshot streamed over TLS;
// the certificate files are replaced under the running members meanwhile.
func TestTLSClusterPeerMutualTLS(t *testing.T) {
	c := newTLSCluster(t, 3)
	procs := make([]*proc, 3)
	for i, m := range c.ms {
		procs[i] = m.start(t, c.initial, append(append(c.clientFlags(), c.peerMTLS(c.pki.Server)...), snapshotFlags...)...)
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	var eps []string
	for _, m := range c.ms {
		eps = append(eps, m.clientURL)
	}
	cli := c.client(t, eps...)
	putN(t, cli, "before", 20)

	// Rotate the certificate every member serves and presents (they share
	// the files): connections made from now on use the new one.
	rotated, err := c.pki.Issue("server", "cairn-server-rotated", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}

	leader := c.leader(t, []int{0, 1, 2})
	procs[leader].kill(t)
	var rest []int
	var restEps []string
	for i := range c.ms {
		if i != leader {
			rest = append(rest, i)
			restEps = append(restEps, c.ms[i].clientURL)
		}
	}
	c.leader(t, rest) // a new leader over TLS
	survivors := c.client(t, restEps...)
	putN(t, survivors, "after", 150) // past --snapshot-count 100

	m := c.ms[leader]
	procs[leader] = m.start(t, c.initial, append(append(c.clientFlags(), c.peerMTLS(c.pki.Server)...), snapshotFlags...)...)
	waitReady(t, procs[leader])
	waitSameState(t, survivors, c.client(t, m.clientURL))
	if !strings.Contains(procs[leader].stderr.String(), "received snapshot") {
		t.Errorf("the restarted member caught up without a snapshot; stderr:\n%s", procs[leader].stderr)
	}
	// Every peer listener now serves the rotated certificate.
	for _, m := range c.ms {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(m.peerURL, "https://"), c.tlsConfig(t, rotated))
		if err != nil {
			t.Fatalf("%s peer listener: %v", m.name, err)
		}
		got := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if got.SerialNumber.Cmp(rotated.Serial) != 0 {
			t.Errorf("%s serves certificate %v (CN %s), want the rotated %v", m.name, got.SerialNumber, got.Subject.CommonName, rotated.Serial)
		}
	}
}

// A member whose peer certificate the others refuse cannot join: its
// connections are refused and it never serves. Refused for an untrusted
// CA, a certificate listed in --peer-crl-file, or a CN not in
// --peer-cert-allowed-cn.
func TestTLSClusterPeerRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pair  func(c *tlsCluster) testcerts.Pair
		flags func(c *tlsCluster) []string
		// why is in n1's log of the rejected connection.
		why string
	}{
		{"untrusted CA", func(c *tlsCluster) testcerts.Pair { return c.pki.Untrusted }, nil, "certificate signed by unknown authority"},
		{"revoked", func(c *tlsCluster) testcerts.Pair {
			p, err := c.pki.Issue("peer3", "cairn-server", []net.IP{net.ParseIP("127.0.0.1")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.pki.Revoke(p.Serial); err != nil {
				t.Fatal(err)
			}
			return p
		}, func(c *tlsCluster) []string { return []string{"--peer-crl-file", c.pki.CRL} }, "revoked"},
		{"CN not allowed", func(c *tlsCluster) testcerts.Pair {
			p, err := c.pki.Issue("intruder", "intruder", []net.IP{net.ParseIP("127.0.0.1")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}, func(c *tlsCluster) []string { return []string{"--peer-cert-allowed-cn", "cairn-server"} }, "client certificate authentication failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTLSCluster(t, 3)
			odd := tc.pair(c)
			var extra []string
			if tc.flags != nil {
				extra = tc.flags(c)
			}
			procs := make([]*proc, 3)
			for i, m := range c.ms {
				pair := c.pki.Server
				if i == 2 {
					pair = odd
				}
				procs[i] = m.start(t, c.initial, append(append(c.clientFlags(), c.peerMTLS(pair)...), extra...)...)
			}
			waitReady(t, procs[0])
			waitReady(t, procs[1])
			cli := c.client(t, c.ms[0].clientURL, c.ms[1].clientURL)
			putN(t, cli, "k", 5)
			eventually(t, "a rejected peer connection in n1's log", func() error {
				for _, line := range strings.Split(procs[0].stderr.String(), "\n") {
					if strings.Contains(line, "rejected connection on peer endpoint") && strings.Contains(line, tc.why) {
						return nil
					}
				}
				return fmt.Errorf("no rejection for %q yet; log:\n%s", tc.why, procs[0].stderr)
			})
			select {
			case <-procs[2].stderr.ready:
				t.Fatalf("the refused member became ready; stderr:\n%s", procs[2].stderr)
			default:
			}
		})
	}
}

// With --peer-auto-tls each member generates its own certificate and the
// cluster replicates over TLS.
func TestTLSClusterPeerAutoTLS(t *testing.T) {
	ms, _ := newCluster(t, 3)
	var initial []string
	for _, m := range ms {
		m.peerURL = strings.Replace(m.peerURL, "http://", "https://", 1)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	procs := make([]*proc, 3)
	for i, m := range ms {
		procs[i] = m.start(t, strings.Join(initial, ","), "--peer-auto-tls")
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	for _, m := range ms {
		if _, err := os.Stat(filepath.Join(m.dataDir, "fixtures", "peer", "cert.pem")); err != nil {
			t.Fatalf("%s: no generated peer certificate: %v", m.name, err)
		}
	}
	cli := dial(t, ms[0].endpoint())
	putN(t, cli, "auto", 10)
	for _, m := range ms[1:] {
		waitSameState(t, cli, dial(t, m.endpoint()))
	}
}

// Bad TLS flags stop start-up with a message naming the flag and the
// file; the data dir is not created.
func TestTLSBadFlags(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	https := "https://" + freeAddr(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--listen-client-urls", https, "--advertise-client-urls", https}, []string{"--cert-file", "--key-file", https}},
		{[]string{"--listen-client-urls", https, "--advertise-client-urls", https, "--cert-file", pki.Server.Cert, "--key-file", pki.Client.Key},
			[]string{"--cert-file", pki.Server.Cert, "--key-file", pki.Client.Key, "private key does not match public key"}},
		{[]string{"--cert-file", pki.Dir + "/absent.pem", "--key-file", pki.Server.Key}, []string{"--cert-file", pki.Dir + "/absent.pem", "no such file"}},
		{[]string{"--cipher-suites", "TLS_NOPE"}, []string{"--cipher-suites", "TLS_NOPE"}},
		{[]string{"--tls-min-version", "TLS1.3", "--tls-max-version", "TLS1.2"}, []string{"--tls-min-version", "greater than max version"}},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		p := startCairn(t, append([]string{"--data-dir", dir, "--listen-peer-urls", "http://" + freeAddr(t)}, tc.args...)...)
		if code := p.wait(t); code != 1 {
			t.Errorf("%q: exit code %d, want 1; stderr:\n%s", tc.args, code, p.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(p.stderr.String(), w) {
				t.Errorf("%q: stderr does not name %q:\n%s", tc.args, w, p.stderr)
			}
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%q: data dir created (%v)", tc.args, err)
		}
	}
}

// openssl s_client sees the version and cipher-suite restrictions:
// TLS 1.3 refused under --tls-max-version TLS1.2, only the allowed suite
// negotiated, the certificate chain verified against the CA.
func TestTLSOpensslRestrictions(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is needed (.ci/run installs it)")
	}
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := newMember(t, "--cert-file", pki.Server.Cert, "--key-file", pki.Server.Key, "--tls-max-version", "TLS1.2",
		"--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")
	m.clientURL = strings.Replace(m.clientURL, "http://", "https://", 1)
	m.start(t)
	addr := strings.TrimPrefix(m.clientURL, "https://")
	sclient := func(args ...string) (string, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, append([]string{"s_client", "-connect", addr, "-CAfile", pki.CA, "-servername", "localhost"}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		return string(out), err == nil
	}
	out, ok := sclient("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384")
	if !ok || !strings.Contains(out, "ECDHE-ECDSA-AES256-GCM-SHA384") || !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Fatalf("allowed version and suite: ok=%v\n%s", ok, out)
	}
	if out, ok := sclient("-tls1_3"); ok || !strings.Contains(out, "alert protocol version") {
		t.Fatalf("TLS 1.3 under --tls-max-version TLS1.2: ok=%v\n%s", ok, out)
	}
	if out, ok := sclient("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"); ok || !strings.Contains(out, "handshake failure") {
		t.Fatalf("a suite not in --cipher-suites: ok=%v\n%s", ok, out)
	}
}
