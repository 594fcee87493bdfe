package client

import (
	"fmt"
	"log/slog"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Client is a connection to a Cairn or etcd cluster with the SDK's
// operations on top. It is safe for concurrent use. Close it when done.
type Client struct {
	etcd *clientv3.Client
	lg   *slog.Logger
	own  bool // Close closes etcd
}

// New connects to the cluster cfg describes (after EnsureDefaults and
// Validate). Like clientv3 3.6 it does not wait for a connection: an
// unreachable cluster shows up as errors from the first calls, each bounded
// by its context. It fails on an invalid cfg (a *FieldError), and, within
// DialTimeout, when authentication or the RejectOldCluster check fails.
func New(cfg Config) (*Client, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ec, err := cfg.etcdConfig()
	if err != nil {
		return nil, err
	}
	etcd, err := clientv3.New(ec)
	if err != nil {
		return nil, fmt.Errorf("client: connect to %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return &Client{etcd: etcd, lg: orDiscard(cfg.Logger), own: true}, nil
}

// Connect parses a connection string (see ParseConnectionString) and
// connects with it.
func Connect(connectionString string) (*Client, error) {
	cfg, err := ParseConnectionString(connectionString)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// NewFromEnv reads the Config from the environment (see ConfigFromEnv) and
// connects with it.
func NewFromEnv() (*Client, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// Wrap gives the SDK's operations to an existing clientv3 client, logging
// to logger (nil discards). Close on the result does not close etcd: its
// owner does.
func Wrap(etcd *clientv3.Client, logger *slog.Logger) *Client {
	return &Client{etcd: etcd, lg: orDiscard(logger)}
}

// Etcd returns the underlying clientv3 client, for anything the SDK does
// not cover (Txn, Compact, Maintenance...). It is farseer's Original().
func (c *Client) Etcd() *clientv3.Client { return c.etcd }

// Logger returns the logger the SDK logs to (never nil), for packages built
// on Client such as registry and config.
func (c *Client) Logger() *slog.Logger { return c.lg }

// Close closes the connection (unless the Client came from Wrap). Watchers,
// keep-alives and locks that use it end with ErrClosed; leases it kept
// alive expire after their TTL.
func (c *Client) Close() error {
	if !c.own {
		return nil
	}
	return c.etcd.Close()
}

// closed reports whether the underlying clientv3 client was closed.
func (c *Client) closed() bool { return c.etcd.Ctx().Err() != nil }
