package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
)

// Info is one side's TLS settings, as etcd's transport.TLSInfo: the client
// side (--cert-file, --trusted-ca-file, ...) or the peer side
// (--peer-cert-file, ...).
type Info struct {
	// CertFile and KeyFile are the certificate (chain) this side serves
	// with, and its key (etcd --cert-file, --key-file).
	CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile, if set, are presented when this
	// side connects as a client; otherwise CertFile and KeyFile are
	// (etcd --client-cert-file, --client-key-file).
	ClientCertFile, ClientKeyFile string
	// TrustedCAFile is a PEM bundle that verifies the other side's
	// certificate (etcd --trusted-ca-file). As in etcd, setting it makes
	// a server require client certificates.
	TrustedCAFile string
	// ClientCertAuth makes a server require and verify client
	// certificates (etcd --client-cert-auth).
	ClientCertAuth bool
	// CRLFile lists revoked certificates (etcd --client-crl-file); a
	// server refuses a client whose certificate chain holds one.
	CRLFile string
	// AllowedCNs and AllowedHostnames, if set, admit only a remote
	// certificate whose verified leaf has one of these common names, or is
	// valid for one of these host names (etcd --peer-cert-allowed-cn,
	// --peer-cert-allowed-hostname, --client-cert-allowed-hostname). At
	// most one of the two may be set.
	AllowedCNs, AllowedHostnames []string
	// CheckClientSAN makes a server check that a client certificate with
	// IP or DNS SANs is valid for the address the client connects from,
	// as etcd's peer listener does unless
	// --peer-skip-client-san-verification.
	CheckClientSAN bool
	// CipherSuites restricts TLS 1.2 cipher suites (etcd --cipher-suites);
	// empty leaves Go's choice. TLS 1.3 suites are not configurable.
	CipherSuites []uint16
	// MinVersion and MaxVersion bound the protocol version (etcd
	// --tls-min-version, --tls-max-version); 0 means TLS 1.2 and Go's
	// highest.
	MinVersion, MaxVersion uint16
	// InsecureSkipVerify makes a client accept any server certificate:
	// set for self-signed certificates (--auto-tls), as etcd does.
	InsecureSkipVerify bool
	// ServerName is the name a client verifies the server's certificate
	// against; empty means the host it dials.
	ServerName string
	// NextProtos are the ALPN protocols a server offers, in its order of
	// preference. Empty means "h2" and "http/1.1".
	NextProtos []string
	// Logger receives reloads and rejected handshakes. Default slog.Default().
	Logger *slog.Logger
}

// Empty reports whether no certificate is configured.
func (i *Info) Empty() bool { return i.CertFile == "" && i.KeyFile == "" }

func (i *Info) logger() *slog.Logger {
	if i.Logger == nil {
		return slog.Default()
	}
	return i.Logger
}

// Version parses etcd's --tls-min-version and --tls-max-version values:
// "" (Go's choice, 0), "TLS1.2" or "TLS1.3".
func Version(s string) (uint16, error) {
	switch s {
	case "":
		return 0, nil
	case "TLS1.2":
		return tls.VersionTLS12, nil
	case "TLS1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unexpected TLS version %q (must be one of: TLS1.2, TLS1.3)", s)
}

// CipherSuites parses etcd's --cipher-suites names (Go's names, e.g.
// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, including the insecure ones Go
// still implements, and the two CHACHA20 aliases etcd accepts).
func CipherSuites(names []string) ([]uint16, error) {
	out := make([]uint16, 0, len(names))
	for _, n := range names {
		id, ok := cipherSuite(n)
		if !ok {
			return nil, fmt.Errorf("unexpected TLS cipher suite %q", n)
		}
		out = append(out, id)
	}
	return out, nil
}

func cipherSuite(name string) (uint16, bool) {
	for _, c := range tls.CipherSuites() {
		if c.Name == name {
			return c.ID, true
		}
	}
	for _, c := range tls.InsecureCipherSuites() {
		if c.Name == name {
			return c.ID, true
		}
	}
	switch name {
	case "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305":
		return tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, true
	case "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305":
		return tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true
	}
	return 0, false
}

