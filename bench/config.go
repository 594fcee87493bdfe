package bench

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Commands, as etcd's benchmark tool names them.
const (
	CmdPut            = "put"
	CmdRange          = "range"
	CmdTxnPut         = "txn-put"
	CmdTxnMixed       = "txn-mixed"
	CmdWatch          = "watch"
	CmdLeaseKeepalive = "lease-keepalive"
)

// Commands lists every command, in the order help shows them.
var Commands = []string{CmdPut, CmdRange, CmdTxnPut, CmdTxnMixed, CmdWatch, CmdLeaseKeepalive}

// Config is one run. The zero value of each field takes the default of
// etcd's benchmark tool (noted per field); Command and Endpoints have none.
type Config struct {
	// Endpoints are the servers' client addresses ("127.0.0.1:2379" or a
	// URL). Connection i goes to Endpoints[i % len(Endpoints)], as in
	// etcd's tool.
	Endpoints []string
	// Conns is the number of gRPC connections (--conns; default 1).
	Conns int
	// Clients is the number of concurrent clients (--clients; default 1),
	// spread over the connections.
	Clients int
	// Total is the number of requests (--total; default 10000). For watch
	// it is the number of puts (--puts).
	Total int
	// Rate paces requests over all clients, in requests per second
	// (--rate; 0: as fast as the clients go).
	Rate float64
	// DialTimeout bounds connecting (--dial-timeout; default 5 s).
	DialTimeout time.Duration
	// TargetLeader sends every request to the leader's endpoint only
	// (--target-leader).
	TargetLeader bool
	// Timeout bounds the whole run (--timeout; 0: none). A run that times
	// out reports what it did, with the requests it did not issue missing
	// from the counts.
	Timeout time.Duration
	// Progress is the interval of progress lines (--progress; 0: none).
	Progress time.Duration
	// CACert verifies the servers' certificates, and Cert and Key are the
	// client certificate and its key (--cacert, --cert, --key, as etcd's tool); any of
	// them connects with TLS.
	CACert, Cert, CertKey string
	// User is "name:password" (--user, as etcd's benchmark tool): every
	// connection authenticates as that user. Empty: no auth.
	User string

	// Command is one of Commands.
	Command string

	// KeySize is the length of a key in bytes (--key-size; default 8).
	KeySize int
	// ValSize is the length of a value in bytes (--val-size; default 8).
	ValSize int
	// KeySpaceSize is the number of distinct keys written or read
	// (--key-space-size; default 1).
	KeySpaceSize int
	// SequentialKeys makes request n use key n mod KeySpaceSize instead of
	// a random one (--sequential-keys).
	SequentialKeys bool

	// Key and End are the range command's KEY and optional END arguments.
	Key, End string
	// Consistency is "l" (linearizable, the default) or "s" (serializable)
	// for range and the reads of txn-mixed (--consistency).
	Consistency string
	// Limit caps the keys a range returns (--limit; 0: no limit).
	Limit int64
	// Stream makes range read through KV.RangeStream (etcd 3.7; --stream)
	// instead of a unary Range; the latency is that of the whole stream.
	Stream bool

	// TxnOps is the number of puts in one txn-put transaction (--txn-ops;
	// default 1).
	TxnOps int
	// RWRatio is txn-mixed's ratio of reads to writes (--rw-ratio; default
	// 1): 9 means 90% reads and 10% writes.
	RWRatio float64

	// Watchers is the number of watchers of the watch command (--watchers;
	// default 100), all on one key, spread over Streams watch streams
	// (--streams; default 10), which are spread over the connections.
	Watchers, Streams int
}

// EnsureDefaults fills every zero field that has a default.
func (c *Config) EnsureDefaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Conns, 1)
	def(&c.Clients, 1)
	def(&c.Total, 10000)
	def(&c.KeySize, 8)
	def(&c.ValSize, 8)
	def(&c.KeySpaceSize, 1)
	def(&c.TxnOps, 1)
	def(&c.Watchers, 100)
	def(&c.Streams, 10)
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.Consistency == "" {
		c.Consistency = "l"
	}
	if c.RWRatio == 0 {
		c.RWRatio = 1
	}
}

// Validate reports the first invalid field, naming it as its flag.
func (c *Config) Validate() error {
	known := false
	for _, cmd := range Commands {
		known = known || c.Command == cmd
	}
	switch {
	case !known:
		return fmt.Errorf("bench: unknown command %q", c.Command)
	case len(c.Endpoints) == 0:
		return errors.New("bench: --endpoints: no endpoint")
	case c.Conns < 1:
		return fmt.Errorf("bench: --conns: %d is below 1", c.Conns)
	case c.Clients < 1:
		return fmt.Errorf("bench: --clients: %d is below 1", c.Clients)
	case c.Total < 1:
		return fmt.Errorf("bench: --total: %d is below 1", c.Total)
	case c.Rate < 0:
		return fmt.Errorf("bench: --rate: %v is negative", c.Rate)
	case c.KeySize < 1:
		return fmt.Errorf("bench: --key-size: %d is below 1", c.KeySize)
	case c.ValSize < 0:
		return fmt.Errorf("bench: --val-size: %d is negative", c.ValSize)
	case c.KeySpaceSize < 1:
		return fmt.Errorf("bench: --key-space-size: %d is below 1", c.KeySpaceSize)
	case len(strconv.Itoa(c.KeySpaceSize-1)) > c.KeySize:
		return fmt.Errorf("bench: --key-size: %d bytes cannot hold the %d decimal digits of key %d (--key-space-size %d)",
			c.KeySize, len(strconv.Itoa(c.KeySpaceSize-1)), c.KeySpaceSize-1, c.KeySpaceSize)
	case c.Consistency != "l" && c.Consistency != "s":
		return fmt.Errorf("bench: --consistency: %q is neither l (linearizable) nor s (serializable)", c.Consistency)
	case c.Limit < 0:
		return fmt.Errorf("bench: --limit: %d is negative", c.Limit)
	case c.TxnOps < 1 || c.TxnOps > c.KeySpaceSize:
		return fmt.Errorf("bench: --txn-ops: %d is not between 1 and --key-space-size (%d)", c.TxnOps, c.KeySpaceSize)
	case c.RWRatio <= 0:
		return fmt.Errorf("bench: --rw-ratio: %v is not positive", c.RWRatio)
	case c.Watchers < 1:
		return fmt.Errorf("bench: --watchers: %d is below 1", c.Watchers)
	case c.Streams < 1 || c.Streams > c.Watchers:
		return fmt.Errorf("bench: --streams: %d is not between 1 and --watchers (%d)", c.Streams, c.Watchers)
	case c.Command == CmdRange && c.Key == "":
		return errors.New("bench: range needs a KEY")
	}
	return nil
}
