package embed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/cairn-kv/cairn/pkg/tlsutil"
)

// TLSConfig is the TLS of a member's listeners and peer connections, with
// etcd's flags. A listener is TLS when its URL is https:// or unixs://.
type TLSConfig struct {
	// ClientTLS serves https:// and unixs:// client and metrics URLs
	// (etcd --cert-file, --key-file, --trusted-ca-file, --client-cert-auth,
	// --client-crl-file, --client-cert-allowed-hostname, --client-cert-file,
	// --client-key-file). With ClientCertAuth, a client must present a
	// certificate signed by TrustedCAFile; its CN will be its user name
	// once auth is implemented (as etcd).
	ClientTLS tlsutil.Info
	// ClientAutoTLS serves TLS clients with a self-signed certificate
	// generated into <Dir>/fixtures/client when ClientTLS has none (etcd
	// --auto-tls).
	ClientAutoTLS bool
	// PeerTLS serves https:// peer URLs and connects to https:// peers
	// (etcd --peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
	// --peer-client-cert-auth, --peer-crl-file, --peer-cert-allowed-cn,
	// --peer-cert-allowed-hostname, --peer-client-cert-file,
	// --peer-client-key-file). PeerTLS.CheckClientSAN is set unless
	// PeerSkipClientSANVerify.
	PeerTLS tlsutil.Info
	// PeerAutoTLS uses a self-signed certificate generated into
	// <Dir>/fixtures/peer when PeerTLS has none, and accepts peers' own
	// (etcd --peer-auto-tls).
	PeerAutoTLS bool
	// PeerSkipClientSANVerify skips the check that a peer's client
	// certificate is valid for the address it connects from (etcd
	// --peer-skip-client-san-verification).
	PeerSkipClientSANVerify bool
	// SelfSignedCertValidity is the validity of generated certificates,
	// in years (etcd --self-signed-cert-validity). 0 means 1.
	SelfSignedCertValidity uint
	// CipherSuites are the TLS 1.2 cipher suites, by Go's names (etcd
	// --cipher-suites); empty leaves Go's choice.
	CipherSuites []string
	// TLSMinVersion and TLSMaxVersion are "TLS1.2" or "TLS1.3" (etcd
	// --tls-min-version, --tls-max-version); empty means TLS 1.2 and Go's
	// highest.
	TLSMinVersion, TLSMaxVersion string
}

// tlsHandshakeTimeout bounds a TLS handshake (and the wait for a plaintext
// connection's first bytes), as etcd's listener since GHSA-6vch-q96h-7gc3.
var tlsHandshakeTimeout = 10 * time.Second

func secureScheme(u url.URL) bool { return u.Scheme == "https" || u.Scheme == "unixs" }

func hasSecure(us []url.URL) bool {
	for _, u := range us {
		if secureScheme(u) {
			return true
		}
	}
	return false
}