// base is what client and server configurations share.
func (i *Info) base() *tls.Config {
	min := i.MinVersion
	if min == 0 {
		min = tls.VersionTLS12 // etcd's default: older versions are insecure
	}
	cfg := &tls.Config{MinVersion: min, MaxVersion: i.MaxVersion, ServerName: i.ServerName}
	if len(i.CipherSuites) > 0 {
		cfg.CipherSuites = i.CipherSuites
	}
	return cfg
}

// allowed checks the verified leaf against AllowedCNs or AllowedHostnames,
// as etcd's VerifyPeerCertificate.
func (i *Info) allowed(chains [][]*x509.Certificate) error {
	if len(i.AllowedCNs) == 0 && len(i.AllowedHostnames) == 0 {
		return nil
	}
	for _, chain := range chains {
		if len(chain) == 0 {
			continue
		}
		leaf := chain[0]
		for _, cn := range i.AllowedCNs {
			if leaf.Subject.CommonName == cn {
				return nil
			}
		}
		for _, h := range i.AllowedHostnames {
			if leaf.VerifyHostname(h) == nil {
				return nil
			}
		}
	}
	return errors.New("client certificate authentication failed")
}

func (i *Info) check() error {
	if len(i.AllowedCNs) > 0 && len(i.AllowedHostnames) > 0 {
		return fmt.Errorf("AllowedCNs and AllowedHostnames are mutually exclusive (cns=%q, hostnames=%q)", i.AllowedCNs, i.AllowedHostnames)
	}
	if i.MaxVersion != 0 && i.MinVersion > i.MaxVersion {
		return fmt.Errorf("min version (%x) is greater than max version (%x)", i.MinVersion, i.MaxVersion)
	}
	return nil
}

// ServerConfig returns the configuration of a TLS listener. Every file is
// loaded now, and any that fails is an error; afterwards each handshake
// uses the files' current versions.
func (i Info) ServerConfig() (*tls.Config, error) {
	if i.CertFile == "" || i.KeyFile == "" {
		return nil, fmt.Errorf("KeyFile and CertFile must both be present[key: %v, cert: %v]", i.KeyFile, i.CertFile)
	}
	if err := i.check(); err != nil {
		return nil, err
	}
	lg := i.logger()
	pair, err := newWatched("certificate", lg, parseKeyPair, i.CertFile, i.KeyFile)
	if err != nil {
		return nil, err
	}
	var cas *watched[*x509.CertPool]
	if i.TrustedCAFile != "" {
		if cas, err = newWatched("CA bundle", lg, parseCertPool, i.TrustedCAFile); err != nil {
			return nil, err
		}
	}
	var crl *watched[*CRL]
	if i.CRLFile != "" {
		if crl, err = newWatched("CRL", lg, parseCRL, i.CRLFile); err != nil {
			return nil, err
		}
	}
	s := &server{info: i, pair: pair, cas: cas, crl: crl}
	cfg := i.base()
	cfg.NextProtos = s.nextProtos()
	cfg.GetConfigForClient = s.configForClient
	return cfg, nil
}

type server struct {
	info Info
	pair *watched[*tls.Certificate]
	cas  *watched[*x509.CertPool]
	crl  *watched[*CRL]

	mu struct {
		sync.Mutex
		// cfg is built for pair and pool; rebuilt when either changes.
		cfg  *tls.Config
		pair *tls.Certificate
		pool *x509.CertPool
	}
}

func (s *server) nextProtos() []string {
	if len(s.info.NextProtos) > 0 {
		return s.info.NextProtos
	}
	return []string{"h2", "http/1.1"}
}

