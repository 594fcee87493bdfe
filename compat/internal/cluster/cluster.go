package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	etcdversion "go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"
	etcdembed "go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	cairnembed "github.com/cairn-kv/cairn/embed"
	"github.com/cairn-kv/cairn/pkg/tlsutil"
)

// startTimeout bounds how long a member may take to become ready.
const startTimeout = 20 * time.Second

// verbose reports whether servers should log to stderr.
func verbose() bool { return os.Getenv("CAIRN_COMPAT_LOG") != "" }

// Options tune the members the launchers start, the same way on both
// servers. The zero value gives each server's defaults.
type Options struct {
	// MaxRequestBytes is --max-request-bytes, in bytes (0: 1.5 MiB). etcd
	// fragments a watch response at MaxRequestBytes plus 512 KiB of gRPC
	// overhead.
	MaxRequestBytes uint
	// WatchProgressNotifyInterval is --watch-progress-notify-interval
	// (0: 10 minutes; at least 100 ms). etcd keeps it in a process-wide
	// variable that each watch stream reads when it opens: once a test sets
	// it, etcd members started later in this test binary keep that value,
	// so every test that relies on progress notifications must set it.
	WatchProgressNotifyInterval time.Duration
	// TLS, if set, serves clients on an https:// URL with these files
	// (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth,
	// --client-crl-file) and these limits (--tls-max-version,
	// --cipher-suites).
	TLS *TLS
	// EnableV2 serves Cairn's v2 keys API (--enable-v2).
	EnableV2 bool
	// Auth, if set, configures authentication the same way on both members
	// (--auth-token, --auth-token-ttl, --bcrypt-cost). Auth stays disabled
	// until a client enables it, as on any fresh member.
	Auth *Auth
}

// Auth is the token and password hashing configuration of both members.
type Auth struct {
	// Token is --auth-token: "simple" or "jwt,sign-method=...,priv-key=...".
	// "" keeps each server's default ("simple").
	Token string
	// TokenTTL is --auth-token-ttl in seconds (0: 300).
	TokenTTL uint
	// BcryptCost is --bcrypt-cost (0: 10). Tests use 4, bcrypt's minimum,
	// so Authenticate is fast.
	BcryptCost uint
}

// TLS is the client TLS of both members.
type TLS struct {
	CertFile, KeyFile, TrustedCAFile, CRLFile string
	ClientCertAuth                            bool
	MaxVersion                                string
	CipherSuites                              []string
}

func (o Options) scheme() string {
	if o.TLS != nil {
		return "https"
	}
	return "http"
}

// StartCairn starts a single Cairn member and returns its client endpoints
// ("127.0.0.1:port") and a cleanup that stops it and waits for it to stop.
func StartCairn(t testing.TB) (endpoints []string, cleanup func()) {
	t.Helper()
	return StartCairnWith(t, Options{})
}

// StartCairnWith is StartCairn with options.
func StartCairnWith(t testing.TB, opts Options) (endpoints []string, cleanup func()) {
	t.Helper()
	srv, err := startCairn(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("start cairn: %v", err)
	}
	cleanup = sync.OnceFunc(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close cairn: %v", err)
		}
	})
	t.Cleanup(cleanup)
	return srv.ClientEndpoints(), cleanup
}

// StartEtcd starts a single real etcd member and returns its client
// endpoints ("127.0.0.1:port") and a cleanup that stops it.
func StartEtcd(t testing.TB) (endpoints []string, cleanup func()) {
	t.Helper()
	return StartEtcdWith(t, Options{})
}

// StartEtcdWith is StartEtcd with options.
func StartEtcdWith(t testing.TB, opts Options) (endpoints []string, cleanup func()) {
	t.Helper()
	dir := t.TempDir()
	e, client, err := startEtcdRetry(dir, t.TempDir(), opts)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	etcdDirs.Store(client, e.Config().Dir)
	cleanup = sync.OnceFunc(func() { closeEtcd(e, client) })
	t.Cleanup(cleanup)
	return []string{client}, cleanup
}

// etcdDirs maps an etcd client endpoint to its data dir.
var etcdDirs sync.Map

