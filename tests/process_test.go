package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// readyMsg is the message of the JSON line cairn logs on stderr once it
// serves client requests.
const readyMsg = "ready to serve client requests"

// startTimeout bounds how long a cairn process may take to become ready,
// and how long a process that should exit on its own may run.
const startTimeout = 30 * time.Second

// member is one cairn member's command line: its data directory and ports
// stay the same across restarts.
type member struct {
	name      string
	dataDir   string
	clientURL string // http://127.0.0.1:port
	peerURL   string
	extra     []string // more flags
}

// newMember picks free ports and a data directory under t.TempDir; the
// data directory itself does not exist yet, as on a first start.
func newMember(t *testing.T, extra ...string) *member {
	t.Helper()
	return &member{
		name:      "e2e",
		dataDir:   filepath.Join(t.TempDir(), "data"),
		clientURL: "http://" + freeAddr(t),
		peerURL:   "http://" + freeAddr(t),
		extra:     extra,
	}
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (m *member) args() []string {
	return append([]string{
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", m.name + "=" + m.peerURL,
	}, m.extra...)
}

// endpoint is the client address, as clientv3 takes it.
func (m *member) endpoint() string { return strings.TrimPrefix(m.clientURL, "http://") }

// start runs cairn on m and waits until it logs that it is ready.
func (m *member) start(t *testing.T) *proc {
	t.Helper()
	p := startCairn(t, m.args()...)
	select {
	case <-p.stderr.ready:
	case <-p.exited:
		t.Fatalf("cairn exited before it was ready (%v); stderr:\n%s", p.waitErr, p.stderr)
	case <-time.After(startTimeout):
		t.Fatalf("cairn not ready after %v; stderr:\n%s", startTimeout, p.stderr)
	}
	p.startup = p.stderr.readyTime().Sub(p.started)
	line := p.stderr.readyLine()
	var rec struct{ Msg string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Msg != readyMsg {
		t.Fatalf("ready line is not a JSON log record with msg %q: %q", readyMsg, line)
	}
	return p
}

// proc is one cairn process. A test's cleanup kills it if it still runs.
type proc struct {
	cmd     *exec.Cmd
	stdout  *lockedBuffer
	stderr  *stderrLog
	started time.Time
	// startup is the time from exec to the ready line (set by member.start).
	startup time.Duration

	exited  chan struct{} // closed when the process has exited
	waitErr error         // what cmd.Wait returned; read after exited
}

// startCairn execs the binary with args; it does not wait for anything.
func startCairn(t *testing.T, args ...string) *proc {
	t.Helper()
	return startCairnEnv(t, nil, args...)
}

// startCairnEnv is startCairn with env added to the test's environment.
func startCairnEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{
		cmd:    exec.Command(cairnBin, args...),
		stdout: &lockedBuffer{},
		stderr: newStderrLog(),
		exited: make(chan struct{}),
	}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start cairn: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill(t)
		if raceEnabled && strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("cairn reported a data race; stderr:\n%s", p.stderr)
		}
	})
	return p
}

// kill sends SIGKILL (if the process still runs) and waits until it is gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill cairn: %v", err)
	}
	<-p.exited
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM cairn: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(startTimeout):
		t.Fatalf("cairn still running %v after SIGTERM; stderr:\n%s", startTimeout, p.stderr)
	}
	if p.waitErr != nil {
		t.Fatalf("cairn exited with %v after SIGTERM; stderr:\n%s", p.waitErr, p.stderr)
	}
}

// wait waits until the process exits on its own and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(startTimeout):
		t.Fatalf("cairn still running after %v; stderr:\n%s", startTimeout, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// ioCounters reads /proc/<pid>/io: rchar is every byte the process got from
// read(2) and pread(2), whether or not it came from the page cache.
func (p *proc) ioCounters(t *testing.T) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("read I/O counters: %v; stderr:\n%s", err, p.stderr)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			t.Fatalf("parse %q in /proc/pid/io: %v", sc.Text(), err)
		}
		out[name] = n
	}
	return out
}

// stderrLog keeps a process's stderr and notices the ready line.
type stderrLog struct {
	mu struct {
		sync.Mutex
		buf     bytes.Buffer
		ready   bool
		line    string // the ready line
		readyAt time.Time
	}
	ready chan struct{} // closed when the ready line arrives
}

func newStderrLog() *stderrLog { return &stderrLog{ready: make(chan struct{})} }

func (l *stderrLog) Write(p []byte) (int, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	from := l.mu.buf.Len()
	l.mu.buf.Write(p)
	if l.mu.ready {
		return len(p), nil
	}
	// Look at every complete line that this write finished.
	all := l.mu.buf.Bytes()
	start := bytes.LastIndexByte(all[:from], '\n') + 1
	for _, line := range strings.SplitAfter(string(all[start:]), "\n") {
		if strings.HasSuffix(line, "\n") && strings.Contains(line, readyMsg) {
			l.mu.ready, l.mu.line, l.mu.readyAt = true, strings.TrimSpace(line), now
			close(l.ready)
			break
		}
	}
	return len(p), nil
}

func (l *stderrLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.buf.String()
}

func (l *stderrLog) readyLine() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.line
}

func (l *stderrLog) readyTime() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.readyAt
}

// lockedBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newClient connects a clientv3 client to m; the caller closes it.
func newClient(t *testing.T, m *member) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.endpoint()},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clientv3: %v", err)
	}
	return cli
}

// opTimeout bounds one client request in these tests.
const opTimeout = 10 * time.Second

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}
