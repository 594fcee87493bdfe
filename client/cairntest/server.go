package cairntest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/embed"
	"github.com/cairn-kv/cairn/pkg/tlsutil"
	"github.com/cairn-kv/cairn/pkg/tlsutil/testcerts"
)

// Server is an in-process Cairn member. Its client address stays the same
// across Stop and Restart.
type Server struct {
	cfg     embed.Config
	tempDir bool // Close removes cfg.Dir
	// pki, with WithTLS, holds the certificates; Close removes its dir.
	pki *testcerts.PKI
	// rootPassword is root's password when the server runs with auth.
	rootPassword *string

	mu struct {
		sync.Mutex
		srv *embed.Server // nil while stopped
	}
}

// An Option changes how a Server starts.
type Option func(*options)

type options struct {
	logger    *slog.Logger
	dir       string
	configure func(*embed.Config)
	tls       bool
	// rootPassword, with WithAuth, is root's password.
	rootPassword *string
}

// WithAuth starts the server with auth enabled: user root with role root
// and password rootPassword exists, and Config and Client authenticate as
// root. Passwords are hashed at bcrypt's lowest cost (4) to keep tests
// fast, unless WithConfig sets BcryptCost.
func WithAuth(rootPassword string) Option {
	return func(o *options) { o.rootPassword = &rootPassword }
}

// WithTLS serves clients over mutual TLS: the server generates a CA, a
// server certificate for 127.0.0.1 and localhost, and client certificates
// (see PKI), requires a client certificate signed by that CA, and Config
// and Client present one.
func WithTLS() Option { return func(o *options) { o.tls = true } }

// WithLogger sends the server's logs to lg (by default they are dropped).
func WithLogger(lg *slog.Logger) Option { return func(o *options) { o.logger = lg } }

// WithDir keeps the data in dir (which Close leaves in place) instead of a
// temporary directory.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithConfig lets fn change the embed.Config just before the first start.
func WithConfig(fn func(*embed.Config)) Option { return func(o *options) { o.configure = fn } }

// Start starts a server for the test and registers its Close with
// t.Cleanup. It fails the test if the server does not start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.dir == "" {
		o.dir = t.TempDir()
		opts = append(opts, WithDir(o.dir))
	}
	s, err := StartServer(opts...)
	if err != nil {
		t.Fatalf("cairntest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("cairntest: close: %v", err)
		}
	})
	return s
}

// StartServer starts a server outside a test (in an Example function or a
// program's -embedded mode). Close it when done; unless WithDir was given,
// Close also removes its temporary data directory.
func StartServer(opts ...Option) (*Server, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	s := &Server{rootPassword: o.rootPassword}
	if o.dir == "" {
		dir, err := os.MkdirTemp("", "cairntest-")
		if err != nil {
			return nil, err
		}
		o.dir, s.tempDir = dir, true
	}
	lg := o.logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	scheme := "http"
	if o.tls {
		dir, err := os.MkdirTemp("", "cairntest-pki-")
		if err != nil {
			s.removeTemp()
			return nil, err
		}
		if s.pki, err = testcerts.New(dir); err != nil {
			s.removeTemp()
			return nil, err
		}
		scheme = "https"
	}
	s.cfg = embed.Config{
		Dir:              o.dir,
		ListenClientURLs: []url.URL{{Scheme: scheme, Host: "127.0.0.1:0"}},
		ListenPeerURLs:   []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		HeartbeatMs:      10,
		ElectionMs:       100,
		UnsafeNoFsync:    true,
		Logger:           lg,
	}
	if s.pki != nil {
		s.cfg.ClientTLS = tlsutil.Info{CertFile: s.pki.Server.Cert, KeyFile: s.pki.Server.Key,
			TrustedCAFile: s.pki.CA, ClientCertAuth: true, CRLFile: s.pki.CRL}
	}
	if o.rootPassword != nil {
		s.cfg.BcryptCost = 4
	}
	if o.configure != nil {
		o.configure(&s.cfg)
	}
	srv, err := embed.Start(s.cfg)
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("start: %w", err)
	}
	// Pin the port the OS picked, so that Restart listens on it again.
	s.cfg.ListenClientURLs = []url.URL{{Scheme: s.cfg.ListenClientURLs[0].Scheme, Host: srv.ClientEndpoints()[0]}}
	s.mu.srv = srv
	if o.rootPassword != nil {
		if err := s.enableAuth(*o.rootPassword); err != nil {
			s.Close()
			return nil, fmt.Errorf("enable auth: %w", err)
		}
	}
	return s, nil
}