// EtcdDataDir is the data dir of the etcd that StartEtcd started at
// endpoint ("" if none).
func EtcdDataDir(endpoint string) string {
	d, _ := etcdDirs.Load(endpoint)
	s, _ := d.(string)
	return s
}

// StartBoth starts a Cairn member and an etcd member concurrently, which
// takes about as long as the slower of the two, and returns their client
// endpoints. Both stop when the test ends.
func StartBoth(t testing.TB) (cairnEndpoints, etcdEndpoints []string) {
	t.Helper()
	return StartBothWith(t, Options{})
}

// StartBothWith is StartBoth with the same options on both members.
func StartBothWith(t testing.TB, opts Options) (cairnEndpoints, etcdEndpoints []string) {
	t.Helper()
	cairnEndpoints, etcdEndpoints, _ = StartBothWithCleanup(t, opts)
	return cairnEndpoints, etcdEndpoints
}

// StartBothWithCleanup is StartBothWith that also returns a cleanup, which
// stops both members, waits for them to stop and removes their data. A
// test that starts many pairs, one after the other, calls it to free each
// pair before the test ends. Calling it more than once is harmless.
func StartBothWithCleanup(t testing.TB, opts Options) (cairnEndpoints, etcdEndpoints []string, cleanup func()) {
	t.Helper()
	cairnDir, etcdDir, etcdLogDir := t.TempDir(), t.TempDir(), t.TempDir()
	var (
		wg       sync.WaitGroup
		srv      *cairnembed.Server
		cairnErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv, cairnErr = startCairn(cairnDir, opts)
	}()
	e, client, etcdErr := startEtcdRetry(etcdDir, etcdLogDir, opts)
	wg.Wait()
	cleanup = sync.OnceFunc(func() {
		if srv != nil {
			if err := srv.Close(); err != nil {
				t.Errorf("close cairn: %v", err)
			}
		}
		if e != nil {
			closeEtcd(e, client)
		}
		for _, dir := range []string{cairnDir, etcdDir, etcdLogDir} {
			os.RemoveAll(dir)
		}
	})
	t.Cleanup(cleanup)
	if cairnErr != nil {
		t.Fatalf("start cairn: %v", cairnErr)
	}
	if etcdErr != nil {
		t.Fatalf("start etcd: %v", etcdErr)
	}
	return srv.ClientEndpoints(), []string{client}, cleanup
}

func startCairn(dir string, opts Options) (*cairnembed.Server, error) {
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	if verbose() {
		lg = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := cairnembed.Config{
		Name:             "n1",
		Dir:              dir,
		ListenClientURLs: []url.URL{{Scheme: opts.scheme(), Host: "127.0.0.1:0"}},
		ListenPeerURLs:   []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		UnsafeNoFsync:    true,
		// Short ticks make the single member elect itself quickly.
		HeartbeatMs: 10,
		ElectionMs:  100,
		Logger:      lg,

		MaxRequestBytes:             opts.MaxRequestBytes,
		WatchProgressNotifyInterval: opts.WatchProgressNotifyInterval,
		EnableV2:                    opts.EnableV2,
	}
	if t := opts.TLS; t != nil {
		cfg.ClientTLS = tlsutil.Info{CertFile: t.CertFile, KeyFile: t.KeyFile, TrustedCAFile: t.TrustedCAFile,
			CRLFile: t.CRLFile, ClientCertAuth: t.ClientCertAuth}
		cfg.TLSMaxVersion, cfg.CipherSuites = t.MaxVersion, t.CipherSuites
	}
	if a := opts.Auth; a != nil {
		if err := setCairnAuth(&cfg, a); err != nil {
			return nil, err
		}
	}
	return cairnembed.Start(cfg)
}

// startEtcdRetry starts etcd with its data in dir and its log in logDir.
// Free ports are found by listening on port 0 and closing; another process
// may take one before etcd binds it, so it retries a few times.
func startEtcdRetry(dir, logDir string, opts Options) (e *etcdembed.Etcd, client string, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		sub := filepath.Join(dir, fmt.Sprint(attempt))
		if err := os.Mkdir(sub, 0o700); err != nil {
			return nil, "", err
		}
		e, client, err = startEtcd(sub, filepath.Join(logDir, fmt.Sprintf("etcd-%d.log", attempt)), opts)
		if err == nil || !isAddrInUse(err) {
			break
		}
	}
	return e, client, err
}

