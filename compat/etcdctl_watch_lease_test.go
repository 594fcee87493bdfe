package compat

// etcdctl watch and lease differential test.
//
// What it proves: the real etcdctl v3.7 binary prints the same for its
// watch and lease commands against Cairn as against etcd. A watch runs in
// the background on both members while the test writes; it is stopped once
// both printed what the test waits for, then its stdout, stderr and exit
// code are compared as in etcdctl_test.go (normalizeCtl). Besides that
// normalization, only what timers decide is reduced:
//
//   - a plain watch (no --rev) must exist before the writes it should see,
//     and etcdctl says nothing when it does: the test writes a probe value
//     to the watched key on both members in lockstep, so revisions stay
//     equal, until both printed it, and drops the probe events from the
//     output;
//   - runs of identical "progress notify" lines, and of identical
//     "keepalived" lines, count as one;
//   - lease IDs the servers chose are captured from "lease grant" and
//     replaced by <L1>, <L2>...; a later command line names them {L1}...;
//   - remaining TTLs may differ by a second, and the attached keys are
//     sorted (etcd lists them from a Go map).
//
// lock and elect, which run on clientv3/concurrency, are in
// etcdctl_lock_elect_test.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// bgCtl is an etcdctl process that runs while the test goes on.
type bgCtl struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when the process has exited
	exit  int

	mu             sync.Mutex
	stdout, stderr bytes.Buffer
}

// lockedWriter appends to a buffer under the bgCtl's lock.
type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func startCtl(t *testing.T, bin, endpoint string, args []string) *bgCtl {
	t.Helper()
	all := append([]string{"--endpoints=" + endpoint, "--dial-timeout=5s", "--command-timeout=10s"}, args...)
	b := &bgCtl{cmd: exec.Command(bin, all...), done: make(chan struct{})}
	b.cmd.Env = ctlEnv()
	b.cmd.Stdout = lockedWriter{&b.mu, &b.stdout}
	b.cmd.Stderr = lockedWriter{&b.mu, &b.stderr}
	stdin, err := b.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.stdin = stdin
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start etcdctl %s: %v", shellQuote(args), err)
	}
	go func() {
		defer close(b.done)
		err := b.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			b.exit = ee.ExitCode() // -1 when killed
		default:
			b.exit = -2
		}
	}()
	t.Cleanup(func() {
		b.cmd.Process.Kill()
		<-b.done
	})
	return b
}

func (b *bgCtl) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stdout.String()
}

// stop closes stdin, gives the process grace to exit on its own, kills it
// otherwise, and returns what it printed (not normalized).
func (b *bgCtl) stop(grace time.Duration) ctlResult {
	b.stdin.Close()
	select {
	case <-b.done:
	case <-time.After(grace):
		b.cmd.Process.Kill()
		<-b.done
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return ctlResult{Stdout: b.stdout.String(), Stderr: b.stderr.String(), Exit: b.exit}
}

// ctlPair runs etcdctl against both members of a pair.
type ctlPair struct {
	t      *testing.T
	bin    string
	eps    [2]string
	client [2]*clientv3.Client
	// leases maps, per member, a lease name (L1, L2...) to the hex ID the
	// member chose.
	leases [2]map[string]string
	step   int
	// also, if set, normalizes further what both members printed (after
	// normalize's own).
	also func(string) string
}

func newCtlPair(t *testing.T, opts cluster.Options) *ctlPair {
	t.Helper()
	bin := etcdctl(t)
	cairnEps, etcdEps := cluster.StartBothWith(t, opts)
	p := &ctlPair{t: t, bin: bin, eps: [2]string{etcdSide: etcdEps[0], cairnSide: cairnEps[0]}}
	for side := range 2 {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{p.eps[side]}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatalf("client for %s: %v", sideName(side), err)
		}
		t.Cleanup(func() { c.Close() })
		p.client[side] = c
		p.leases[side] = map[string]string{}
	}
	return p
}

// reLeaseName matches a lease name in a command line template.
var reLeaseName = regexp.MustCompile(`\{(L\d+)\}`)