// enableAuth adds user root with role root and enables auth, unless a
// data directory reused with WithDir has it enabled already.
func (s *Server) enableAuth(password string) error {
	cfg := s.Config()
	cfg.Username, cfg.Password = "", ""
	c, err := client.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ec := c.Etcd()
	st, err := ec.AuthStatus(ctx)
	if err != nil {
		return err
	}
	if st.Enabled {
		return nil
	}
	if _, err := ec.UserAdd(ctx, "root", password); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return err
	}
	if _, err := ec.UserGrantRole(ctx, "root", "root"); err != nil {
		return err
	}
	_, err = ec.AuthEnable(ctx)
	return err
}

// Endpoints are the client addresses ("127.0.0.1:port"). They do not
// change across Restart.
func (s *Server) Endpoints() []string {
	return []string{s.cfg.ListenClientURLs[0].Host}
}

// Dir is the data directory.
func (s *Server) Dir() string { return s.cfg.Dir }

// Config is a client.Config for this server, with a quick reconnect
// backoff (50 ms growing to 500 ms, instead of gRPC's 1 s to 120 s) so
// that tests recover from Restart and Proxy.Cut without waiting.
func (s *Server) Config() client.Config {
	c := ClientConfig(s.Endpoints()...)
	if s.pki != nil {
		c.CACert, c.Cert, c.Key = s.pki.CA, s.pki.Client.Cert, s.pki.Client.Key
	}
	if s.rootPassword != nil {
		c.Username, c.Password = "root", *s.rootPassword
	}
	return c
}

// PKI is the certificates of a server started WithTLS (nil otherwise):
// the CA, the server's, clients' (Client, Root, and Revoked, which the
// server's CRL lists) and one from an untrusted CA.
func (s *Server) PKI() *testcerts.PKI { return s.pki }

// ClientConfig is the client.Config Server.Config returns, for any
// endpoints (such as a Proxy's).
func ClientConfig(endpoints ...string) client.Config {
	return client.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		})},
	}
}

// Client connects a new client.Client to the server with Config, closed
// by t.Cleanup.
func (s *Server) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(s.Config())
	if err != nil {
		t.Fatalf("cairntest: client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// EtcdClient connects a plain clientv3 client, closed by t.Cleanup.
func (s *Server) EtcdClient(t testing.TB) *clientv3.Client {
	t.Helper()
	return s.Client(t).Etcd()
}

// Stop stops the server (clients see it as unreachable) and keeps its data.
// Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("cairntest: stop: %v", err)
	}
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.srv == nil {
		return nil
	}
	err := s.mu.srv.Close()
	s.mu.srv = nil
	return err
}

// Restart stops the server if it runs and starts it again on the same data
// directory and client port, so connected clients reconnect by themselves.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.restart(); err != nil {
		t.Fatalf("cairntest: restart: %v", err)
	}
}

func (s *Server) restart() error {
	if err := s.stop(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The port is free once the old listener is closed, unless another
	// process grabbed it meanwhile: retry briefly on EADDRINUSE.
	deadline := time.Now().Add(5 * time.Second)
	for {
		srv, err := embed.Start(s.cfg)
		if err == nil {
			s.mu.srv = srv
			return nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops the server and, if Start or StartServer made its data
// directory, removes it.
func (s *Server) Close() error {
	err := s.stop()
	s.removeTemp()
	return err
}

func (s *Server) removeTemp() {
	if s.tempDir {
		os.RemoveAll(s.cfg.Dir)
	}
	if s.pki != nil {
		os.RemoveAll(s.pki.Dir)
	}
}