// validateTLS checks the TLS settings that need no file, as etcd's
// Config.Validate and listener set-up, with etcd's messages.
func (c *Config) validateTLS() error {
	check := func(flag string, us []url.URL) error {
		for _, u := range us {
			switch u.Scheme {
			case "http", "https", "unix", "unixs":
			default:
				return fmt.Errorf("%s: %q: scheme %q is not supported (want http, https, unix or unixs)", flag, u.String(), u.Scheme)
			}
		}
		return nil
	}
	for _, f := range []struct {
		flag string
		us   []url.URL
	}{{"--listen-client-urls", c.ListenClientURLs}, {"--listen-client-http-urls", c.ListenClientHTTPURLs},
		{"--listen-peer-urls", c.ListenPeerURLs}, {"--listen-metrics-urls", c.ListenMetricsURLs}} {
		if err := check(f.flag, f.us); err != nil {
			return err
		}
	}
	for _, u := range c.ListenClientHTTPURLs {
		for _, g := range c.ListenClientURLs {
			if u.Host+u.Path == g.Host+g.Path && !strings.HasSuffix(u.Host, ":0") {
				return fmt.Errorf("cannot bind both --listen-client-urls and --listen-client-http-urls on the same url %s", u.String())
			}
		}
	}
	min, err := tlsutil.Version(c.TLSMinVersion)
	if err != nil {
		return fmt.Errorf("--tls-min-version: %w", err)
	}
	max, err := tlsutil.Version(c.TLSMaxVersion)
	if err != nil {
		return fmt.Errorf("--tls-max-version: %w", err)
	}
	if max != 0 && min > max {
		return fmt.Errorf("min version (%s) is greater than max version (%s) (--tls-min-version, --tls-max-version)", c.TLSMinVersion, c.TLSMaxVersion)
	}
	if min == tls.VersionTLS13 && len(c.CipherSuites) > 0 {
		return errors.New("cipher suites cannot be configured when only TLS1.3 is enabled (--cipher-suites, --tls-min-version)")
	}
	if _, err := tlsutil.CipherSuites(c.CipherSuites); err != nil {
		return fmt.Errorf("--cipher-suites: %w", err)
	}
	for _, side := range []struct {
		prefix string
		info   *tlsutil.Info
		auto   bool
		urls   []url.URL
	}{
		{"", &c.ClientTLS, c.ClientAutoTLS, append(append([]url.URL{}, c.ListenClientURLs...), c.ListenClientHTTPURLs...)},
		{"peer-", &c.PeerTLS, c.PeerAutoTLS, c.ListenPeerURLs},
	} {
		p, i := side.prefix, side.info
		if (i.CertFile == "") != (i.KeyFile == "") {
			return fmt.Errorf("--%scert-file and --%skey-file must both be set (cert: %q, key: %q)", p, p, i.CertFile, i.KeyFile)
		}
		if (i.ClientCertFile == "") != (i.ClientKeyFile == "") {
			return fmt.Errorf("--%sclient-cert-file and --%sclient-key-file must both be set (cert: %q, key: %q)", p, p, i.ClientCertFile, i.ClientKeyFile)
		}
		if len(i.AllowedCNs) > 0 && len(i.AllowedHostnames) > 0 {
			cn, host := "--peer-cert-allowed-cn", "--peer-cert-allowed-hostname"
			if p == "" {
				cn, host = "ClientTLS.AllowedCNs", "--client-cert-allowed-hostname"
			}
			return fmt.Errorf("%s and %s are mutually exclusive (cns=%q, hostnames=%q)", cn, host, i.AllowedCNs, i.AllowedHostnames)
		}
		if i.Empty() && !side.auto {
			for _, u := range side.urls {
				if secureScheme(u) {
					return fmt.Errorf("TLS key/cert (--%scert-file, --%skey-file) must be provided for %surl %s with HTTPS scheme (or set --%sauto-tls)", p, p, map[string]string{"": "client ", "peer-": "peer "}[p], u.String(), p)
				}
			}
		}
	}
	if c.ClientTLS.Empty() && !c.ClientAutoTLS && hasSecure(c.ListenMetricsURLs) {
		return errors.New("--listen-metrics-urls: client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url")
	}
	if c.SelfSignedCertValidity == 0 && (c.ClientAutoTLS || c.PeerAutoTLS) {
		return errors.New("--self-signed-cert-validity: selfSignedCertValidity is invalid,it should be greater than 0")
	}
	return nil
}

// listenerTLS are the TLS configurations Start builds from TLSConfig.
type listenerTLS struct {
	client *tls.Config // serves https client, client-http and metrics URLs
	peer   *tls.Config // serves https peer URLs
	// peerDial yields the configuration of a connection to a peer.
	peerDial func() *tls.Config
	// selfDial is the member's own client's (Lock and Election), which
	// trusts the member's certificate and presents its client one.
	selfDial *tls.Config
}

