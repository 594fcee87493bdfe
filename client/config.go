package client

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// Defaults applied by EnsureDefaults.
const (
	// DefaultEndpoint is the endpoint used when Config.Endpoints is empty:
	// where `cairn` (and etcd) listen for clients by default.
	DefaultEndpoint = "127.0.0.1:2379"
	// DefaultDialTimeout bounds connection set-up and authentication.
	DefaultDialTimeout = 5 * time.Second
)

// Config says how to reach a Cairn (or etcd) cluster. The zero value is
// valid: it connects to 127.0.0.1:2379 with a 5 s dial timeout. Build one in
// Go, from a connection string (ParseConnectionString) or from the
// environment (ConfigFromEnv).
type Config struct {
	// Endpoints are the cluster's client URLs or host:port pairs, e.g.
	// "127.0.0.1:2379" or "http://10.0.0.1:2379". Default: DefaultEndpoint.
	Endpoints []string

	// DialTimeout bounds connection set-up, authentication and the
	// RejectOldCluster version check. Default 5 s. Negative is invalid.
	DialTimeout time.Duration
	// DialKeepAliveTime is how often the client pings an idle connection
	// to check it is alive (gRPC keepalive). 0 disables the pings.
	DialKeepAliveTime time.Duration
	// DialKeepAliveTimeout is how long the client waits for a ping's answer
	// before it closes the connection. 0 uses gRPC's default (20 s).
	DialKeepAliveTimeout time.Duration
	// PermitWithoutStream lets keepalive pings flow even when no RPC or
	// stream is open.
	PermitWithoutStream bool

	// MaxCallSendMsgSize is the largest request the client sends, in bytes.
	// 0 uses clientv3's default of 2 MiB. The server has its own limit
	// (cairn --max-request-bytes, default 1.5 MiB).
	MaxCallSendMsgSize int
	// MaxCallRecvMsgSize is the largest response the client accepts, in
	// bytes. 0 means no limit below 2 GiB.
	MaxCallRecvMsgSize int

	// Username, if set, authenticates every request together with
	// Password: the client gets a token (etcd's Authenticate) when it
	// connects and again when the token expires, as etcd's clientv3.
	Username string
	// Password is Username's password.
	Password string

	// RejectOldCluster makes New fail when a member runs an API version
	// older than the client's previous minor release.
	RejectOldCluster bool

	// TLS, if set, is used for every endpoint (and https:// endpoints
	// require it, or CACert).
	TLS *tls.Config
	// CACert is a PEM file of the CAs that verify the servers'
	// certificates (etcdctl --cacert). Setting it, Cert or ServerName
	// turns TLS on (on top of TLS, if that is set too).
	CACert string
	// Cert and Key are the PEM files of the client certificate and its
	// key (etcdctl --cert, --key), for servers that require one
	// (--client-cert-auth). With auth, the certificate's CN is the user.
	Cert, Key string
	// ServerName is the name the servers' certificates must be valid for;
	// empty means the host of the endpoint dialled.
	ServerName string
	// DialOptions are appended to clientv3's own gRPC dial options, for
	// interceptors or a custom connect backoff.
	DialOptions []grpc.DialOption

	// Logger receives the SDK's logs (watch re-creation, re-registration,
	// rejected config updates) and clientv3's, which are bridged to it.
	// nil discards both.
	Logger *slog.Logger
}

// EnsureDefaults fills in the zero fields that have a default.
func (c *Config) EnsureDefaults() {
	if len(c.Endpoints) == 0 {
		c.Endpoints = []string{DefaultEndpoint}
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
}

// Validate reports the first invalid field as a *FieldError naming it.
func (c *Config) Validate() error {
	for i, ep := range c.Endpoints {
		if strings.TrimSpace(ep) == "" {
			return &FieldError{Source: "config", Field: fmt.Sprintf("Endpoints[%d]", i), Reason: "empty endpoint"}
		}
		if strings.ContainsAny(ep, "|, \t\r\n") {
			return &FieldError{Source: "config", Field: fmt.Sprintf("Endpoints[%d]", i), Reason: fmt.Sprintf("%q contains a separator or space", ep)}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"DialKeepAliveTime", c.DialKeepAliveTime}, {"DialKeepAliveTimeout", c.DialKeepAliveTimeout}} {
		if d.v < 0 {
			return &FieldError{Source: "config", Field: d.name, Reason: fmt.Sprintf("%v is negative", d.v)}
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MaxCallSendMsgSize", c.MaxCallSendMsgSize}, {"MaxCallRecvMsgSize", c.MaxCallRecvMsgSize}} {
		if n.v < 0 || n.v > math.MaxInt32 {
			return &FieldError{Source: "config", Field: n.name, Reason: fmt.Sprintf("%d bytes is outside [0, %d]", n.v, math.MaxInt32)}
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		field := "Cert"
		if c.Cert != "" {
			field = "Key"
		}
		return &FieldError{Source: "config", Field: field, Reason: "Cert and Key must be set together"}
	}
	if c.Password != "" && c.Username == "" {
		return &FieldError{Source: "config", Field: "Password", Reason: "set without a Username"}
	}
	return nil
}

// etcdConfig is the clientv3.Config that c describes; it reads the TLS
// files.
func (c *Config) etcdConfig() (clientv3.Config, error) {
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return clientv3.Config{}, err
	}
	return clientv3.Config{
		Endpoints:            c.Endpoints,
		DialTimeout:          c.DialTimeout,
		DialKeepAliveTime:    c.DialKeepAliveTime,
		DialKeepAliveTimeout: c.DialKeepAliveTimeout,
		PermitWithoutStream:  c.PermitWithoutStream,
		MaxCallSendMsgSize:   c.MaxCallSendMsgSize,
		MaxCallRecvMsgSize:   c.MaxCallRecvMsgSize,
		Username:             c.Username,
		Password:             c.Password,
		RejectOldCluster:     c.RejectOldCluster,
		TLS:                  tlsCfg,
		DialOptions:          c.DialOptions,
		Logger:               zapLogger(c.Logger),
	}, nil
}
