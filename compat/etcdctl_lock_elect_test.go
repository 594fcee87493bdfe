package compat

// etcdctl lock and elect test.
//
// What it proves: `etcdctl lock` and `etcdctl elect`, which build on
// clientv3/concurrency (sessions, Mutex, Election) rather than on the Lock
// and Election gRPC services, work against Cairn as against etcd: a lock
// runs a command while held and passes its exit code on; a second locker
// waits until the holder is stopped (SIGTERM unlocks); a second candidate
// is elected only once the leader resigns (SIGTERM resigns), and an
// observer (elect -l) prints each leader in turn. Each flow runs on both
// members; what each etcdctl printed, with the lease IDs in lock and
// election keys replaced by <lease>, and its exit code, must be the same
// on both, besides the behaviour the flow asserts on each.

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

func TestEtcdctlLockElect(t *testing.T) {
	t.Parallel()
	p := newCtlPair(t, cluster.Options{})
	t.Run("lock", func(t *testing.T) { ctlLockSteps(p.with(t)) })
	t.Run("elect", func(t *testing.T) { ctlElectSteps(p.with(t)) })
}

// reSessionKey matches the lease ID that ends a lock or election key.
var reSessionKey = regexp.MustCompile(`(?m)^([a-z]+)/[0-9a-f]{1,16}$`)

// waitQuiet is how long a waiter must stay blocked to count as waiting.
const waitQuiet = 500 * time.Millisecond

func ctlLockSteps(p *ctlPair) {
	p.run("", "", "put", "before", "1") // rev 2
	// A command runs while the lock is held; ETCD_LOCK_REV is the
	// revision that created the lock key.
	p.run("", "", "lock", "mylock", "--", "sh", "-c", `echo "held $ETCD_LOCK_REV"`)
	p.run("", "", "lock", "mylock", "--", "sh", "-c", "exit 3") // its exit code
	p.run("", "", "lock", "mylock", "--", "echo", "after", "--")
	p.run("", "", "get", "mylock", "--prefix", "--keys-only") // released: none
	p.run("", "", "lock")                                     // usage error

	var got [2][]ctlResult
	for side := range 2 {
		got[side] = p.lockFlow(side)
	}
	p.compareFlows("lock mylock, twice at once", got)
	p.run("", "", "get", "mylock", "--prefix", "--keys-only")
}

// lockFlow holds the lock in one etcdctl, starts a second that waits for
// it, stops the first and lets the second run its command.
func (p *ctlPair) lockFlow(side int) []ctlResult {
	p.t.Helper()
	holder := startCtl(p.t, p.bin, p.eps[side], []string{"lock", "mylock"})
	p.awaitOutput(side, holder, "holder", "mylock/")
	waiter := startCtl(p.t, p.bin, p.eps[side], []string{"lock", "mylock", "echo", "waiter got the lock"})
	p.expectBlocked(side, waiter, "the second locker")
	hr := holder.terminate(p.t)
	select {
	case <-waiter.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s: the second locker did not get the lock within 10 s of the holder's unlock", sideName(side))
	}
	wr := waiter.stop(0)
	if hr.Exit != 0 || wr.Exit != 0 || wr.Stdout != "waiter got the lock\n" {
		p.t.Errorf("%s: holder %s\nwaiter %s\nwant both exit 0, the waiter printing its command's output", sideName(side), hr, wr)
	}
	return []ctlResult{hr, wr}
}

func ctlElectSteps(p *ctlPair) {
	p.run("", "", "elect", "myelection")               // no proposal and no -l
	p.run("", "", "elect", "-l", "myelection", "prop") // both
	p.run("", "", "elect")

	var got [2][]ctlResult
	for side := range 2 {
		got[side] = p.electFlow(side)
	}
	p.compareFlows("elect myelection, two candidates and an observer", got)
	p.run("", "", "get", "myelection", "--prefix", "--keys-only") // resigned: none
}

// electFlow runs an observer and two candidates: the second is elected
// when the first resigns.
func (p *ctlPair) electFlow(side int) []ctlResult {
	p.t.Helper()
	observer := startCtl(p.t, p.bin, p.eps[side], []string{"elect", "-l", "myelection"})
	first := startCtl(p.t, p.bin, p.eps[side], []string{"elect", "myelection", "first"})
	p.awaitOutput(side, first, "the first candidate", "\nfirst\n")
	p.awaitOutput(side, observer, "the observer", "\nfirst\n")
	second := startCtl(p.t, p.bin, p.eps[side], []string{"elect", "myelection", "second"})
	p.expectBlocked(side, second, "the second candidate")
	fr := first.terminate(p.t)
	p.awaitOutput(side, second, "the second candidate", "\nsecond\n")
	p.awaitOutput(side, observer, "the observer", "\nsecond\n")
	sr := second.terminate(p.t)
	or := observer.terminate(p.t)
	for _, r := range []ctlResult{fr, sr, or} {
		if r.Exit != 0 {
			p.t.Errorf("%s: an etcdctl elect did not exit 0 on SIGTERM: %s", sideName(side), r)
		}
	}
	const leaders = "myelection/<lease>\nfirst\nmyelection/<lease>\nsecond\n"
	if got := reSessionKey.ReplaceAllString(or.Stdout, "$1/<lease>"); got != leaders {
		p.t.Errorf("%s: the observer printed %q, want %q: the first leader, then the second", sideName(side), got, leaders)
	}
	return []ctlResult{fr, sr, or}
}

// awaitOutput waits until b printed want.
func (p *ctlPair) awaitOutput(side int, b *bgCtl, who, want string) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.output(), want) {
		select {
		case <-b.done:
			p.t.Fatalf("%s: %s exited before printing %q: %s", sideName(side), who, want, b.stop(0))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %s did not print %q within 10 s; printed %q", sideName(side), who, want, b.output())
		}
	}
}

// expectBlocked checks that b neither prints nor exits for waitQuiet.
func (p *ctlPair) expectBlocked(side int, b *bgCtl, who string) {
	p.t.Helper()
	select {
	case <-b.done:
		p.t.Fatalf("%s: %s exited instead of waiting: %s", sideName(side), who, b.stop(0))
	case <-time.After(waitQuiet):
	}
	if out := b.output(); out != "" {
		p.t.Fatalf("%s: %s printed %q instead of waiting", sideName(side), who, out)
	}
}

// terminate sends SIGTERM, which etcdctl lock and elect handle by
// unlocking or resigning, and waits for the process to exit.
func (b *bgCtl) terminate(t *testing.T) ctlResult {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM etcdctl: %v", err)
	}
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Errorf("etcdctl %v did not exit within 10 s of SIGTERM", b.cmd.Args)
	}
	return b.stop(0)
}

// compareFlows compares what each etcdctl of a flow printed on the two
// members, lease IDs in keys aside.
func (p *ctlPair) compareFlows(what string, got [2][]ctlResult) {
	p.t.Helper()
	for side := range 2 {
		for i, r := range got[side] {
			r.Stdout = reSessionKey.ReplaceAllString(r.Stdout, "$1/<lease>")
			got[side][i] = p.normalize(side, r)
		}
	}
	if trace {
		for i, r := range got[etcdSide] {
			p.t.Logf("%s: etcdctl %d on etcd:\n%s", what, i, r)
		}
	}
	if d := cmp.Diff(got[etcdSide], got[cairnSide]); d != "" {
		p.t.Errorf("%s: etcdctl printed differently (-etcd +cairn):\n%s", what, d)
	}
}