// setupTLS generates auto-TLS certificates if asked, then loads every TLS
// file, failing with a message that names the flag and the file, before
// anything listens or the data dir is opened.
func (s *Server) setupTLS() error {
	c := &s.cfg
	min, _ := tlsutil.Version(c.TLSMinVersion)
	max, _ := tlsutil.Version(c.TLSMaxVersion)
	suites, _ := tlsutil.CipherSuites(c.CipherSuites)
	client, peer := c.ClientTLS, c.PeerTLS
	peer.CheckClientSAN = !c.PeerSkipClientSANVerify

	clientURLs := append(append(append([]url.URL{}, c.ListenClientURLs...), c.ListenClientHTTPURLs...), c.ListenMetricsURLs...)
	if c.ClientAutoTLS && hasSecure(clientURLs) {
		if !client.Empty() {
			s.lg.Warn("ignoring client auto TLS since certs given")
		} else {
			hosts := hostsOf(append(append([]url.URL{}, c.ListenClientURLs...), c.ListenClientHTTPURLs...))
			info, err := tlsutil.SelfCert(filepath.Join(c.Dir, "fixtures", "client"), hosts, c.SelfSignedCertValidity)
			if err != nil {
				return fmt.Errorf("--auto-tls: %w", err)
			}
			s.lg.Warn("automatically generated client certificate", "cert-file", info.CertFile)
			client = info
		}
	}
	if c.PeerAutoTLS && hasSecure(c.ListenPeerURLs) {
		if !peer.Empty() {
			s.lg.Warn("ignoring peer auto TLS since certs given")
		} else {
			info, err := tlsutil.SelfCert(filepath.Join(c.Dir, "fixtures", "peer"), hostsOf(c.ListenPeerURLs), c.SelfSignedCertValidity)
			if err != nil {
				return fmt.Errorf("--peer-auto-tls: %w", err)
			}
			s.lg.Warn("automatically generated peer certificate", "cert-file", info.CertFile)
			peer = info
		}
	}
	for _, i := range []*tlsutil.Info{&client, &peer} {
		i.MinVersion, i.MaxVersion, i.CipherSuites, i.Logger = min, max, suites, s.lg
	}
	if err := checkFiles("", &client); err != nil {
		return err
	}
	if err := checkFiles("peer-", &peer); err != nil {
		return err
	}

	var err error
	if !client.Empty() {
		// h2 first, as etcd: connMux routes an HTTP/2 connection by the
		// content type of its first request (h2sniff.go), so curl --http2
		// reaches the JSON gateway over HTTP/2 and gRPC clients gRPC.
		client.NextProtos = []string{"h2", "http/1.1"}
		if s.tls.client, err = client.ServerConfig(); err != nil {
			return fmt.Errorf("client TLS: %w", err)
		}
		self := client
		self.InsecureSkipVerify = true // the member's own listener
		self.TrustedCAFile, self.AllowedCNs, self.AllowedHostnames = "", nil, nil
		dial, err := self.ClientConfig()
		if err != nil {
			return fmt.Errorf("client TLS: %w", err)
		}
		s.tls.selfDial = dial()
	}
	if !peer.Empty() {
		peer.NextProtos = []string{"h2", "http/1.1"}
		if s.tls.peer, err = peer.ServerConfig(); err != nil {
			return fmt.Errorf("peer TLS: %w", err)
		}
		if s.tls.peerDial, err = peer.ClientConfig(); err != nil {
			return fmt.Errorf("peer TLS: %w", err)
		}
	}
	return nil
}

// checkFiles loads each file of i on its own, so an error names the flag
// and the file.
func checkFiles(prefix string, i *tlsutil.Info) error {
	read := func(flag, file string) error {
		if file == "" {
			return nil
		}
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("--%s: %w", flag, err)
		}
		f.Close()
		return nil
	}
	pair := func(certFlag, keyFlag, cert, key string) error {
		if err := read(certFlag, cert); err != nil {
			return err
		}
		if err := read(keyFlag, key); err != nil {
			return err
		}
		if cert == "" {
			return nil
		}
		if _, err := tlsutil.LoadKeyPair(cert, key); err != nil {
			return fmt.Errorf("--%s %s and --%s %s: %w", certFlag, cert, keyFlag, key, err)
		}
		return nil
	}
	if err := pair(prefix+"cert-file", prefix+"key-file", i.CertFile, i.KeyFile); err != nil {
		return err
	}
	if err := pair(prefix+"client-cert-file", prefix+"client-key-file", i.ClientCertFile, i.ClientKeyFile); err != nil {
		return err
	}
	if i.TrustedCAFile != "" {
		if _, err := tlsutil.LoadCertPool(i.TrustedCAFile); err != nil {
			return fmt.Errorf("--%strusted-ca-file %s: %w", prefix, i.TrustedCAFile, err)
		}
	}
	if i.CRLFile != "" {
		crlFlag := "client-crl-file"
		if prefix != "" {
			crlFlag = "peer-crl-file"
		}
		if _, err := tlsutil.LoadCRL(i.CRLFile); err != nil {
			return fmt.Errorf("--%s %s: %w", crlFlag, i.CRLFile, err)
		}
	}
	return nil
}