// configForClient is the configuration of one handshake: the current
// certificate and CA bundle; the CRL and SAN checks read the current CRL.
func (s *server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	pair := s.pair.get()
	var pool *x509.CertPool
	if s.cas != nil {
		pool = s.cas.get()
	}
	s.mu.Lock()
	cfg := s.mu.cfg
	if cfg == nil || s.mu.pair != pair || s.mu.pool != pool {
		cfg = s.info.base()
		cfg.NextProtos = s.nextProtos()
		cfg.Certificates = []tls.Certificate{*pair}
		cfg.ClientCAs = pool
		if s.info.TrustedCAFile != "" || s.info.ClientCertAuth {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		cfg.VerifyConnection = s.verify
		s.mu.cfg, s.mu.pair, s.mu.pool = cfg, pair, pool
	}
	s.mu.Unlock()
	if s.info.CheckClientSAN && cfg.ClientAuth != tls.NoClientCert && hello.Conn != nil {
		addr := hello.Conn.RemoteAddr()
		cfg = cfg.Clone()
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := s.verify(cs); err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 || addr == nil {
				return nil
			}
			return checkCertSAN(context.Background(), cs.PeerCertificates[0], addr.String())
		}
	}
	return cfg, nil
}

// verify runs after the chain is verified: allowed names, then the CRL.
func (s *server) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	if err := s.info.allowed(cs.VerifiedChains); err != nil {
		return err
	}
	if s.crl != nil {
		return s.crl.get().check(cs.PeerCertificates)
	}
	return nil
}

// ClientConfig returns a function that yields the configuration of one
// outgoing connection, with the current client certificate and CA bundle.
// Every file is loaded now, and any that fails is an error.
func (i Info) ClientConfig() (func() *tls.Config, error) {
	if err := i.check(); err != nil {
		return nil, err
	}
	lg := i.logger()
	certFile, keyFile := i.CertFile, i.KeyFile
	if i.ClientCertFile != "" || i.ClientKeyFile != "" {
		certFile, keyFile = i.ClientCertFile, i.ClientKeyFile
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("a client certificate needs both its files (cert: %q, key: %q)", certFile, keyFile)
	}
	var pair *watched[*tls.Certificate]
	var err error
	if certFile != "" {
		if pair, err = newWatched("client certificate", lg, parseKeyPair, certFile, keyFile); err != nil {
			return nil, err
		}
	}
	var cas *watched[*x509.CertPool]
	if i.TrustedCAFile != "" {
		if cas, err = newWatched("CA bundle", lg, parseCertPool, i.TrustedCAFile); err != nil {
			return nil, err
		}
	}
	return func() *tls.Config {
		cfg := i.base()
		cfg.InsecureSkipVerify = i.InsecureSkipVerify
		if pair != nil {
			c := pair.get()
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c, nil }
		}
		if cas != nil {
			cfg.RootCAs = cas.get()
		}
		if len(i.AllowedCNs) > 0 || len(i.AllowedHostnames) > 0 {
			cfg.VerifyConnection = func(cs tls.ConnectionState) error { return i.allowed(cs.VerifiedChains) }
		}
		return cfg
	}, nil
}

// checkCertSAN checks a client certificate against the address it
// connects from, as etcd's peer listener: an IP SAN must match it, or a
// DNS SAN must resolve to it (or it to the name).
func checkCertSAN(ctx context.Context, cert *x509.Certificate, remoteAddr string) error {
	if len(cert.IPAddresses) == 0 && len(cert.DNSNames) == 0 {
		return nil
	}
	h, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return err
	}
	if len(cert.IPAddresses) > 0 {
		err := cert.VerifyHostname(h)
		if err == nil {
			return nil
		}
		if len(cert.DNSNames) == 0 {
			return err
		}
	}
	names, lerr := net.DefaultResolver.LookupAddr(ctx, h)
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		for _, d := range cert.DNSNames {
			if d == n || (strings.HasPrefix(d, "*.") && strings.HasSuffix(n, d[1:])) {
				return nil
			}
		}
	}
	for _, d := range cert.DNSNames {
		if strings.HasPrefix(d, "*.") {
			continue
		}
		addrs, err := net.DefaultResolver.LookupHost(ctx, d)
		if err != nil {
			lerr = err
			continue
		}
		for _, a := range addrs {
			if a == h {
				return nil
			}
		}
	}
	msg := fmt.Sprintf("tls: %q does not match any of DNSNames %q", h, cert.DNSNames)
	if lerr != nil {
		msg += " (" + lerr.Error() + ")"
	}
	return errors.New(msg)
}