func startEtcd(dir, logFile string, opts Options) (*etcdembed.Etcd, string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, "", err
	}
	clientURL := url.URL{Scheme: opts.scheme(), Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}

	cfg := etcdembed.NewConfig()
	cfg.Name = "n1"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	// etcd logs errors while it shuts down; keep them out of test output.
	cfg.LogOutputs = []string{logFile}
	if verbose() {
		cfg.LogLevel = "info"
		cfg.LogOutputs = []string{"stderr"}
	}
	crash := &crashHook{host: clientURL.Host, crashed: make(chan struct{})}
	lg, err := etcdLogger(cfg.LogLevel, cfg.LogOutputs, crash)
	if err != nil {
		return nil, "", err
	}
	cfg.ZapLoggerBuilder = etcdembed.NewZapLoggerBuilder(lg)
	crashes.Store(clientURL.Host, crash)
	cfg.UnsafeNoFsync = true
	// Short ticks, as for Cairn; a single member fast-forwards its election anyway.
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	if opts.MaxRequestBytes != 0 {
		cfg.MaxRequestBytes = opts.MaxRequestBytes
	}
	// etcd 3.7 removed the deprecated experimental fields; this one is
	// only WatchProgressNotifyInterval now.
	cfg.WatchProgressNotifyInterval = opts.WatchProgressNotifyInterval
	if t := opts.TLS; t != nil {
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = t.CertFile, t.KeyFile
		cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.CRLFile = t.TrustedCAFile, t.CRLFile
		cfg.ClientTLSInfo.ClientCertAuth = t.ClientCertAuth
		cfg.TlsMaxVersion, cfg.CipherSuites = t.MaxVersion, t.CipherSuites
	}
	if a := opts.Auth; a != nil {
		if a.Token != "" {
			cfg.AuthToken = a.Token
		}
		if a.TokenTTL != 0 {
			cfg.AuthTokenTTL = a.TokenTTL
		}
		if a.BcryptCost != 0 {
			cfg.BcryptCost = a.BcryptCost
		}
	}

	e, err := etcdembed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("etcd failed before ready: %w", err)
	case <-time.After(startTimeout):
		e.Close()
		return nil, "", errors.New("etcd not ready after " + startTimeout.String())
	}
	return e, clientURL.Host, nil
}

// FreePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func FreePorts(n int) ([]int, error) { return freePorts(n) }

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func isAddrInUse(err error) bool {
	return strings.Contains(err.Error(), "address already in use")
}

// WaitEtcdSettled waits until the etcd member at endpoint reports its
// storage version as its own minor release ("3.7.0" for etcd 3.7.4, "3.6.0"
// for the 3.6 oracle). A fresh etcd reports the previous minor release
// until its version monitor runs, about 4 s after start; Cairn reports the
// settled value at once. Tests that compare Status call this first.
func WaitEtcdSettled(t testing.TB, endpoint string) {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := c.Status(ctx, endpoint)
		cancel()
		switch {
		case err == nil && st.StorageVersion == etcdversion.Cluster(st.Version)+".0":
			return
		case time.Now().After(deadline):
			t.Fatalf("etcd storage version did not settle to its release's: status %v, err %v", st, err)
		}
		<-tick.C
	}
}

// crashes maps an etcd client endpoint to its *crashHook.
var crashes sync.Map

// EtcdCrash reports whether the etcd member serving endpoint has hit a
// fatal error (an etcd bug: the oracle is broken). The channel closes when
// etcd logs at fatal or panic level; reason then tells what it logged.
// Instead of exiting the test process, as etcd would, the goroutine that
// logged is parked, so that member answers nothing more.
func EtcdCrash(endpoint string) (crashed <-chan struct{}, reason func() string) {
	v, ok := crashes.Load(endpoint)
	if !ok {
		return nil, func() string { return "" }
	}
	h := v.(*crashHook)
	return h.crashed, h.reason
}