func hostsOf(us []url.URL) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		if u.Scheme == "unix" || u.Scheme == "unixs" {
			continue
		}
		out = append(out, u.Host)
	}
	return out
}

// tlsFor is the TLS configuration of a listener on u, nil for plaintext.
func tlsFor(u url.URL, cfg *tls.Config) *tls.Config {
	if secureScheme(u) {
		return cfg
	}
	return nil
}

// grpcServerOptions are the client gRPC server's options from the config
// (etcd --max-concurrent-streams, --grpc-keepalive-*), and the credentials
// that expose a connection's TLS state to the services.
func (s *Server) grpcServerOptions() []grpc.ServerOption {
	c := &s.cfg
	streams := c.MaxConcurrentStreams
	if streams == 0 {
		streams = math.MaxUint32
	}
	opts := []grpc.ServerOption{
		grpc.Creds(handshaken{}),
		grpc.MaxConcurrentStreams(streams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: c.GRPCKeepAliveMinTime, PermitWithoutStream: false}),
	}
	if c.GRPCKeepAliveInterval > 0 && c.GRPCKeepAliveTimeout > 0 {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{Time: c.GRPCKeepAliveInterval, Timeout: c.GRPCKeepAliveTimeout}))
	}
	return opts
}

// handshaken are gRPC server credentials for connections whose TLS
// handshake connMux already did: a TLS connection is reported with its TLS
// state (so a service can read the client certificate's CN), any other
// connection as plaintext.
type handshaken struct{}

func (handshaken) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("embed: handshaken credentials are for servers")
}

func (handshaken) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if tc, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return c, credentials.TLSInfo{State: tc.ConnectionState(), CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return c, nil, nil
}

func (handshaken) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (h handshaken) Clone() credentials.TransportCredentials { return h }

func (handshaken) OverrideServerName(string) error { return nil }

// listenAll opens every listener, TLS where the URL says so.
func (s *Server) listenAll() error {
	c := &s.cfg
	clientRoutes := routeBoth
	if len(c.ListenClientHTTPURLs) > 0 {
		clientRoutes = routeGRPC
	}
	for _, l := range []struct {
		what   string
		urls   []url.URL
		tls    *tls.Config
		routes routes
		muxes  *[]*connMux
	}{
		{"client", c.ListenClientURLs, s.tls.client, clientRoutes, &s.clientMuxes},
		{"client HTTP", c.ListenClientHTTPURLs, s.tls.client, routeHTTP, &s.clientHTTPMuxes},
		{"peer", c.ListenPeerURLs, s.tls.peer, routeBoth, &s.peerMuxes},
		{"metrics", c.ListenMetricsURLs, s.tls.client, routeHTTP, &s.metricsMuxes},
	} {
		for _, u := range l.urls {
			ln, err := listen(u)
			if err != nil {
				return fmt.Errorf("listen on %s URL %s: %w", l.what, u.String(), err)
			}
			*l.muxes = append(*l.muxes, newConnMux(ln, tlsFor(u, l.tls), l.routes, l.what, c.MaxConcurrentStreams, s.lg))
		}
	}
	return nil
}

// ClientHTTPEndpoints lists the --listen-client-http-urls listeners'
// addresses, with real ports when a URL asked for port 0.
func (s *Server) ClientHTTPEndpoints() []string {
	out := make([]string, 0, len(s.clientHTTPMuxes))
	for _, m := range s.clientHTTPMuxes {
		out = append(out, m.Addr().String())
	}
	return out
}
