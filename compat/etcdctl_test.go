package compat

// etcdctl differential test.
//
// What it proves: the real etcdctl v3.7 binary, built from the module cache,
// gives the same stdout, stderr and exit code against a fresh Cairn member
// as against a fresh etcd member, for one sequence of command lines run on
// both from the same empty state: put, get with every read flag and output
// format, del, txn from stdin and interactive, compaction, endpoint status
// and health, member list, alarm list and defrag. Before comparing, only
// what must differ between two clusters is replaced by a placeholder:
// addresses (127.0.0.1:port), member and cluster IDs, raft terms and
// indexes, database sizes, and timings (see normalizeCtl), and the log
// lines the client libraries print on stderr are dropped: whether a retry
// warning is logged depends on timing, and what a user sees is the output,
// the exit code and the error etcdctl prints (see userView). Everything
// else, versions included, must match byte for byte.
//
// A failure prints the command line, its stdin, and both normalized outputs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

var (
	etcdctlOnce sync.Once
	etcdctlPath string
	etcdctlErr  error
)

// etcdctl returns the path of the etcdctl binary, building it on first use
// from this module's requirement (go.etcd.io/etcd/etcdctl/v3, a tool
// dependency in go.mod), so only tests that need it pay for the build.
func etcdctl(t *testing.T) string {
	t.Helper()
	etcdctlOnce.Do(func() {
		path := filepath.Join(binDir, "etcdctl")
		cmd := exec.Command("go", "build", "-o", path, "go.etcd.io/etcd/etcdctl/v3")
		if out, err := cmd.CombinedOutput(); err != nil {
			etcdctlErr = fmt.Errorf("go build etcdctl: %v\n%s", err, out)
			return
		}
		etcdctlPath = path
	})
	if etcdctlErr != nil {
		t.Fatal(etcdctlErr)
	}
	return etcdctlPath
}

// ctlStep is one etcdctl command line, with optional standard input.
type ctlStep struct {
	args  []string
	stdin string
	// settle makes the test wait, before this step, until etcd's storage
	// version has settled (see cluster.WaitEtcdSettled).
	settle bool
}

func ctl(args ...string) ctlStep { return ctlStep{args: args} }

func ctlIn(stdin string, args ...string) ctlStep { return ctlStep{args: args, stdin: stdin} }

func ctlSettled(args ...string) ctlStep { return ctlStep{args: args, settle: true} }

