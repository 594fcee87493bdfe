package tlsutil_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/cairn-kv/cairn/pkg/tlsutil"
	"github.com/cairn-kv/cairn/pkg/tlsutil/testcerts"
)

// serve accepts TLS connections with cfg and echoes one line back.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 5)
				if _, err := io.ReadFull(c, b); err == nil {
					c.Write(b)
				}
			}()
		}
	}()
	return l.Addr().String()
}

// dial handshakes and exchanges a message: TLS 1.3 reports a refused
// client certificate only at the first read.
func dial(addr string, cfg *tls.Config) (*tls.ConnectionState, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		return nil, err
	}
	st := c.ConnectionState()
	return &st, nil
}

func clientCfg(t *testing.T, pki *testcerts.PKI, p *testcerts.Pair) *tls.Config {
	t.Helper()
	pool, err := tlsutil.LoadCertPool(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if p != nil {
		c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

func TestMutualTLSAndCRL(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, TrustedCAFile: pki.CA,
		ClientCertAuth: true, CRLFile: pki.CRLDER}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	if _, err := dial(addr, clientCfg(t, pki, &pki.Client)); err != nil {
		t.Fatalf("client with a valid certificate: %v", err)
	}
	if _, err := dial(addr, clientCfg(t, pki, nil)); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("client without a certificate: got %v, want certificate required", err)
	}
	if _, err := dial(addr, clientCfg(t, pki, &pki.Revoked)); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("revoked client: got %v, want bad certificate", err)
	}
	if _, err := dial(addr, clientCfg(t, pki, &pki.Untrusted)); err == nil || !strings.Contains(err.Error(), "certificate required") {
		// Go's client sends no certificate the server's CA list does not name.
		t.Fatalf("client of another CA: got %v, want certificate required", err)
	}

	// Revoke the client under the running listener: the next handshake reads the new CRL.
	if err := pki.Revoke(pki.Client.Serial); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, clientCfg(t, pki, &pki.Client)); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("client revoked after start: got %v, want bad certificate", err)
	}
}

func TestServerCertificateRotation(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	st, err := dial(addr, clientCfg(t, pki, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.PeerCertificates[0].SerialNumber, pki.Server.Serial; got.Cmp(want) != 0 {
		t.Fatalf("serial %v, want %v", got, want)
	}
	next, err := pki.Issue("server", "cairn-server", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	st, err = dial(addr, clientCfg(t, pki, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.PeerCertificates[0].SerialNumber, next.Serial; got.Cmp(want) != 0 {
		t.Fatalf("after rotation: serial %v, want %v", got, want)
	}
}

func TestAllowedCN(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, TrustedCAFile: pki.CA,
		ClientCertAuth: true, AllowedCNs: []string{"root"}}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	if _, err := dial(addr, clientCfg(t, pki, &pki.Root)); err != nil {
		t.Fatalf("allowed CN: %v", err)
	}
	if _, err := dial(addr, clientCfg(t, pki, &pki.Client)); err == nil {
		t.Fatal("CN client is not allowed, but the handshake succeeded")
	}
}

func TestClientConfigPresentsCertificate(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, TrustedCAFile: pki.CA, ClientCertAuth: true}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	cli, err := tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, ClientCertFile: pki.Client.Cert,
		ClientKeyFile: pki.Client.Key, TrustedCAFile: pki.CA, ServerName: "localhost"}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, cli()); err != nil {
		t.Fatal(err)
	}
}

func TestBadFiles(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		info tlsutil.Info
		want string
	}{
		{"missing cert", tlsutil.Info{CertFile: pki.Dir + "/nope.pem", KeyFile: pki.Server.Key}, "no such file"},
		{"key of another cert", tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Client.Key}, "private key does not match public key"},
		{"CA that is not PEM", tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, TrustedCAFile: pki.CRLDER}, "no PEM certificate"},
		{"CRL that is a certificate", tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, CRLFile: pki.CA}, "x509"},
		{"min above max", tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS12}, "greater than max"},
	} {
		_, err := tc.info.ServerConfig()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	if _, err := tlsutil.CipherSuites([]string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsutil.CipherSuites([]string{"TLS_NOPE"}); err == nil || err.Error() != `unexpected TLS cipher suite "TLS_NOPE"` {
		t.Fatalf("got %v", err)
	}
	for in, want := range map[string]uint16{"": 0, "TLS1.2": tls.VersionTLS12, "TLS1.3": tls.VersionTLS13} {
		if got, err := tlsutil.Version(in); err != nil || got != want {
			t.Errorf("Version(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	if _, err := tlsutil.Version("TLS1.1"); err == nil {
		t.Error("TLS1.1 accepted")
	}
}

func TestSelfCert(t *testing.T) {
	dir := t.TempDir()
	info, err := tlsutil.SelfCert(dir+"/fixtures/client", []string{"127.0.0.1:2379", "localhost:2379"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tlsutil.LoadKeyPair(info.CertFile, info.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
		t.Fatalf("SANs %v %v", leaf.IPAddresses, leaf.DNSNames)
	}
	// A second start reuses the files.
	again, err := tlsutil.SelfCert(dir+"/fixtures/client", []string{"127.0.0.1:2379"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	pair2, _ := tlsutil.LoadKeyPair(again.CertFile, again.KeyFile)
	if string(pair2.Certificate[0]) != string(pair.Certificate[0]) {
		t.Fatal("the certificate was generated again")
	}
}

// A certificate file that no longer parses (a rotation caught midway)
// leaves the previous certificate in force.
func TestBadReloadKeepsPrevious(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	if err := os.WriteFile(pki.Server.Cert, []byte("-----BEGIN CERTIFICATE-----\ntruncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := dial(addr, clientCfg(t, pki, nil))
	if err != nil {
		t.Fatalf("after a bad rotation: %v", err)
	}
	if got := st.PeerCertificates[0].SerialNumber; got.Cmp(pki.Server.Serial) != 0 {
		t.Fatalf("serial %v, want the previous %v", got, pki.Server.Serial)
	}
}
