package embed

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	etcdversion "go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/cairn-kv/cairn/server"
	"github.com/cairn-kv/cairn/server/api"
	"github.com/cairn-kv/cairn/server/compactor"
	"github.com/cairn-kv/cairn/version"
)

// Server is a running Cairn member with its client and peer listeners.
type Server struct {
	cfg    Config
	lg     *slog.Logger
	member *server.Member
	grpc   *grpc.Server
	// self is the member's client to itself, for the Lock and Election
	// services; dialled once the client listeners serve.
	self api.SelfClient
	// gateway serves /v3/... over gwConn (gateway.go); nil when disabled.
	gateway http.Handler
	gwConn  *grpc.ClientConn
	http    *http.Server
	peer    *http.Server

	// tls holds the listeners' and dials' TLS configurations (tls.go).
	tls listenerTLS

	clientMuxes []*connMux
	// clientHTTPMuxes serve HTTP alone (--listen-client-http-urls).
	clientHTTPMuxes []*connMux
	peerMuxes       []*connMux
	peerGRPC        *grpc.Server
	// metricsMuxes serve metricsHTTP (--listen-metrics-urls).
	metricsMuxes []*connMux
	metricsHTTP  *http.Server

	// noBootstrap: discovery was skipped for a dir with data, which must
	// then hold a member (server.Config.NoBootstrap).
	noBootstrap bool

	ready   chan struct{}
	closing chan struct{} // closed when Close begins
	errc    chan error
	wg      sync.WaitGroup
	once    sync.Once
}