// crashHook is a zap CheckWriteHook for etcd's fatal and panic logs.
type crashHook struct {
	host    string
	once    sync.Once
	crashed chan struct{}
	mu      sync.Mutex
	msg     string
}

func (h *crashHook) OnWrite(ce *zapcore.CheckedEntry, fields []zapcore.Field) {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		if f.Key != "stacktrace" {
			f.AddTo(enc)
		}
	}
	h.once.Do(func() {
		h.mu.Lock()
		h.msg = fmt.Sprintf("%s at %s: %q %v", ce.Level, ce.Caller.TrimmedPath(), ce.Message, enc.Fields)
		h.mu.Unlock()
		close(h.crashed)
	})
	select {} // etcd cannot go on from here, and must not end the process
}

func (h *crashHook) reason() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msg
}

// etcdLogger builds etcd's JSON logger with fatal and panic hooked.
func etcdLogger(level string, outputs []string, hook *crashHook) (*zap.Logger, error) {
	zc := zap.NewProductionConfig()
	if err := zc.Level.UnmarshalText([]byte(level)); err != nil {
		return nil, err
	}
	zc.OutputPaths, zc.ErrorOutputPaths = outputs, outputs
	zc.Sampling = nil
	return zc.Build(zap.WithFatalHook(hook), zap.WithPanicHook(hook))
}

// closeEtcd stops e unless it crashed: then a goroutine is parked holding
// etcd's locks and Close would never return.
func closeEtcd(e *etcdembed.Etcd, host string) {
	if crashed, _ := EtcdCrash(host); crashed != nil {
		select {
		case <-crashed:
			return
		default:
		}
	}
	e.Close()
}

// BuildEtcd36 builds the etcd v3.6.16 oracle into dir: the server, from
// the module in compat/oracle36 (a module of its own, since this one
// requires etcd 3.7), and etcdctl v3.6.16, that module's tool, a 3.6
// client. It returns their paths.
func BuildEtcd36(dir string) (server, etcdctl string, err error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", "", errors.New("cannot locate compat/oracle36")
	}
	src := filepath.Join(filepath.Dir(file), "..", "..", "oracle36")
	server, etcdctl = filepath.Join(dir, "etcd36"), filepath.Join(dir, "etcdctl36")
	for _, b := range []struct{ out, pkg string }{{server, "."}, {etcdctl, "go.etcd.io/etcd/etcdctl/v3"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build %s in %s: %v\n%s", b.pkg, src, err, out)
		}
	}
	return server, etcdctl, nil
}

// StartEtcd36 starts a single etcd v3.6.16 member, the server BuildEtcd36
// built, in its own process, configured as StartEtcdWith configures the
// 3.7 oracle, and returns its client endpoints and a cleanup that stops it.
// Its fatal errors end its process: EtcdCrash knows nothing of it, and the
// test sees the connection fail.
func StartEtcd36(t testing.TB, server string, opts Options) (endpoints []string, cleanup func()) {
	t.Helper()
	args := []string{"--data-dir", t.TempDir()}
	if verbose() {
		args = append(args, "--log-file=stderr", "--log-level=info")
	} else {
		args = append(args, "--log-file="+filepath.Join(t.TempDir(), "etcd36.log"))
	}
	if opts.MaxRequestBytes != 0 {
		args = append(args, fmt.Sprintf("--max-request-bytes=%d", opts.MaxRequestBytes))
	}
	if opts.WatchProgressNotifyInterval != 0 {
		args = append(args, "--watch-progress-notify-interval="+opts.WatchProgressNotifyInterval.String())
	}
	cmd := exec.Command(server, args...)
	// It stops when its standard input closes, so it does not outlive this
	// process.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd 3.6: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	stop := func() {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
	}()
	var line string
	select {
	case line = <-ready:
	case <-time.After(startTimeout + 5*time.Second):
	}
	client, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if !ok {
		stop()
		t.Fatalf("start etcd 3.6: it printed %q, not ready\nstderr: %s", line, stderr.String())
	}
	cleanup = sync.OnceFunc(stop)
	t.Cleanup(cleanup)
	return []string{client}, cleanup
}
