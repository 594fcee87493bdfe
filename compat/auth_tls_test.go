package compat

// Client-certificate authentication differential test.
//
// What it proves: with --client-cert-auth and auth enabled, the real
// etcdctl gets the same answers from Cairn as from etcd 3.7.4 when the
// user is the certificate's common name: the CN's permissions apply, the
// CN "root" is root, a token (--user) takes precedence over the CN, a
// wrong password still fails, and a revoked certificate is refused at the
// handshake. Each step states etcd's expected exit code and a line of its
// output, checked on etcd; the Cairn side is gated until Cairn serves
// Auth (auth_harness_test.go).

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
	"github.com/cairn-kv/cairn/pkg/tlsutil/testcerts"
)

func TestAuthTLSCommonNameDiff(t *testing.T) {
	bin := etcdctl(t)
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := authOptions("simple")
	opts.TLS = &cluster.TLS{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key,
		TrustedCAFile: pki.CA, CRLFile: pki.CRLDER, ClientCertAuth: true}
	cairnEps, etcdEps := cluster.StartBothWith(t, opts)
	run := func(ep string, args []string) ctlResult {
		cmd := exec.Command(bin, append([]string{"--endpoints=https://" + ep, "--dial-timeout=2s", "--command-timeout=5s"}, args...)...)
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
	as := func(p testcerts.Pair, args ...string) []string {
		return append([]string{"--cacert=" + pki.CA, "--cert=" + p.Cert, "--key=" + p.Key}, args...)
	}

	// Gate: Cairn without an Auth service answers auth status with
	// Unimplemented.
	gated := false
	if r := run(cairnEps[0], as(pki.Client, "auth", "status")); r.Exit != 0 {
		gateCairn(t, "Cairn answers etcdctl auth status with: "+strings.TrimSpace(r.Stderr))
		gated = true
	}

	steps := []struct {
		args []string
		exit int
		out  string // a line etcd prints, on stdout or stderr
	}{
		{as(pki.Client, "user", "add", "root:rootpw"), 0, "User root created"},
		{as(pki.Client, "user", "add", "client", "--no-password"), 0, "User client created"},
		{as(pki.Client, "role", "add", "r"), 0, "Role r created"},
		{as(pki.Client, "role", "grant-permission", "r", "readwrite", "k/", "--prefix"), 0, "Role r updated"},
		{as(pki.Client, "user", "grant-role", "client", "r"), 0, "Role r is granted to user client"},
		{as(pki.Client, "put", "other", "o"), 0, "OK"},
		{as(pki.Client, "auth", "enable"), 0, "Authentication Enabled"},
		// The certificate's CN is the user.
		{as(pki.Client, "put", "k/1", "v"), 0, "OK"},
		{as(pki.Client, "get", "k/", "--prefix"), 0, "k/1"},
		{as(pki.Client, "get", "other"), 1, "Error: etcdserver: permission denied"},
		{as(pki.Client, "user", "list"), 1, "Error: etcdserver: permission denied"},
		{as(pki.Client, "auth", "status"), 0, "Authentication Status: true"},
		{as(pki.Client, "user", "get", "client"), 0, "Roles: r"},
		// CN root is root.
		{as(pki.Root, "get", "other"), 0, "o"},
		{as(pki.Root, "user", "list"), 0, "client"},
		// A CN that is not a user: every permission check fails.
		{as(pki.Server, "get", "k/1"), 1, "Error: etcdserver: permission denied"},
		// A token wins over the CN; a bad password fails.
		{as(pki.Client, "--user=root:rootpw", "get", "other"), 0, "o"},
		{as(pki.Root, "--user=client:x", "get", "other"), 2, "Error: rpc error: code = Unknown desc = auth: authentication failed, password was given for no password user"},
		{as(pki.Root, "--user=root:wrong", "get", "other"), 2, "Error: etcdserver: authentication failed, invalid user ID or password"},
		// A revoked certificate never gets to auth.
		{as(pki.Revoked, "get", "k/1"), 1, ""},
		{as(pki.Root, "auth", "disable"), 0, "Authentication Disabled"},
		{as(pki.Client, "get", "other"), 0, "o"},
	}
	for i, s := range steps {
		e := run(etcdEps[0], s.args)
		if trace {
			t.Logf("step %d: etcdctl %s\n%s", i+1, shellQuote(s.args), e)
		}
		if e.Exit != s.exit || !strings.Contains(e.Stdout+e.Stderr, s.out) {
			t.Errorf("step %d: etcdctl %s: etcd (the oracle) answered\n%s\nthe test expects exit %d and %q", i+1, shellQuote(s.args[3:]), e, s.exit, s.out)
		}
		if gated {
			continue
		}
		c := run(cairnEps[0], s.args)
		if d := cmp.Diff(e, c); d != "" {
			t.Errorf("step %d: etcdctl %s\netcd:\n%s\ncairn:\n%s", i+1, shellQuote(s.args[3:]), e, c)
		}
	}
}