// Start validates cfg (after filling defaults), opens the data directory and
// starts serving. Close the returned Server to stop it.
func Start(cfg Config) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = newLogger(cfg.LogLevel)
	}
	for _, f := range cfg.IgnoredFlags {
		lg.Warn("flag is accepted for etcd compatibility but not implemented; ignoring it", "flag", "--"+f)
	}
	s := &Server{cfg: cfg, lg: lg, ready: make(chan struct{}), closing: make(chan struct{}), errc: make(chan error, 1)}
	if err := s.start(); err != nil {
		s.closeAll()
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	// TLS files, then listeners: a bad file or a port in use fails before
	// the data dir is opened.
	if err := s.setupTLS(); err != nil {
		return err
	}
	if err := s.listenAll(); err != nil {
		return err
	}
	if err := s.discover(); err != nil {
		return err
	}
	initial, err := ParseInitialCluster(s.cfg.InitialCluster)
	if err != nil {
		return fmt.Errorf("--initial-cluster: %w", err)
	}
	cluster := make(map[string][]string, len(initial))
	for name, urls := range initial {
		cluster[name] = urlStrings(urls)
	}
	compactPeriod, compactRevisions, err := compactor.ParseRetention(s.cfg.AutoCompactionMode, s.cfg.AutoCompactionRetention)
	if err != nil {
		return err
	}
	s.member, err = server.New(server.Config{
		Name:                    s.cfg.Name,
		Dir:                     s.cfg.Dir,
		PeerURLs:                urlStrings(s.cfg.InitialAdvertisePeerURLs),
		ClientURLs:              s.advertiseClientURLs(),
		InitialCluster:          cluster,
		InitialClusterToken:     s.cfg.InitialClusterToken,
		InitialClusterState:     s.cfg.InitialClusterState,
		NoBootstrap:             s.noBootstrap,
		SnapshotCount:           s.cfg.SnapshotCount,
		LiveCacheBytes:          s.cfg.LiveCacheBytes,
		CatchUpEntries:          s.cfg.SnapshotCatchUpEntries,
		MaxRequestBytes:         s.cfg.MaxRequestBytes,
		QuotaBackendBytes:       s.cfg.QuotaBackendBytes,
		DiskReserveBytes:        s.cfg.DiskReserveBytes,
		AutoCompactionMode:      s.cfg.AutoCompactionMode,
		AutoCompactionPeriod:    compactPeriod,
		AutoCompactionRevisions: compactRevisions,
		TickInterval:            s.cfg.tickInterval(),
		ElectionTicks:           s.cfg.electionTicks(),
		NoSync:                  s.cfg.UnsafeNoFsync,
		FeatureGates:            s.cfg.FeatureGates,
		CorruptCheckTime:        s.cfg.CorruptCheckTime,
		CompactHashCheckTime:    s.cfg.CompactHashCheckTime,
		WALDir:                  s.cfg.WALDir,
		MaxWALs:                 s.cfg.maxWALs(),
		PeerTLS:                 s.tls.peerDial,
		AuthToken:               s.cfg.AuthToken,
		AuthTokenTTL:            s.cfg.AuthTokenTTL,
		BcryptCost:              s.cfg.BcryptCost,
		Logger:                  s.lg,
	})
	if err != nil {
		return err
	}
	// Before any listener serves (etcd checks before it serves peers or clients).
	if err := s.member.InitialCorruptCheck(); err != nil {
		return err
	}
	s.grpc = api.NewServer(s.member, api.Options{MaxRequestBytes: s.cfg.MaxRequestBytes, MaxTxnOps: s.cfg.MaxTxnOps,
		ProgressNotifyInterval: s.cfg.WatchProgressNotifyInterval, Logger: s.lg,
		Metrics: s.member.MetricsRegisterer(), HandlingTime: s.cfg.Metrics == MetricsExtensive, Self: &s.self,
		ClientCertAuth: s.cfg.ClientTLS.ClientCertAuth,
		ServerOptions:  s.grpcServerOptions()})
	if err := s.startGateway(); err != nil {
		return err
	}
	s.http = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second, HTTP2: s.http2Config(), Protocols: httpProtocols()}
	s.peer = &http.Server{Handler: s.peerHandler(), ReadHeaderTimeout: 10 * time.Second}
	for _, m := range append(append([]*connMux{}, s.clientMuxes...), s.clientHTTPMuxes...) {
		s.serve(func() error { return s.grpc.Serve(m.grpc) })
		s.serve(func() error { return s.http.Serve(m.http) })
	}
	s.peerGRPC = grpc.NewServer(append(s.member.PeerServerOptions(), grpc.Creds(handshaken{}))...)
	s.member.RegisterPeerService(s.peerGRPC)
	for _, m := range s.peerMuxes {
		s.serve(func() error { return s.peerGRPC.Serve(m.grpc) })
		s.serve(func() error { return s.peer.Serve(m.http) })
	}
	s.metricsHTTP = &http.Server{Handler: s.metricsHandler(), ReadHeaderTimeout: 10 * time.Second}
	for _, m := range s.metricsMuxes {
		s.serve(func() error { return s.metricsHTTP.Serve(m.http) })
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case err := <-s.member.Failed():
			s.report(err)
		case <-s.closing:
		}
	}()
	if err := s.waitLeader(); err != nil {
		return err
	}
	s.member.SyncLeaderDuties()
	if err := s.dialSelf(); err != nil {
		return err
	}
	close(s.ready)
	s.lg.Info("ready to serve client requests", "endpoints", strings.Join(s.ClientEndpoints(), ","),
		"member-id", fmt.Sprintf("%x", s.member.ID()), "cluster-id", fmt.Sprintf("%x", s.member.ClusterID()),
		"version", version.Version, "etcd-api-version", version.APIVersion)
	return nil
}

// dialSelf connects the Lock and Election services' client to the first
// client listener, as etcd runs them over a client of itself.
func (s *Server) dialSelf() error {
	if len(s.clientMuxes) == 0 {
		return nil
	}
	addr := s.clientMuxes[0].root.Addr()
	ep := addr.String()
	if addr.Network() == "unix" {
		ep = "unix://" + ep
	}
	var tlsCfg *tls.Config
	if s.clientMuxes[0].tls != nil {
		tlsCfg = s.tls.selfDial
		if addr.Network() == "unix" {
			ep = "unixs://" + addr.String()
		}
	}
	c, err := clientv3.New(clientv3.Config{
		TLS:         tlsCfg,
		Endpoints:   []string{ep},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		// The server enforces its own limits.
		MaxCallSendMsgSize: math.MaxInt32,
		MaxCallRecvMsgSize: math.MaxInt32,
	})
	if err != nil {
		return fmt.Errorf("connect the lock and election services to %s: %w", ep, err)
	}
	s.self.Set(c)
	return nil
}

