package compat

// etcdctl auth differential test.
//
// What it proves: the real etcdctl v3.7 binary prints the same (stdout,
// stderr, exit code, normalized as in etcdctl_test.go and with lease IDs
// named as in etcdctl_watch_lease_test.go) against Cairn as against etcd
// for one script of user, role and permission commands, and reads,
// writes, watches, leases and txns run as users inside and outside their
// permissions, in simple-token and in JWT mode. etcd's own output is also
// kept in testdata/auth_etcdctl.golden, the transcript of the script, and
// must match it in both modes: etcdctl prints no token, so the two modes
// look the same to a user. Regenerate it with
//
//	go test -run TestAuthEtcdctlDiff . -args -update-auth-golden

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var updateAuthGolden = flag.Bool("update-auth-golden", false, "rewrite testdata/auth_etcdctl.golden from etcd's output")

const authGolden = "testdata/auth_etcdctl.golden"

// authCtl runs etcdctl command lines on the members of a pair that are
// not gated, compares them, and writes etcd's output to a transcript.
type authCtl struct {
	p          *ctlPair
	sides      []int
	transcript strings.Builder
}

func TestAuthEtcdctlDiff(t *testing.T) {
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			p := newCtlPair(t, authOptions(mode.spec(t)))
			a := &authCtl{p: p, sides: []int{etcdSide}}
			conn := dial(t, p.eps[cairnSide])
			if why := cairnAuthGate(t, conn, mode.name); why != "" {
				gateCairn(t, why)
			} else {
				a.sides = append(a.sides, cairnSide)
			}
			authCtlScript(a)
			a.checkGolden(t)
		})
	}
}

// run runs one command line and compares; capture names the lease a
// "lease grant" printed (see ctlPair.run).
func (a *authCtl) run(capture, stdin string, args ...string) {
	p := a.p
	p.t.Helper()
	p.step++
	var res [2]ctlResult
	for _, side := range a.sides {
		res[side] = runCtlRaw(p.t, p.bin, p.eps[side], p.args(side, args), stdin)
		if capture != "" {
			if m := reGranted.FindStringSubmatch(res[side].Stdout); m != nil {
				p.leases[side][capture] = m[1]
			} else {
				p.t.Errorf("step %d: etcdctl %s on %s granted no lease: %s", p.step, shellQuote(args), sideName(side), res[side])
			}
		}
		res[side] = p.normalize(side, res[side])
	}
	a.record(shellQuote(args), stdin, res[etcdSide])
	if len(a.sides) == 2 {
		p.compare(p.step, shellQuote(args), stdin, res)
	}
}

// watch runs a watch in the background until its output holds want (or
// it exits by itself, when want is ""), then stops it and compares.
func (a *authCtl) watch(want string, args ...string) {
	p := a.p
	p.t.Helper()
	p.step++
	var procs [2]*bgCtl
	for _, side := range a.sides {
		procs[side] = startCtl(p.t, p.bin, p.eps[side], p.args(side, args))
	}
	var res [2]ctlResult
	for _, side := range a.sides {
		grace := selfEnd
		if want != "" {
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(normalizeCtl(procs[side].output()), want) {
				if time.Now().After(deadline) {
					p.t.Fatalf("step %d: etcdctl %s on %s did not print %q in 10 s:\n%s",
						p.step, shellQuote(args), sideName(side), want, indent(procs[side].output()))
				}
				time.Sleep(20 * time.Millisecond)
			}
			grace = kill
		}
		res[side] = p.normalize(side, procs[side].stop(grace))
	}
	what := shellQuote(args) + " (in the background)"
	a.record(what, "", res[etcdSide])
	if len(a.sides) == 2 {
		p.compare(p.step, what, "", res)
	}
}

// record appends one step to the transcript, with remaining lease TTLs
// blanked (they depend on timing).
func (a *authCtl) record(what, stdin string, r ctlResult) {
	r.Stdout = reRemaining.ReplaceAllString(r.Stdout, "remaining(<n>s)")
	fmt.Fprintf(&a.transcript, "$ etcdctl %s\n", what)
	if stdin != "" {
		fmt.Fprintf(&a.transcript, "stdin:\n%s\n", indent(stdin))
	}
	fmt.Fprintf(&a.transcript, "%s\n\n", r)
}

