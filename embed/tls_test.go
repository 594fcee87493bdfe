package embed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/pkg/tlsutil"
	"github.com/cairn-kv/cairn/pkg/tlsutil/testcerts"
)

func tlsClient(t *testing.T, pki *testcerts.PKI, pair *testcerts.Pair) *tls.Config {
	t.Helper()
	pool, err := tlsutil.LoadCertPool(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pool}
	if pair != nil {
		c, err := tls.LoadX509KeyPair(pair.Cert, pair.Key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

// put writes k=v through a fresh client with cfg and returns the error.
func put(endpoints []string, cfg *tls.Config) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: cfg, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = cli.Put(ctx, "k", "v")
	return err
}

// handshake connects with cfg and reads: TLS 1.3 reports a refused client
// certificate at the first read after the handshake.
func handshake(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

// plaintext sends gRPC's HTTP/2 preface without TLS and reads the answer.
func plaintext(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

// A member serving clients with mutual TLS and a CRL: a client with a
// valid certificate is served, one without a certificate, a revoked one
// and a plaintext one are refused, and the listener keeps serving; the
// CRL and the server certificate are rotated under the running member.
func TestClientMutualTLS(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.ListenClientURLs = []url.URL{{Scheme: "https", Host: "127.0.0.1:0"}}
	cfg.ListenMetricsURLs = []url.URL{{Scheme: "https", Host: "127.0.0.1:0"}}
	cfg.ClientTLS = tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, TrustedCAFile: pki.CA,
		ClientCertAuth: true, CRLFile: pki.CRLDER}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	eps := srv.ClientEndpoints()

	if err := put(eps, tlsClient(t, pki, &pki.Client)); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
	if err := handshake(eps[0], tlsClient(t, pki, nil)); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("client without a certificate: got %v, want certificate required", err)
	}
	if err := handshake(eps[0], tlsClient(t, pki, &pki.Revoked)); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("revoked client: got %v, want bad certificate", err)
	}
	if err := plaintext(eps[0]); err == nil {
		t.Fatal("plaintext client was answered")
	}
	if err := put(eps, tlsClient(t, pki, &pki.Client)); err != nil {
		t.Fatalf("after refusing others: %v", err)
	}

	// HTTP on the same port, and on the metrics port, with the client certificate.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsClient(t, pki, &pki.Client)}, Timeout: 5 * time.Second}
	for _, u := range []string{"https://" + eps[0] + "/health", "https://" + srv.MetricsEndpoints()[0] + "/health"} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"health":"true"`) {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
		}
	}

	// Revoke the client's certificate: its next connection is refused.
	if err := pki.Revoke(pki.Client.Serial); err != nil {
		t.Fatal(err)
	}
	if err := handshake(eps[0], tlsClient(t, pki, &pki.Client)); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("client revoked under the running member: got %v, want bad certificate", err)
	}
	if err := put(eps, tlsClient(t, pki, &pki.Root)); err != nil {
		t.Fatalf("another client after the CRL changed: %v", err)
	}

	// Rotate the server certificate: a new connection sees the new one.
	next, err := pki.Issue("server", "cairn-server-2", nil, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	cc := tlsClient(t, pki, &pki.Root)
	cc.ServerName = "localhost"
	conn, err := tls.Dial("tcp", eps[0], cc)
	if err != nil {
		t.Fatal(err)
	}
	got := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if got.SerialNumber.Cmp(next.Serial) != 0 || got.Subject.CommonName != "cairn-server-2" {
		t.Fatalf("after rotation the server presents %v (CN %s), want serial %v", got.SerialNumber, got.Subject.CommonName, next.Serial)
	}
}

// --auto-tls generates a certificate into the data dir and serves TLS
// with it; a client that skips verification (etcdctl --insecure-skip-tls-verify) is served.
func TestClientAutoTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.ListenClientURLs = []url.URL{{Scheme: "https", Host: "127.0.0.1:0"}}
	cfg.ClientAutoTLS = true
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b, err := os.ReadFile(filepath.Join(dir, "fixtures", "client", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	if err := put(srv.ClientEndpoints(), &tls.Config{RootCAs: pool}); err != nil {
		t.Fatalf("client trusting the generated certificate: %v", err)
	}
	if err := put(srv.ClientEndpoints(), &tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatalf("client skipping verification: %v", err)
	}
}

// TLS versions and cipher suites are restricted as configured.
func TestTLSVersionAndCiphers(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.ListenClientURLs = []url.URL{{Scheme: "https", Host: "127.0.0.1:0"}}
	cfg.ClientTLS = tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key}
	cfg.TLSMaxVersion = "TLS1.2"
	cfg.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ep := srv.ClientEndpoints()[0]
	dial := func(c *tls.Config) (tls.ConnectionState, error) {
		c.RootCAs = tlsClient(t, pki, nil).RootCAs
		conn, err := tls.Dial("tcp", ep, c)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.ConnectionState(), nil
	}
	st, err := dial(&tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Fatalf("negotiated %s %s, want TLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	if _, err := dial(&tls.Config{MinVersion: tls.VersionTLS13}); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.3 client: got %v, want a protocol version alert", err)
	}
	if _, err := dial(&tls.Config{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, MaxVersion: tls.VersionTLS12}); err == nil || !strings.Contains(err.Error(), "handshake failure") {
		t.Fatalf("client with another cipher suite: got %v, want a handshake failure", err)
	}
}

// Bad TLS settings fail Start with a message naming the flag and the
// file, and leave the data dir untouched.
func TestTLSBadInput(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	https := []url.URL{{Scheme: "https", Host: "127.0.0.1:0"}}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"https without certificates", func(c *Config) { c.ListenClientURLs = https }, []string{"--cert-file", "--key-file", "https://127.0.0.1:0"}},
		{"peer https without certificates", func(c *Config) { c.ListenPeerURLs = https; c.InitialCluster = "" }, []string{"--peer-cert-file"}},
		{"missing certificate", func(c *Config) {
			c.ListenClientURLs = https
			c.ClientTLS = tlsutil.Info{CertFile: pki.Dir + "/missing.pem", KeyFile: pki.Server.Key}
		}, []string{"--cert-file", pki.Dir + "/missing.pem", "no such file"}},
		{"key of another certificate", func(c *Config) {
			c.ListenClientURLs = https
			c.ClientTLS = tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Client.Key}
		}, []string{"--cert-file", "--key-file", pki.Client.Key, "private key does not match"}},
		{"bad CA file", func(c *Config) {
			c.ListenClientURLs = https
			c.ClientTLS = tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, TrustedCAFile: pki.Server.Key}
		}, []string{"--trusted-ca-file", pki.Server.Key}},
		{"bad CRL", func(c *Config) {
			c.ListenClientURLs = https
			c.ClientTLS = tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, CRLFile: pki.CA}
		}, []string{"--client-crl-file", pki.CA}},
		{"peer key unreadable", func(c *Config) {
			c.PeerTLS = tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Dir + "/nokey.pem"}
		}, []string{"--peer-key-file", pki.Dir + "/nokey.pem"}},
		{"unknown cipher suite", func(c *Config) { c.CipherSuites = []string{"TLS_BOGUS"} }, []string{"--cipher-suites", "TLS_BOGUS"}},
		{"min above max", func(c *Config) { c.TLSMinVersion, c.TLSMaxVersion = "TLS1.3", "TLS1.2" }, []string{"--tls-min-version", "greater than max version"}},
		{"unknown version", func(c *Config) { c.TLSMinVersion = "TLS1.1" }, []string{"--tls-min-version", "TLS1.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			c := testConfig(dir)
			tt.mutate(&c)
			srv, err := Start(c)
			if err == nil {
				srv.Close()
				t.Fatal("Start succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				t.Errorf("the data dir was created: %v", serr)
			}
		})
	}
}

// A client that opens a connection and sends nothing is disconnected
// after the handshake timeout (GHSA-6vch-q96h-7gc3), on TLS and plaintext
// listeners alike, and the listener keeps serving.
func TestHandshakeTimeout(t *testing.T) {
	defer func(d time.Duration) { tlsHandshakeTimeout = d }(tlsHandshakeTimeout)
	tlsHandshakeTimeout = 200 * time.Millisecond
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.ListenClientURLs = []url.URL{{Scheme: "https", Host: "127.0.0.1:0"}, {Scheme: "http", Host: "127.0.0.1:0"}}
	cfg.ClientTLS = tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, ep := range srv.ClientEndpoints() {
		conn, err := net.Dial("tcp", ep)
		if err != nil {
			t.Fatal(err)
		}
		// Far longer than the server's timeout: the server must close first.
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: a silent connection was not closed by the server", ep)
		}
	}
	if err := put(srv.ClientEndpoints()[1:], nil); err != nil {
		t.Fatal(err)
	}
	if err := put(srv.ClientEndpoints()[:1], tlsClient(t, pki, nil)); err != nil {
		t.Fatal(err)
	}
}

// A unixs:// client URL serves TLS on a Unix socket, and the member's own
// client (Lock and Election) reaches it.
func TestUnixsClientURL(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "c.sock")
	cfg := testConfig(t.TempDir())
	// clientv3 checks a unixs endpoint's certificate against the
	// socket's file name, as etcd's own tests arrange.
	sockCert, err := pki.Issue("sock", "cairn-server", nil, []string{"c.sock"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenClientURLs = []url.URL{{Scheme: "unixs", Host: sock}}
	cfg.ClientTLS = tlsutil.Info{CertFile: sockCert.Cert, KeyFile: sockCert.Key, TrustedCAFile: pki.CA, ClientCertAuth: true}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cc := tlsClient(t, pki, &pki.Client)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"unixs://" + sock}, TLS: cc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	// Lock runs over the member's client of itself, through the socket.
	lease, err := cli.Grant(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (concClient{cc: cli.ActiveConnection()}).lock(ctx, "l", lease.ID); err != nil {
		t.Fatalf("Lock through the member's own TLS client: %v", err)
	}
}