// waitLeader waits until the member can serve a linearizable read: a few
// election timeouts for a single member, longer for a cluster whose other
// members may start later (as etcd, which waits for a quorum before it
// serves).
func (s *Server) waitLeader() error {
	wait := 10 * time.Duration(s.cfg.ElectionMs) * time.Millisecond
	if initial, _ := ParseInitialCluster(s.cfg.InitialCluster); len(initial) > 1 || s.cfg.Discovery.enabled() {
		wait = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// One linearizable read gives up after the request timeout; a member
	// joining a busy cluster (catching up from a snapshot) may need
	// several within the wait.
	var err error
	for {
		_, err = s.member.Range(ctx, &pb.RangeRequest{Key: []byte("\x00"), Limit: 1, KeysOnly: true})
		if !errors.Is(err, server.ErrTimeout) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("member did not become ready: %w", err)
	}
	select {
	case <-s.member.Published():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("member did not publish its attributes: %w", ctx.Err())
	}
}

func (s *Server) serve(fn func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			s.report(err)
		}
	}()
}

func (s *Server) report(err error) {
	select {
	case s.errc <- err:
	default:
	}
}

// Ready is closed once the server serves client requests.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Err delivers a fatal error if the server stops on its own.
func (s *Server) Err() <-chan error { return s.errc }

// ClientEndpoints lists the client listeners' addresses ("127.0.0.1:2379"),
// with real ports when a URL asked for port 0.
func (s *Server) ClientEndpoints() []string {
	out := make([]string, 0, len(s.clientMuxes))
	for _, m := range s.clientMuxes {
		out = append(out, m.root.Addr().String())
	}
	return out
}

// MetricsEndpoints lists the --listen-metrics-urls listeners' addresses,
// with real ports when a URL asked for port 0.
func (s *Server) MetricsEndpoints() []string {
	out := make([]string, 0, len(s.metricsMuxes))
	for _, m := range s.metricsMuxes {
		out = append(out, m.Addr().String())
	}
	return out
}

// metricsHandler serves the --listen-metrics-urls listeners: /metrics and
// the health endpoints (/health, /livez, /readyz), as etcd's.
func (s *Server) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.member.MetricsHandler())
	mux.HandleFunc("/health", s.handleHealth)
	s.handleChecks(mux, "livez", s.livezChecks())
	s.handleChecks(mux, "readyz", s.readyzChecks())
	return mux
}

// Member is the running member, for in-process use.
func (s *Server) Member() *server.Member { return s.member }

func (s *Server) advertiseClientURLs() []string {
	// A listen URL with port 0 is advertised with its real port.
	if len(s.cfg.AdvertiseClientURLs) > 0 && !sameURLs(s.cfg.AdvertiseClientURLs, s.cfg.ListenClientURLs) {
		return urlStrings(s.cfg.AdvertiseClientURLs)
	}
	out := make([]string, 0, len(s.clientMuxes))
	for i, m := range s.clientMuxes {
		u := s.cfg.ListenClientURLs[i]
		if u.Scheme == "http" || u.Scheme == "https" {
			u.Host = m.root.Addr().String()
		}
		out = append(out, u.String())
	}
	return out
}

// Close stops serving, closes the member and waits for every goroutine.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() { err = s.closeAll() })
	return err
}

func (s *Server) closeAll() error {
	close(s.closing)
	// Refuse new client connections at once, as etcd does: a client with
	// other endpoints fails over instead of having its connection accepted
	// and dropped unanswered while the streams in flight drain.
	for _, m := range s.clientMuxes {
		m.Close()
	}
	for _, m := range s.clientHTTPMuxes {
		m.Close()
	}
	// Fail the Lock and Election calls that wait on the member first, so
	// the gRPC server can stop gracefully.
	s.self.Close()
	s.closeGateway()
	if s.grpc != nil {
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(2 * time.Second):
			s.grpc.Stop() // streams that would not end
		}
	}
	if s.peerGRPC != nil {
		s.peerGRPC.Stop()
	}
	for _, m := range s.peerMuxes {
		m.Close()
	}
	for _, m := range s.metricsMuxes {
		m.Close()
	}
	if s.http != nil {
		s.http.Close()
	}
	if s.peer != nil {
		s.peer.Close()
	}
	if s.metricsHTTP != nil {
		s.metricsHTTP.Close()
	}
	var err error
	if s.member != nil {
		err = s.member.Close()
	}
	s.wg.Wait()
	return err
}

// versionJSON is the body of GET /version, in etcd's own type so the
// fields come in etcd's order.
func (s *Server) versionJSON() []byte {
	b, _ := json.Marshal(etcdversion.Versions{Server: version.APIVersion, Cluster: version.ClusterVersion, Storage: version.ClusterVersion})
	return b
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	return out
}

func sameURLs(a, b []url.URL) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error", "panic", "fatal":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