// args fills the lease names of a command line with the member's IDs.
func (p *ctlPair) args(side int, args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = reLeaseName.ReplaceAllStringFunc(a, func(m string) string {
			if id, ok := p.leases[side][m[1:len(m)-1]]; ok {
				return id
			}
			return m
		})
	}
	return out
}

// normalize names the member's lease IDs and applies userView.
func (p *ctlPair) normalize(side int, r ctlResult) ctlResult {
	for _, s := range []*string{&r.Stdout, &r.Stderr} {
		for name, hex := range p.leases[side] {
			id, _ := strconv.ParseInt(hex, 16, 64)
			*s = strings.ReplaceAll(*s, hex, "<"+name+">")
			*s = regexp.MustCompile(`\b`+strconv.FormatInt(id, 10)+`\b`).ReplaceAllString(*s, "<"+name+">")
		}
	}
	r = userView(r)
	r.Stdout, r.Stderr = sortAttachedKeys(r.Stdout), sortAttachedKeys(r.Stderr)
	if p.also != nil {
		r.Stdout, r.Stderr = p.also(r.Stdout), p.also(r.Stderr)
	}
	return r
}

// run runs one command line on both members and compares the outputs.
// capture, if set, names the lease a "lease grant" printed.
func (p *ctlPair) run(capture, stdin string, args ...string) {
	p.t.Helper()
	p.step++
	var res [2]ctlResult
	for side := range 2 {
		res[side] = runCtlRaw(p.t, p.bin, p.eps[side], p.args(side, args), stdin)
		if capture != "" {
			if m := reGranted.FindStringSubmatch(res[side].Stdout); m != nil {
				p.leases[side][capture] = m[1]
			} else if m := reGrantedJSON.FindStringSubmatch(res[side].Stdout); m != nil {
				id, _ := strconv.ParseInt(m[1], 10, 64)
				p.leases[side][capture] = fmt.Sprintf("%016x", id)
			} else {
				p.t.Errorf("step %d: etcdctl %s on %s granted no lease: %s", p.step, shellQuote(args), sideName(side), res[side])
			}
		}
		res[side] = p.normalize(side, res[side])
	}
	p.compare(p.step, shellQuote(args), stdin, res)
}

var (
	reGranted     = regexp.MustCompile(`lease ([0-9a-f]{16}) granted`)
	reGrantedJSON = regexp.MustCompile(`"ID":(\d+),"TTL"`)
)

// runCtlRaw is runCtl without normalization.
func runCtlRaw(t *testing.T, bin, endpoint string, args []string, stdin string) ctlResult {
	t.Helper()
	all := append([]string{"--endpoints=" + endpoint, "--dial-timeout=5s", "--command-timeout=10s"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = ctlEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	exit := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run etcdctl %s: %v", shellQuote(args), err)
		}
		exit = ee.ExitCode()
	}
	return ctlResult{Stdout: stdout.String(), Stderr: stderr.String(), Exit: exit}
}

func (p *ctlPair) compare(step int, what, stdin string, res [2]ctlResult) {
	p.t.Helper()
	res[cairnSide] = alignRemaining(res[etcdSide], res[cairnSide])
	if trace {
		p.t.Logf("step %d: etcdctl %s\n%s", step, what, res[etcdSide])
	}
	if d := cmp.Diff(res[etcdSide], res[cairnSide]); d != "" {
		p.t.Errorf("step %d: etcdctl %s\nstdin:\n%s\netcd:\n%s\ncairn:\n%s\ndiff (-etcd +cairn):\n%s",
			step, what, indent(stdin), res[etcdSide], res[cairnSide], d)
	}
}

// bgWatch is one etcdctl watch running on both members.
type bgWatch struct {
	p    *ctlPair
	step int
	args []string
	proc [2]*bgCtl
}

func (p *ctlPair) startWatch(args ...string) *bgWatch {
	p.t.Helper()
	p.step++
	w := &bgWatch{p: p, step: p.step, args: args}
	for side := range 2 {
		w.proc[side] = startCtl(p.t, p.bin, p.eps[side], p.args(side, args))
	}
	return w
}