// ctlSteps run in order on both members. Revisions in comments are those
// reached on an empty store (revision 1).
var ctlSteps = []ctlStep{
	// put
	ctl("put", "foo", "bar"),                          // rev 2
	ctl("put", "foo", "bar2", "--prev-kv"),            // rev 3
	ctl("put", "a", "1"),                              // rev 4
	ctl("put", "ab", "2"),                             // rev 5
	ctl("put", "abc", "3"),                            // rev 6
	ctl("put", "b", "4"),                              // rev 7
	ctl("put", "c", "5"),                              // rev 8
	ctl("put", "foo", "--ignore-value"),               // rev 9
	ctl("put", "my key", "my value"),                  // rev 10
	ctl("put", "a", "11", "-w", "json"),               // rev 11
	ctl("put", "ab", "22", "--prev-kv", "-w", "json"), // rev 12
	ctl("put", "ab", "--ignore-value", "--prev-kv"),   // rev 13
	ctl("put", "missing", "--ignore-value"),
	ctl("put", "foo", "x", "--lease=1234"),
	ctl("put", "foo", "bar3", "--ignore-lease", "--prev-kv"), // rev 14
	ctlIn("from stdin\n", "put", "stdin-key"),                // rev 15
	ctl("put", "--", "-dash", "v"),                           // rev 16

	// get
	ctl("get", "foo"),
	ctl("get", "nope"),
	ctl("get", "foo", "-w", "json"),
	ctl("get", "foo", "-w", "fields"),
	ctl("get", "foo", "--hex"),
	ctl("get", "a", "--prefix"),
	ctl("get", "b", "--from-key"),
	ctl("get", "", "--prefix"),
	ctl("get", "", "--from-key", "--keys-only"),
	ctl("get", "a", "c"),
	ctl("get", "a", "--prefix", "--limit", "2"),
	ctl("get", "a", "--prefix", "--limit", "2", "-w", "json"),
	ctl("get", "foo", "--rev", "2"),
	ctl("get", "", "--prefix", "--rev", "5"),
	ctl("get", "foo", "--rev", "100"),
	ctl("get", "a", "--prefix", "--sort-by", "KEY", "--order", "DESCEND"),
	ctl("get", "a", "--prefix", "--sort-by", "VERSION", "--order", "ASCEND"),
	ctl("get", "a", "--prefix", "--sort-by", "VERSION", "--order", "DESCEND"),
	ctl("get", "a", "--prefix", "--sort-by", "CREATE", "--order", "DESCEND"),
	ctl("get", "a", "--prefix", "--sort-by", "MODIFY", "--order", "ASCEND"),
	ctl("get", "a", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND"),
	ctl("get", "", "--prefix", "--sort-by", "VALUE", "--order", "ASCEND"),
	ctl("get", "", "--prefix", "--sort-by", "VALUE"),
	ctl("get", "", "--prefix", "--order", "DESCEND", "--limit", "3"),
	ctl("get", "a", "--prefix", "--keys-only"),
	ctl("get", "a", "--prefix", "--count-only"), // usage error: needs -w fields
	ctl("get", "a", "--prefix", "--count-only", "-w", "fields"),
	ctl("get", "a", "--prefix", "--keys-only", "-w", "fields"),
	ctl("get", "a", "--prefix", "--print-value-only"),
	ctl("get", "a", "--prefix", "-w", "json"),
	ctl("get", "a", "--prefix", "-w", "fields"),
	ctl("get", "", "--prefix", "--min-mod-rev", "8", "--max-mod-rev", "12"),
	ctl("get", "", "--prefix", "--min-create-rev", "6", "--max-create-rev", "9"),
	ctl("get", "foo", "--consistency", "s"),
	ctl("get", "foo", "--consistency", "s", "-w", "json"),

	// del
	ctl("del", "nope"),
	ctl("del", "foo"),                                      // rev 17
	ctl("del", "b", "--prev-kv"),                           // rev 18
	ctl("del", "a", "--prefix"),                            // rev 19
	ctl("del", "c", "--prefix", "--prev-kv", "-w", "json"), // rev 20
	ctl("put", "x1", "1"),                                  // rev 21
	ctl("put", "x2", "2"),                                  // rev 22
	ctl("put", "y", "3"),                                   // rev 23
	ctl("del", "x1", "y", "--range"),                       // rev 24
	ctl("del", "x", "--from-key", "--prev-kv"),             // rev 25
	ctl("get", "", "--prefix"),

	// txn from stdin
	ctl("put", "k1", "v1"), // rev 26
	ctl("put", "k2", "v2"), // rev 27
	ctlIn(`value("k1") = "v1"
version("k2") = "1"
create("k1") > "0"
mod("k2") < "100"

put res ok
get k1
get k --prefix

put res fail
del k1

`, "txn"), // rev 28: success
	ctlIn(`value("k1") = "nope"

put res ok

put res fail
del k1 --prev-kv
get k --prefix

`, "txn"), // rev 29: failure
	ctlIn(`mod("k2") > "26"
create("k2") != "27"

get k2

get k1
get res

`, "txn", "-w", "json"), // failure branch, read-only
	ctlIn(`value("k2") > "v1"

del k2
get k2 --rev 27


`, "txn", "-w", "fields"), // rev 30
	ctlIn(`version("nope") = "0"

get res --print-value-only
get k --prefix --keys-only


`, "txn"),
	ctlIn(`value("k") =

put a 1

`, "txn"),
	ctlIn(`value("res") = "fail"
mod("res") = "29"

put t1 1
put t2 2

put t3 3

`, "txn", "-i"), // rev 31
	ctlIn(`version("t1") > "5"

put t1 x

get t1
get t2 --print-value-only

`, "txn", "--interactive"),

	// compaction
	ctl("compaction", "3"),
	ctl("compaction", "3"),
	ctl("compaction", "2"),
	ctl("get", "foo", "--rev", "2"),
	ctl("get", "", "--prefix", "--rev", "3", "--keys-only"),
	ctl("compaction", "1000"),
	ctl("compaction", "--physical", "20"),
	ctl("compaction", "--physical=true", "25"),
	ctl("get", "", "--prefix", "--rev", "24"),
	ctl("get", "", "--prefix", "--rev", "25", "-w", "json"),

	// cluster and maintenance
	ctlSettled("endpoint", "status"),
	ctl("endpoint", "status", "-w", "table"),
	ctl("endpoint", "status", "-w", "json"),
	ctl("endpoint", "health"),
	ctl("endpoint", "health", "-w", "table"),
	ctl("endpoint", "health", "-w", "json"),
	ctl("member", "list"),
	ctl("member", "list", "-w", "json"),
	ctl("member", "list", "-w", "table"),
	ctl("endpoint", "status", "--cluster"),
	ctl("endpoint", "health", "--cluster"),
	ctl("alarm", "list"),
	ctl("alarm", "disarm"),
	ctl("defrag"),
	ctl("get", "", "--prefix", "-w", "json"),
}

func TestEtcdctlDiff(t *testing.T) {
	t.Parallel()
	bin := etcdctl(t)
	cairnEps, etcdEps := cluster.StartBoth(t)
	for i, s := range ctlSteps {
		if s.settle {
			cluster.WaitEtcdSettled(t, etcdEps[0])
		}
		e := runCtl(t, bin, etcdEps[0], s)
		k := runCtl(t, bin, cairnEps[0], s)
		if trace {
			t.Logf("step %d: etcdctl %s\n%s", i+1, shellQuote(s.args), e)
		}
		if d := cmp.Diff(e, k); d != "" {
			t.Errorf("step %d: etcdctl %s\nstdin:\n%s\netcd:\n%s\ncairn:\n%s\ndiff (-etcd +cairn):\n%s",
				i+1, shellQuote(s.args), indent(s.stdin), e, k, d)
		}
	}
}

// ctlResult is what one etcdctl run printed, normalized.
type ctlResult struct {
	Stdout, Stderr string
	Exit           int
}

func (r ctlResult) String() string {
	return fmt.Sprintf("  exit %d\n  stdout:\n%s\n  stderr:\n%s", r.Exit, indent(r.Stdout), indent(r.Stderr))
}

func runCtl(t *testing.T, bin, endpoint string, s ctlStep) ctlResult {
	t.Helper()
	args := append([]string{"--endpoints=" + endpoint, "--dial-timeout=5s", "--command-timeout=10s"}, s.args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = ctlEnv()
	cmd.Stdin = strings.NewReader(s.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	exit := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run etcdctl %s: %v", shellQuote(s.args), err)
		}
		exit = ee.ExitCode()
	}
	return userView(ctlResult{Stdout: stdout.String(), Stderr: stderr.String(), Exit: exit})
}

// userView is what a user of etcdctl sees in r, normalized: stdout, the
// exit code and the error text on stderr, without the log lines of the
// client libraries (see dropClientLogs). Every etcdctl comparison goes
// through it.
func userView(r ctlResult) ctlResult {
	r.Stdout = normalizeCtl(r.Stdout)
	r.Stderr = normalizeCtl(dropClientLogs(r.Stderr))
	return r
}

var (
	// A zap console line: "2006-01-02T15:04:05.000Z<TAB>WARN<TAB>...".
	reZapConsole = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)\t(DEBUG|INFO|WARN|ERROR|DPANIC|PANIC|FATAL)\t`)
	// A grpclog line: "2006/01/02 15:04:05 WARNING: ...".
	reGRPCLog = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d+)? (INFO|WARNING|ERROR|FATAL): `)
)

