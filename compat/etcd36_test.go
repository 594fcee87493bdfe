package compat

// The etcd v3.6.16 oracle, and 3.6 clients against Cairn.
//
// The suites compare Cairn with etcd 3.7.4, the release whose behaviour
// Cairn implements. Run with etcd v3.6.16 in Cairn's place, every suite
// (the random test over 200 seeds too) finds 3.6 and 3.7 answering alike
// but for these:
//
//   - Status reports the server's release and storage version (3.6.16 and
//     3.6.0, against 3.7.4 and 3.7.0), and so does etcdctl endpoint status;
//   - a keys-only range whose sort target is not VALUE leaves the lease out
//     of each key-value in 3.7 (served from the index), where 3.6 sends it;
//   - a put with ignore_value of a missing key and a missing lease fails,
//     inside a txn, with "requested lease not found" (NotFound) in 3.7 (the
//     lease is checked first, as for a put on its own) and "key not found"
//     (InvalidArgument) in 3.6.
//
// A 3.6 client gets 3.7's answers from a real etcd 3.7 cluster too, and
// none of these breaks one, so those cases compare with 3.7 like the rest:
// no case needs the 3.6 oracle as its reference.
//
// What 3.6 clients need is that they keep working against Cairn: the
// etcdctl v3.6.16 binary, built on clientv3 v3.6.16 with its gogoproto
// messages, runs a basic transcript (put, get, del, txn, compaction,
// lease, watch, endpoint and member commands) against a fresh etcd v3.6.16
// member and a fresh Cairn member, compared as in etcdctl_test.go, with
// versions reduced to "3.x" and without the two request shapes above.
// etcd 3.6 and etcdctl 3.6 come from the module in oracle36/ (one module
// cannot require two releases of etcd), built with go build; the server
// runs as a subprocess (cluster.StartEtcd36).

import (
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

var (
	etcd36Once              sync.Once
	etcd36Server, etcdctl36 string
	etcd36Err               error
	reVersion3x             = regexp.MustCompile(`\b3\.[67]\.(\d+|x)\b`)
)

// etcd36 returns the paths of the etcd v3.6.16 server and etcdctl binaries,
// building them on first use.
func etcd36(t *testing.T) (server, etcdctl string) {
	t.Helper()
	etcd36Once.Do(func() {
		etcd36Server, etcdctl36, etcd36Err = cluster.BuildEtcd36(binDir)
	})
	if etcd36Err != nil {
		t.Fatal(etcd36Err)
	}
	return etcd36Server, etcdctl36
}

// TestEtcd36Clients runs etcdctl v3.6.16 against etcd v3.6.16 and Cairn.
func TestEtcd36Clients(t *testing.T) {
	t.Parallel()
	server, bin := etcd36(t)
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.Contains(string(out), "etcdctl version: 3.6.16\n") {
		t.Fatalf("%s version: %q, %v; want etcdctl 3.6.16", bin, out, err)
	}
	etcdEps, _ := cluster.StartEtcd36(t, server, cluster.Options{})
	cairnEps, _ := cluster.StartCairn(t)
	p := &ctlPair{t: t, bin: bin, eps: [2]string{etcdSide: etcdEps[0], cairnSide: cairnEps[0]}}
	p.also = func(s string) string { return reVersion3x.ReplaceAllString(s, "3.x") }
	for side := range 2 {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{p.eps[side]}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatalf("client for %s: %v", sideName(side), err)
		}
		t.Cleanup(func() { c.Close() })
		p.client[side] = c
		p.leases[side] = map[string]string{}
	}

	p.run("", "", "put", "foo", "bar")                         // rev 2
	p.run("", "", "put", "foo", "bar2", "--prev-kv")           // rev 3
	p.run("", "", "put", "a", "1", "-w", "json")               // rev 4
	p.run("", "", "put", "ab", "2", "--prev-kv", "-w", "json") // rev 5
	p.run("", "", "put", "missing", "--ignore-value")
	p.run("", "", "get", "foo")
	p.run("", "", "get", "nope")
	p.run("", "", "get", "", "--prefix", "-w", "json")
	p.run("", "", "get", "a", "--prefix", "-w", "fields")
	p.run("", "", "get", "a", "--prefix", "--keys-only")
	p.run("", "", "get", "a", "--prefix", "--count-only", "-w", "fields")
	p.run("", "", "get", "", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND", "--limit", "2")
	p.run("", "", "get", "foo", "--rev", "2")
	p.run("", "", "get", "foo", "--rev", "100")
	p.run("", "", "get", "foo", "--consistency", "s", "-w", "json")

	p.run("L1", "", "lease", "grant", "100")
	p.run("", "", "put", "--lease={L1}", "l/a", "1") // rev 6
	p.run("", "", "put", "--lease=1234abcd", "l/b", "2")
	p.run("", "", "get", "l/a", "-w", "json")
	p.run("", "", "lease", "timetolive", "{L1}", "--keys")
	p.run("", "", "lease", "list")
	p.run("", "", "lease", "keep-alive", "--once", "{L1}")

	p.run("", `value("foo") = "bar2"

put t1 1
get foo

put t1 0

`, "txn", "-w", "json") // rev 7
	p.run("", `mod("t1") > "100"

put t2 2

del t1 --prev-kv
get t --prefix

`, "txn") // rev 8: failure

	w := p.startWatch("watch", "--prefix", "--rev", "2", "--prev-kv", "")
	w.await("DELETE\nt1\n", 1)
	w.stop(kill)

	p.run("", "", "del", "foo", "--prev-kv") // rev 9
	p.run("", "", "del", "a", "--prefix")    // rev 10
	p.run("", "", "lease", "revoke", "{L1}") // rev 11: l/a
	p.run("", "", "get", "", "--prefix")
	p.run("", "", "compaction", "3")
	p.run("", "", "get", "foo", "--rev", "2")
	p.run("", "", "compaction", "3")

	cluster.WaitEtcdSettled(t, p.eps[etcdSide])
	p.run("", "", "endpoint", "status", "-w", "json")
	p.run("", "", "endpoint", "health")
	p.run("", "", "member", "list", "-w", "json")
	p.run("", "", "alarm", "list")
	p.run("", "", "defrag")
}