// await waits until both outputs hold want (after normalization) at
// least n times.
func (w *bgWatch) await(want string, n int) {
	w.p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok [2]bool
		for side := range 2 {
			ok[side] = strings.Count(normalizeCtl(w.proc[side].output()), want) >= n
		}
		if ok[etcdSide] && ok[cairnSide] {
			return
		}
		if time.Now().After(deadline) {
			w.p.t.Fatalf("step %d: etcdctl %s: %q not printed %d times after 10 s (etcd %v, cairn %v)\netcd stdout:\n%s\ncairn stdout:\n%s",
				w.step, shellQuote(w.args), want, n, ok[etcdSide], ok[cairnSide],
				indent(w.proc[etcdSide].output()), indent(w.proc[cairnSide].output()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe writes value to key on both members, in lockstep, until both
// watches printed it: then the watches exist.
func (w *bgWatch) probe(key, value string) {
	w.p.t.Helper()
	want := "PUT\n" + key + "\n" + value + "\n"
	for i := 0; ; i++ {
		for side := range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			_, err := w.p.client[side].Put(ctx, key, value)
			cancel()
			if err != nil {
				w.p.t.Fatalf("probe put on %s: %v", sideName(side), err)
			}
		}
		time.Sleep(50 * time.Millisecond)
		if strings.Contains(w.proc[etcdSide].output(), want) && strings.Contains(w.proc[cairnSide].output(), want) {
			return
		}
		if i == 100 {
			w.p.t.Fatalf("step %d: etcdctl %s did not print the probe %q after 100 writes", w.step, shellQuote(w.args), want)
		}
	}
}

// send writes a line to both watches' stdin (interactive mode).
func (w *bgWatch) send(line string) {
	w.p.t.Helper()
	for side := range 2 {
		if _, err := io.WriteString(w.proc[side].stdin, line); err != nil {
			w.p.t.Fatalf("write to etcdctl on %s: %v", sideName(side), err)
		}
	}
}

// stop ends both watches and compares what they printed; drop removes
// text (probe events) from stdout first.
func (w *bgWatch) stop(grace time.Duration, drop ...string) {
	w.p.t.Helper()
	var res [2]ctlResult
	for side := range 2 {
		r := w.proc[side].stop(grace)
		for _, d := range drop {
			r.Stdout = strings.ReplaceAll(r.Stdout, d, "")
		}
		r.Stdout = collapseRuns(r.Stdout, "progress notify: ", "keepalived with TTL")
		res[side] = w.p.normalize(side, r)
	}
	w.p.compare(w.step, shellQuote(w.args)+" (in the background)", "", res)
}

// collapseRuns removes a line that repeats the line before it when it
// contains one of the markers.
func collapseRuns(s string, markers ...string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for i, l := range lines {
		if i > 0 && l == lines[i-1] {
			dup := false
			for _, m := range markers {
				dup = dup || strings.Contains(l, m)
			}
			if dup {
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

var (
	reRemaining    = regexp.MustCompile(`remaining\((-?\d+)s\)|"ttl":(-?\d+)`)
	reAttachedKeys = regexp.MustCompile(`attached keys\(\[([^\]]*)\]\)`)
	reJSONKeys     = regexp.MustCompile(`"keys":\[([^\]]*)\]`)
)

// alignRemaining gives Cairn's output etcd's remaining TTLs where the two
// differ by at most a second, occurrence by occurrence.
func alignRemaining(etcd, cairn ctlResult) ctlResult {
	em := reRemaining.FindAllStringSubmatch(etcd.Stdout, -1)
	i := 0
	cairn.Stdout = reRemaining.ReplaceAllStringFunc(cairn.Stdout, func(m string) string {
		defer func() { i++ }()
		if i >= len(em) {
			return m
		}
		k := reRemaining.FindStringSubmatch(m)
		kv, _ := strconv.Atoi(k[1] + k[2])
		ev, _ := strconv.Atoi(em[i][1] + em[i][2])
		if d := kv - ev; d >= -1 && d <= 1 && (k[1] == "") == (em[i][1] == "") {
			return em[i][0]
		}
		return m
	})
	return cairn
}

// sortAttachedKeys sorts the keys listed by "lease timetolive --keys".
func sortAttachedKeys(s string) string {
	s = reAttachedKeys.ReplaceAllStringFunc(s, func(m string) string {
		keys := strings.Fields(reAttachedKeys.FindStringSubmatch(m)[1])
		sort.Strings(keys)
		return "attached keys([" + strings.Join(keys, " ") + "])"
	})
	return reJSONKeys.ReplaceAllStringFunc(s, func(m string) string {
		keys := strings.Split(reJSONKeys.FindStringSubmatch(m)[1], ",")
		sort.Strings(keys)
		return `"keys":[` + strings.Join(keys, ",") + "]"
	})
}

// revision is the member's current revision, read from a Get.
func (p *ctlPair) revision(side int) int64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := p.client[side].Get(ctx, "nope")
	if err != nil {
		p.t.Fatalf("get on %s: %v", sideName(side), err)
	}
	return resp.Header.Revision
}

func TestEtcdctlWatchLeaseDiff(t *testing.T) {
	t.Parallel()
	p := newCtlPair(t, cluster.Options{WatchProgressNotifyInterval: 200 * time.Millisecond})
	t.Run("watch", func(t *testing.T) { ctlWatchSteps(p.with(t)) })
	t.Run("lease", func(t *testing.T) { ctlLeaseSteps(p.with(t)) })
}

// with returns p reporting to t.
func (p *ctlPair) with(t *testing.T) *ctlPair {
	q := *p
	q.t = t
	return &q
}

// Grace periods for stop: a plain watch never exits on its own and is
// killed at once; interactive and server-canceled watches exit by themselves.
const (
	kill    = 0
	selfEnd = 5 * time.Second
)

func ctlWatchSteps(p *ctlPair) {
	p.run("", "", "put", "w/a", "1") // rev 2
	p.run("", "", "put", "w/b", "2") // rev 3
	p.run("", "", "put", "w/a", "3") // rev 4
	p.run("", "", "del", "w/b")      // rev 5

	// From a past revision: deterministic without probes.
	w := p.startWatch("watch", "--rev", "2", "w/a")
	w.await("PUT\nw/a\n3\n", 1)
	w.stop(kill)
	w = p.startWatch("watch", "--prefix", "--rev", "2", "--prev-kv", "w/")
	w.await("DELETE\nw/b\n2\nw/b\n", 1)
	w.stop(kill)
	w = p.startWatch("watch", "--rev", "3", "w/a", "w/c", "-w", "json")
	w.await(`"mod_revision":5`, 1)
	w.stop(kill)
	w = p.startWatch("watch", "--rev", "2", "w/a", "-w", "fields")
	w.await(`"Value" : "3"`, 1)
	w.stop(kill)

	// Live events, after a probe.
	w = p.startWatch("watch", "w/c")
	w.probe("w/c", "probe")
	p.run("", "", "put", "w/c", "x") // rev 6 + probes
	p.run("", "", "del", "w/c")
	w.await("DELETE\nw/c\n", 1)
	w.stop(kill, "PUT\nw/c\nprobe\n")

	w = p.startWatch("watch", "--prefix", "w/")
	w.probe("w/probe", "probe")
	p.run("", "\nput w/t1 1\nput w/t2 2\n\n\n", "txn")
	p.run("", "", "del", "w/t", "--prefix")
	w.await("DELETE\nw/t2\n", 1)
	w.stop(kill, "PUT\nw/probe\nprobe\n")

	// Interactive: a watch and progress requests from stdin.
	w = p.startWatch("watch", "-i")
	w.send("watch w/i --prev-kv\nprogress\n")
	w.await("progress notify: ", 1)
	p.run("", "", "put", "w/i", "1")
	p.run("", "", "put", "w/i", "2")
	w.send("progress\n")
	w.await("progress notify: ", 2)
	w.send("nonsense\nwatch\n\n")
	w.stop(selfEnd) // stdin closed: etcdctl exits

	// Periodic progress notifications (every 200 ms on both members).
	w = p.startWatch("watch", "--progress-notify", "w/p")
	w.await("progress notify: ", 1)
	p.run("", "", "put", "w/p", "1")
	rev := p.revision(etcdSide)
	if k := p.revision(cairnSide); k != rev {
		p.t.Fatalf("revisions differ: etcd %d, cairn %d", rev, k)
	}
	w.await(fmt.Sprintf("w/p\n1\nprogress notify: %d\n", rev), 1)
	w.stop(kill)

	// Watches the server cancels: etcdctl exits on its own.
	w = p.startWatch("watch", "--rev", "-1", "w/a")
	w.stop(selfEnd)
	p.run("", "", "compaction", "4")
	w = p.startWatch("watch", "--rev", "2", "w/a")
	w.stop(selfEnd)
	w = p.startWatch("watch", "--rev", "4", "w/a")
	w.await("PUT\nw/a\n3\n", 1)
	w.stop(kill)

	// Usage errors, found by etcdctl itself.
	p.run("", "", "watch")
	p.run("", "", "watch", "a", "b", "--prefix")
	p.run("", "", "watch", "a", "--")
}

func ctlLeaseSteps(p *ctlPair) {
	p.run("L1", "", "lease", "grant", "100")
	p.run("L2", "", "lease", "grant", "50")
	p.run("L3", "", "lease", "grant", "0") // raised to the minimum TTL
	p.run("", "", "lease", "revoke", "{L3}")
	p.run("", "", "lease", "grant", "9000000001")
	p.run("", "", "lease", "grant", "ten")
	p.run("", "", "lease", "grant")
	p.run("L4", "", "lease", "grant", "30", "-w", "json")
	p.run("", "", "put", "--lease={L1}", "l/a", "1")
	p.run("", "", "put", "--lease={L1}", "l/b", "2")
	p.run("", "", "put", "--lease={L2}", "l/c", "3")
	p.run("", "", "put", "--lease=1234abcd", "l/d", "4")
	p.run("", "", "put", "--lease=xyz", "l/d", "4")
	p.run("", "", "get", "l/", "--prefix", "-w", "json")
	p.run("", "", "lease", "timetolive", "{L1}")
	p.run("", "", "lease", "timetolive", "{L1}", "--keys")
	p.run("", "", "lease", "timetolive", "{L2}", "--keys", "-w", "json")
	p.run("", "", "lease", "timetolive", "{L4}", "--keys")
	p.run("", "", "lease", "timetolive", "1234abcd")
	p.run("", "", "lease", "timetolive", "1234abcd", "-w", "json")
	// etcd lists leases by expiry: L4 (30 s), L2 (50 s), L1 (100 s).
	p.run("", "", "lease", "list")
	p.run("", "", "lease", "list", "-w", "json")
	p.run("", "", "lease", "keep-alive", "--once", "{L2}")
	p.run("", "", "lease", "keep-alive", "--once", "{L2}", "-w", "json")
	p.run("", "", "lease", "keep-alive", "--once", "1234abcd")
	p.run("", "", "lease", "revoke", "{L1}")
	p.run("", "", "get", "l/", "--prefix")
	p.run("", "", "lease", "revoke", "{L1}")
	p.run("", "", "lease", "timetolive", "{L1}", "--keys")

	// keep-alive without --once renews, every TTL/3, until the lease is revoked.
	p.run("L5", "", "lease", "grant", "3")
	w := p.startWatch("lease", "keep-alive", "{L5}")
	w.await("keepalived with TTL(3)", 1)
	p.run("", "", "lease", "revoke", "{L5}")
	w.await("expired or revoked.", 1)
	w.stop(selfEnd)
	p.run("", "", "lease", "list")
	p.run("", "", "get", "l/", "--prefix", "--keys-only")
}