// dropClientLogs removes from etcdctl's stderr the lines that the client
// libraries log: zap's JSON lines (an object with "level", "ts" and "msg",
// such as clientv3's "retrying of unary invoker failed" warning), zap's
// console lines and grpclog's lines. Whether such a line is printed
// depends on timing (a retry under load), not on what the server answered;
// the error etcdctl ends with is on its own line ("Error: ..."), which
// stays.
func dropClientLogs(stderr string) string {
	if stderr == "" {
		return stderr
	}
	lines := strings.SplitAfter(stderr, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !isClientLog(strings.TrimSuffix(l, "\n")) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func isClientLog(line string) bool {
	if reZapConsole.MatchString(line) || reGRPCLog.MatchString(line) {
		return true
	}
	if !strings.HasPrefix(line, "{") {
		return false
	}
	var entry map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &entry); err != nil {
		return false
	}
	for _, k := range []string{"level", "ts", "msg"} {
		if _, ok := entry[k]; !ok {
			return false
		}
	}
	return true
}

// ctlEnv is the environment without ETCDCTL_* variables, which would
// change etcdctl's flags.
func ctlEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			env = append(env, kv)
		}
	}
	return env
}

var (
	reAddr = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	// JSON numbers that identify a cluster or member or count raft progress.
	reJSONID = regexp.MustCompile(`"(cluster_id|member_id|raft_term|ID|leader|raftIndex|raftTerm|raftAppliedIndex|dbSize|dbSizeInUse)":\d+`)
	// The same in `-w fields` output.
	reFieldsID = regexp.MustCompile(`"(ClusterID|MemberID|RaftTerm)" : \d+`)
	// Durations: "took = 1.2ms", "took":"1.2ms", "took 1.2ms".
	reTook = regexp.MustCompile(`took( = |":"| )[0-9.]+(ns|µs|us|ms|s|m)`)
)