// checkGolden compares etcd's transcript with the golden file, or
// rewrites it with -update-auth-golden.
func (a *authCtl) checkGolden(t *testing.T) {
	t.Helper()
	got := a.transcript.String()
	if *updateAuthGolden {
		if err := os.MkdirAll(filepath.Dir(authGolden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(authGolden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(authGolden)
	if err != nil {
		t.Fatalf("read %s: %v (regenerate with -args -update-auth-golden)", authGolden, err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("etcd's etcdctl transcript differs from %s (-golden +etcd):\n%s", authGolden, d)
	}
}

// Users of the script and their etcdctl flags.
const (
	asRoot  = "--user=root:rootpw"
	asAlice = "--user=alice:alicepw"
	asBob   = "--user=bob:bobpw"
)

func authCtlScript(a *authCtl) {
	// Auth disabled.
	a.run("", "", "auth", "status")
	a.run("", "", "auth", "enable") // no root user
	a.run("", "", "user", "add", "root:rootpw")
	a.run("", "", "user", "add", "root:again")
	a.run("", "", "user", "add", "alice", "--new-user-password=alicepw")
	a.run("", "", "user", "add", "bob:bobpw")
	a.run("", "", "user", "add", "carol", "--no-password")
	a.run("", "dave-pw\n", "user", "add", "dave", "--interactive=false")
	a.run("", "", "user", "add", ":x")
	a.run("", "", "role", "add", "reader")
	a.run("", "", "role", "add", "writer")
	a.run("", "", "role", "add", "reader")
	a.run("", "", "role", "add", "")
	a.run("", "", "role", "grant-permission", "reader", "read", "foo")
	a.run("", "", "role", "grant-permission", "reader", "read", "pub/", "--prefix")
	a.run("", "", "role", "grant-permission", "reader", "read", "x", "--from-key")
	a.run("", "", "role", "grant-permission", "writer", "readwrite", "app/", "--prefix")
	a.run("", "", "role", "grant-permission", "writer", "write", "a", "c")
	a.run("", "", "role", "grant-permission", "writer", "readwrite", "both")
	a.run("", "", "role", "grant-permission", "writer", "bogus", "k")
	a.run("", "", "role", "grant-permission", "nosuch", "read", "k")
	a.run("", "", "role", "grant-permission", "writer", "read", "b", "a")
	a.run("", "", "role", "get", "reader")
	a.run("", "", "role", "get", "writer")
	a.run("", "", "role", "get", "nosuch")
	a.run("", "", "role", "list")
	a.run("", "", "user", "grant-role", "alice", "reader")
	a.run("", "", "user", "grant-role", "bob", "writer")
	a.run("", "", "user", "grant-role", "bob", "nosuch")
	a.run("", "", "user", "grant-role", "nosuch", "reader")
	a.run("", "", "user", "get", "alice")
	a.run("", "", "user", "get", "alice", "--detail")
	a.run("", "", "user", "get", "bob", "--detail", "-w", "json")
	a.run("", "", "user", "get", "nosuch")
	a.run("", "", "user", "list")
	a.run("", "", "user", "list", "-w", "json")
	a.run("", "", "user", "revoke-role", "alice", "writer")
	a.run("", "", "user", "delete", "dave")
	a.run("", "", "user", "delete", "dave")
	a.run("", "", "put", "foo", "1")
	a.run("", "", "put", "pub/a", "2")
	a.run("", "", "put", "secret", "3")
	a.run("", "", "put", "zz", "4")
	// etcdctl adds the root role and grants it to root, then enables.
	a.run("", "", "auth", "enable")
	a.run("", "", "auth", "status")

	// Auth enabled: who may do what.
	a.run("", "", "get", "foo")
	a.run("", "", "put", "foo", "x")
	a.run("", "", "get", "foo", "--user=alice:wrong")
	a.run("", "", "get", "foo", "--user=nosuch:pw")
	a.run("", "", "get", "foo", "--user=carol:")
	a.run("", "", "get", "foo", "--user=alice", "--password=alicepw")
	a.run("", "", "auth", "status", asAlice)
	a.run("", "", "auth", "status", asRoot)
	a.run("", "", "get", "foo", asAlice)
	a.run("", "", "get", "foo", asAlice, "-w", "json")
	a.run("", "", "put", "foo", "x", asAlice)
	a.run("", "", "get", "pub/", "--prefix", asAlice)
	a.run("", "", "get", "zz", asAlice)
	a.run("", "", "get", "x", "--from-key", asAlice)
	a.run("", "", "get", "", "--prefix", asAlice)
	a.run("", "", "get", "secret", asAlice)
	a.run("", "", "del", "foo", asAlice)
	a.run("", "", "put", "app/k", "v", asBob)
	a.run("", "", "put", "app/k", "v2", "--prev-kv", asBob)
	a.run("", "", "get", "app/", "--prefix", asBob)
	a.run("", "", "put", "b", "w", asBob)
	a.run("", "", "get", "b", asBob)
	a.run("", "", "del", "b", "--prev-kv", asBob)
	a.run("", "", "del", "b", asBob)
	a.run("", "", "get", "", "--prefix", asRoot)
	a.run("", "", "user", "list", asAlice)
	a.run("", "", "user", "get", "alice", asAlice)
	a.run("", "", "user", "get", "bob", asAlice)
	a.run("", "", "role", "get", "reader", asAlice)
	a.run("", "", "role", "get", "writer", asAlice)
	a.run("", "", "role", "list", asRoot)
	a.run("", "", "user", "list", asRoot)
	a.run("", "", "user", "get", "root", "--detail", asRoot)
	a.run("", "", "role", "get", "root", asRoot)
	a.run("", "", "user", "add", "eve:x", asAlice)
	a.run("", "", "auth", "disable", asAlice)

	// Txn, inside and outside permissions.
	a.run("", "value(\"zz\") = \"4\"\n\nget zz\nget pub/a\n\nget foo\n\n", "txn", asAlice)
	a.run("", "value(\"secret\") = \"3\"\n\nget zz\n\n\n", "txn", asAlice)
	a.run("", "\nput app/t 1\nput both 2\n\n\n", "txn", asBob)
	a.run("", "\nput app/t 1\nput secret 2\n\n\n", "txn", asBob)
	a.run("", "\nput secret r\nget secret\n\n\n", "txn", "-w", "json", asRoot)

	// Watches: created and canceled as the permissions say.
	a.watch("PUT\nzz\n4\n", "watch", "--rev", "1", "zz", asAlice)
	a.watch("PUT\npub/a\n2\n", "watch", "--rev", "1", "--prefix", "pub/", asAlice)
	a.watch("", "watch", "secret", asAlice)
	a.watch("", "watch", "--prefix", "", asAlice)
	a.watch("", "watch", "zz")

	// Leases: revoking a lease whose keys the caller may not write.
	a.run("L1", "", "lease", "grant", "60", asRoot)
	a.run("", "", "put", "secret", "leased", "--lease={L1}", asRoot)
	a.run("L2", "", "lease", "grant", "60", asBob)
	a.run("", "", "put", "app/l", "leased", "--lease={L2}", asBob)
	a.run("", "", "put", "app/l2", "leased", "--lease={L1}", asBob)
	a.run("", "", "lease", "timetolive", "{L2}", "--keys", asBob)
	a.run("", "", "lease", "timetolive", "{L1}", "--keys", asBob)
	a.run("", "", "lease", "list", asBob)
	a.run("", "", "lease", "list", asRoot)
	a.run("", "", "lease", "keep-alive", "--once", "{L2}", asBob)
	a.run("", "", "lease", "keep-alive", "--once", "{L1}", asBob)
	a.run("", "", "lease", "revoke", "{L1}", asBob)
	a.run("", "", "lease", "revoke", "{L2}", asBob)
	a.run("", "", "lease", "revoke", "{L1}", asRoot)
	a.run("", "", "get", "", "--prefix", "--keys-only", asRoot)

	// Maintenance and cluster calls.
	a.run("", "", "compaction", "3", asAlice)
	a.run("", "", "compaction", "3", asRoot)
	a.run("", "", "member", "list", asAlice)
	a.run("", "", "member", "list")
	a.run("", "", "alarm", "list", asAlice)
	a.run("", "", "defrag", asAlice)
	a.run("", "", "endpoint", "hashkv", asAlice)

	// Changes to users and roles while enabled.
	a.run("", "", "user", "delete", "root", asRoot)
	a.run("", "", "role", "delete", "root", asRoot)
	a.run("", "", "user", "revoke-role", "root", "root", asRoot)
	a.run("", "newpw\n", "user", "passwd", "alice", "--interactive=false", asRoot)
	a.run("", "", "get", "zz", asAlice)
	a.run("", "", "get", "zz", "--user=alice:newpw")
	a.run("", "", "role", "revoke-permission", "reader", "x", "--from-key", asRoot)
	a.run("", "", "role", "revoke-permission", "reader", "x", asRoot)
	a.run("", "", "role", "revoke-permission", "reader", "pub/", "--prefix", asRoot)
	a.run("", "", "get", "zz", "--user=alice:newpw")
	a.run("", "", "role", "get", "reader", asRoot)
	a.run("", "", "user", "revoke-role", "bob", "writer", asRoot)
	a.run("", "", "put", "app/k", "v3", asBob)
	a.run("", "", "role", "delete", "writer", asRoot)
	a.run("", "", "user", "delete", "bob", asRoot)
	a.run("", "", "get", "foo", asBob)
	a.run("", "", "user", "list", asRoot)
	a.run("", "", "role", "list", asRoot)
	a.run("", "", "auth", "disable", asRoot)
	a.run("", "", "auth", "status")
	a.run("", "", "get", "secret")
	a.run("", "", "auth", "enable")
	a.run("", "", "get", "secret")
	a.run("", "", "get", "secret", asRoot)
	a.run("", "", "auth", "disable", asRoot)
}
