package robustness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/tests/internal/tcpproxy"
)

// readyMsg is the message cairn logs on stderr once it serves clients.
const readyMsg = "ready to serve client requests"

// startTimeout bounds how long a member may take to become ready.
const startTimeout = 30 * time.Second

// Raft timing of the test cluster, in milliseconds (etcd's flags).
const (
	heartbeatMs = 50
	electionMs  = 500
)

// The Raft log is compacted every snapshotCount entries, keeping
// catchupEntries: a member down for a second or two (the traffic writes
// about 100 entries a second) catches up from a snapshot, so restarts
// exercise snapshot sending and installing.
const (
	snapshotCount  = 500
	catchupEntries = 50
)

// member is one cairn member: its name, data directory and ports stay the
// same across restarts. Its peers reach it through proxy.
type member struct {
	name      string
	dataDir   string
	clientURL string          // http://127.0.0.1:port
	peerURL   string          // where it listens for peers
	proxy     *tcpproxy.Proxy // in front of peerURL; the advertised peer URL
	// initial and state override the cluster's --initial-cluster and
	// "new" for a member that joined a running cluster.
	initial, state string
	replaced       int // how many times the member was replaced

	mu   sync.Mutex
	proc *proc // nil while stopped
}

func (m *member) endpoint() string { return strings.TrimPrefix(m.clientURL, "http://") }

func (m *member) advertisedPeerURL() string { return "http://" + m.proxy.Addr() }

// cluster is the members of one test and the initial cluster flag.
type cluster struct {
	t       *testing.T
	members []*member
	initial string
}

// newCluster starts n members and waits until all serve.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var initial []string
	for i := 1; i <= n; i++ {
		m := &member{
			name:      fmt.Sprintf("n%d", i),
			dataDir:   filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i)),
			clientURL: "http://" + freeAddr(t),
			peerURL:   "http://" + freeAddr(t),
		}
		m.proxy = tcpproxy.New(t, strings.TrimPrefix(m.peerURL, "http://"))
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.advertisedPeerURL())
	}
	c.initial = strings.Join(initial, ",")
	for _, m := range c.members {
		c.exec(m)
	}
	for _, m := range c.members {
		if err := m.current().waitReady(); err != nil {
			t.Fatal(err)
		}
	}
	return c
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

func (m *member) current() *proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc
}

// exec starts m's process; it does not wait until it is ready (a member
// is ready only once a quorum runs).
func (c *cluster) exec(m *member) *proc {
	c.t.Helper()
	initial, state := c.initial, "new"
	if m.initial != "" {
		initial, state = m.initial, m.state
	}
	p := &proc{
		name:   m.name,
		cmd:    exec.Command(cairnBin, "--name", m.name, "--data-dir", m.dataDir, "--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL, "--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.advertisedPeerURL(), "--initial-cluster", initial, "--initial-cluster-state", state, "--initial-cluster-token", "robustness", "--heartbeat-interval", fmt.Sprint(heartbeatMs), "--election-timeout", fmt.Sprint(electionMs), "--watch-progress-notify-interval", "500ms", "--snapshot-count", fmt.Sprint(snapshotCount), "--snapshot-catchup-entries", fmt.Sprint(catchupEntries)),
		stderr: &stderrLog{ready: make(chan struct{})},
		exited: make(chan struct{}),
	}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start cairn: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	c.t.Cleanup(func() { p.signal(syscall.SIGCONT); p.kill() })
	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
	return p
}

// endpoints lists every member's client address.
func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.endpoint())
	}
	return eps
}

// client connects to the given endpoints; the test's cleanup closes it.
func (c *cluster) client(eps ...string) *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatalf("clientv3: %v", err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// status asks one member for its status.
func status(ctx context.Context, m *member) (*clientv3.StatusResponse, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.endpoint()}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return cli.Status(ctx, m.endpoint())
}

// leader returns the member that says it leads, or nil.
func (c *cluster) leader(ctx context.Context) *member {
	for _, m := range c.members {
		if st, err := status(ctx, m); err == nil && st.Leader == st.Header.MemberId {
			return m
		}
	}
	return nil
}

// proc is one cairn process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stderr  *stderrLog
	exited  chan struct{} // closed when the process has exited
	waitErr error         // what cmd.Wait returned; read after exited
}

// kill sends SIGKILL (if the process still runs) and waits until it is gone.
func (p *proc) kill() {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		panic(fmt.Sprintf("kill cairn: %v", err))
	}
	<-p.exited
}

func (p *proc) signal(sig syscall.Signal) error {
	err := p.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// terminate sends SIGTERM and waits (at most startTimeout) for the exit.
func (p *proc) terminate() error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(startTimeout):
		p.kill()
		return fmt.Errorf("%s still ran %v after SIGTERM", p.name, startTimeout)
	}
}

// waitReady waits until the process logs that it serves clients.
func (p *proc) waitReady() error {
	select {
	case <-p.stderr.ready:
		return nil
	case <-p.exited:
		return fmt.Errorf("%s exited before it was ready (%v); stderr tail:\n%s", p.name, p.waitErr, p.stderr.tail())
	case <-time.After(startTimeout):
		return fmt.Errorf("%s not ready after %v; stderr tail:\n%s", p.name, startTimeout, p.stderr.tail())
	}
}

// stderrLog keeps the end of a process's stderr and notices the ready line.
type stderrLog struct {
	mu struct {
		sync.Mutex
		buf   []byte // at most tailBytes
		ready bool
	}
	ready chan struct{} // closed when the ready line arrives
}

// tailBytes bounds what a stderrLog keeps.
const tailBytes = 64 << 10

func (l *stderrLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.mu.ready && bytes.Contains(append(l.mu.buf[max(0, len(l.mu.buf)-len(readyMsg)):len(l.mu.buf):len(l.mu.buf)], p...), []byte(readyMsg)) {
		l.mu.ready = true
		close(l.ready)
	}
	l.mu.buf = append(l.mu.buf, p...)
	if len(l.mu.buf) > tailBytes {
		l.mu.buf = append([]byte(nil), l.mu.buf[len(l.mu.buf)-tailBytes:]...)
	}
	return len(p), nil
}

// tail is the last few KiB of stderr.
func (l *stderrLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.mu.buf
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// contains says whether the kept stderr has s.
func (l *stderrLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.mu.buf, []byte(s))
}