// normalizeCtl replaces what differs between any two clusters.
func normalizeCtl(s string) string {
	s = reAddr.ReplaceAllString(s, "127.0.0.1:<port>")
	s = reVersion37.ReplaceAllString(s, "3.7.x") // Cairn reports 3.7.0, etcd its patch release
	s = reJSONID.ReplaceAllStringFunc(s, func(m string) string {
		name, _, _ := strings.Cut(m, ":")
		return name + ":<n>"
	})
	s = reFieldsID.ReplaceAllString(s, `"$1" : <n>`)
	s = reTook.ReplaceAllString(s, "took${1}<duration>")
	return normalizeRows(s)
}

// normalizeRows rewrites table output without padding (column widths
// follow the contents) and blanks the columns that differ between clusters:
// in `endpoint status` rows the ID, db size, in use, percentage not in use,
// raft term, raft index and raft applied index; in `member list` rows the ID.
// Tables are drawn with box-drawing characters since etcdctl 3.7 (ASCII
// before); both are read, and written back in ASCII.
func normalizeRows(s string) string {
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		sep := ", "
		border := false
		for _, p := range []string{"+-", "┌", "├", "└"} {
			border = border || strings.HasPrefix(line, p)
		}
		table := border
		for _, bar := range []string{"|", "│"} {
			if strings.HasPrefix(line, bar) {
				line = strings.TrimSuffix(strings.TrimPrefix(line, bar), bar)
				sep, table = bar, true
			}
		}
		if border {
			lines[i] = "+-+"
			continue
		}
		cells := strings.Split(line, sep)
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		changed := table
		switch {
		case len(cells) == 16 && strings.Contains(cells[0], "127.0.0.1:"): // endpoint status
			for _, c := range []int{1, 4, 5, 6, 10, 11, 12} {
				cells[c] = "<n>"
			}
			changed = true
		case len(cells) == 6 && (cells[1] == "started" || cells[1] == "unstarted"): // member list
			cells[0] = "<id>"
			changed = true
		}
		for j, c := range cells {
			if _, err := time.ParseDuration(c); err == nil && table {
				cells[j] = "<duration>" // endpoint health's took
			}
		}
		switch {
		case table:
			lines[i] = "| " + strings.Join(cells, " | ") + " |"
		case changed:
			lines[i] = strings.Join(cells, sep)
		}
	}
	return strings.Join(lines, "\n")
}

func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'\\$") {
			b, _ := json.Marshal(a)
			out[i] = string(b)
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

func indent(s string) string {
	if s == "" {
		return "    (empty)"
	}
	return "    " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n    ")
}

// TestDropClientLogs checks which stderr lines count as client logs.
func TestDropClientLogs(t *testing.T) {
	in := `{"level":"warn","ts":"2026-12-04T23:19:43.123456Z","logger":"etcd-client","caller":"v3@v3.7.4/retry_interceptor.go:65","msg":"retrying of unary invoker failed","target":"etcd-endpoints://0xc000/127.0.0.1:2379","attempt":0,"error":"rpc error: code = Unavailable desc = etcdserver: leader changed"}
2026-12-04T23:19:43.123Z	WARN	etcd-client	retrying
2026/12/04 23:19:43 WARNING: [core] addrConn.createTransport failed
Error: context deadline exceeded
{"key":"a","level":"not a log line"}
{not json
`
	want := `Error: context deadline exceeded
{"key":"a","level":"not a log line"}
{not json
`
	if got := dropClientLogs(in); got != want {
		t.Errorf("dropClientLogs:\ngot:\n%s\nwant:\n%s", got, want)
	}
	if got := dropClientLogs("no newline at the end"); got != "no newline at the end" {
		t.Errorf("dropClientLogs kept %q, want the line", got)
	}
}
