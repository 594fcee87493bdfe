package compat

// Client TLS against etcd: the same certificates, flags and clients give
// the same results on both servers.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
	"github.com/cairn-kv/cairn/pkg/tlsutil/testcerts"
)

// handshake connects with cfg (nil: plaintext), sends gRPC's HTTP/2
// preface and reads the server's first byte: "ok", or the error.
func handshake(addr string, cfg *tls.Config) string {
	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: 3 * time.Second}
	if cfg == nil {
		conn, err = d.Dial("tcp", addr)
	} else {
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"h2"} // as a gRPC client
		conn, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	}
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")); err != nil {
		return err.Error()
	}
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return err.Error()
	}
	return "ok"
}

// refused classes a handshake outcome: the client was served or not.
func refused(outcome string) bool { return outcome != "ok" }

func TestTLSClientAuthMatchesEtcd(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := cluster.Options{TLS: &cluster.TLS{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key,
		TrustedCAFile: pki.CA, CRLFile: pki.CRLDER, ClientCertAuth: true,
		MaxVersion: "TLS1.2", CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}}}
	cairnEps, etcdEps := cluster.StartBothWith(t, opts)

	b, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b)
	withCert := func(p *testcerts.Pair) *tls.Config {
		cfg := &tls.Config{RootCAs: roots}
		if p != nil {
			c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		return cfg
	}
	tls13 := withCert(&pki.Client)
	tls13.MinVersion = tls.VersionTLS13
	otherSuite := withCert(&pki.Client)
	otherSuite.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}

	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		// exact: the two servers' outcomes must match word for word;
		// otherwise only whether the client was served.
		exact bool
	}{
		{"client certificate", withCert(&pki.Client), true},
		{"no client certificate", withCert(nil), true},
		{"certificate of an untrusted CA", withCert(&pki.Untrusted), true},
		{"TLS 1.3 only", tls13, true},
		{"cipher suite not allowed", otherSuite, true},
		{"plaintext", nil, true},
		// etcd checks the CRL after the handshake and closes the
		// connection (the client reads EOF); Cairn checks it during the
		// handshake and sends a bad_certificate alert.
		{"revoked certificate", withCert(&pki.Revoked), false},
	} {
		c, e := handshake(cairnEps[0], tc.cfg), handshake(etcdEps[0], tc.cfg)
		if trace {
			t.Logf("%s: cairn %q, etcd %q", tc.name, c, e)
		}
		if tc.exact && c != e || refused(c) != refused(e) {
			t.Errorf("%s: cairn %q, etcd %q", tc.name, c, e)
		}
	}

	// A clientv3 client with the client certificate gets the same answers.
	put := func(ep string) string {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + ep}, TLS: withCert(&pki.Root), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err.Error()
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := cli.Put(ctx, "k", "v"); err != nil {
			return err.Error()
		}
		r, err := cli.Get(ctx, "k")
		if err != nil {
			return err.Error()
		}
		return strings.Join([]string{string(r.Kvs[0].Key), string(r.Kvs[0].Value)}, "=")
	}
	if c, e := put(cairnEps[0]), put(etcdEps[0]); c != e || c != "k=v" {
		t.Errorf("put and get over TLS: cairn %q, etcd %q", c, e)
	}
}

// The real etcdctl with the same certificates gets the same output from
// both servers: served with a client certificate, refused without one or
// with a revoked one.
func TestEtcdctlTLSDiff(t *testing.T) {
	bin := etcdctl(t)
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cairnEps, etcdEps := cluster.StartBothWith(t, cluster.Options{TLS: &cluster.TLS{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key,
		TrustedCAFile: pki.CA, CRLFile: pki.CRLDER, ClientCertAuth: true}})
	run := func(ep string, args ...string) ctlResult {
		cmd := exec.Command(bin, append([]string{"--endpoints=https://" + ep, "--dial-timeout=1s", "--command-timeout=2s"}, args...)...)
		cmd.Env = ctlEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		exit := 0
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("run etcdctl: %v", err)
			}
			exit = ee.ExitCode()
		}
		return userView(ctlResult{Stdout: stdout.String(), Stderr: stderr.String(), Exit: exit})
	}
	withCert := func(p testcerts.Pair, args ...string) []string {
		return append([]string{"--cacert=" + pki.CA, "--cert=" + p.Cert, "--key=" + p.Key}, args...)
	}
	for _, args := range [][]string{
		withCert(pki.Client, "put", "k", "v"),
		withCert(pki.Client, "get", "k", "-w", "json"),
		withCert(pki.Root, "get", "k", "--print-value-only"),
		{"--cacert=" + pki.CA, "get", "k"},
		withCert(pki.Revoked, "get", "k"),
		{"--insecure-transport=false", "--insecure-skip-tls-verify", "--cert=" + pki.Client.Cert, "--key=" + pki.Client.Key, "get", "k", "--print-value-only"},
	} {
		e, c := run(etcdEps[0], args...), run(cairnEps[0], args...)
		if trace {
			t.Logf("etcdctl %s\n%s", shellQuote(args), c)
		}
		if d := cmp.Diff(e, c); d != "" {
			t.Errorf("etcdctl %s\netcd:\n%s\ncairn:\n%s", shellQuote(args), e, c)
		}
	}
}
