package embed

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/cairn-kv/cairn/server/compactor"
)

// Defaults, as etcd 3.6's embed.Config unless noted.
const (
	DefaultName                = "default"
	DefaultListenClientURL     = "http://127.0.0.1:2379" // etcd: http://localhost:2379
	DefaultListenPeerURL       = "http://127.0.0.1:2380" // etcd: http://localhost:2380
	DefaultInitialClusterToken = "etcd-cluster"
	DefaultSnapshotCount       = 10000
	DefaultMaxRequestBytes     = 1572864 // 1.5 MiB, as etcd's --max-request-bytes
	DefaultMaxTxnOps           = 128
	DefaultHeartbeatMs         = 100
	DefaultElectionMs          = 1000
	DefaultQuotaBackendBytes   = 2 << 30 // 2 GiB, as etcd's DefaultQuotaBytes

	ClusterStateNew      = "new"
	ClusterStateExisting = "existing"

	MetricsBasic     = "basic"
	MetricsExtensive = "extensive"
)

// Config is everything a Cairn member needs to start. The zero value is
// valid: EnsureDefaults fills in a single-node member named "default" that
// serves clients on 127.0.0.1:2379 and stores data in ./default.cairn.
type Config struct {
	// Name is this member's human-readable name (etcd --name).
	Name string
	// Dir is the data directory (etcd --data-dir). Default: "<Name>.cairn".
	Dir string

	// ListenClientURLs are the URLs the client gRPC service (and the HTTP
	// endpoints, unless ListenClientHTTPURLs is set) listens on (etcd
	// --listen-client-urls): http://, https://, unix:// or unixs://.
	ListenClientURLs []url.URL
	// ListenClientHTTPURLs, if set, serve the HTTP endpoints alone, and
	// ListenClientURLs then serve gRPC alone (etcd --listen-client-http-urls).
	ListenClientHTTPURLs []url.URL
	// AdvertiseClientURLs are the client URLs announced to the cluster
	// (etcd --advertise-client-urls). Default: ListenClientURLs.
	AdvertiseClientURLs []url.URL
	// ListenPeerURLs are the URLs the peer service listens on (etcd --listen-peer-urls).
	ListenPeerURLs []url.URL
	// InitialAdvertisePeerURLs are this member's peer URLs as announced in the
	// cluster (etcd --initial-advertise-peer-urls). Default: ListenPeerURLs.
	InitialAdvertisePeerURLs []url.URL

	// InitialCluster is "name=peerURL,name=peerURL,..." (etcd --initial-cluster).
	// Default: "<Name>=<first InitialAdvertisePeerURL>".
	InitialCluster string
	// InitialClusterState is "new" or "existing" (etcd --initial-cluster-state).
	InitialClusterState string
	// InitialClusterToken seeds the cluster and member IDs (etcd --initial-cluster-token).
	InitialClusterToken string
	// Discovery finds the initial cluster instead of InitialCluster (etcd
	// --discovery, --discovery-token, --discovery-srv, ...): see discovery.go.
	Discovery DiscoveryConfig

	// SnapshotCount is the number of applied Raft entries between Raft log
	// compactions (etcd --snapshot-count).
	SnapshotCount uint64
	// LiveCacheBytes bounds the cache of live records' metadata that
	// spares puts a storage read (--live-cache-bytes; 0: 16 MiB,
	// negative: off).
	LiveCacheBytes int64
	// SnapshotCatchUpEntries is how many applied entries a log compaction
	// keeps for slow followers (etcd --snapshot-catchup-entries); a
	// follower further behind gets a snapshot. 0 means 5000.
	SnapshotCatchUpEntries uint64
	// MaxRequestBytes is the largest client request accepted, in bytes
	// (etcd --max-request-bytes). Larger ones fail with ErrRequestTooLarge.
	MaxRequestBytes uint
	// MaxTxnOps is the most operations one Txn may hold (etcd --max-txn-ops).
	MaxTxnOps uint
	// QuotaBackendBytes is the storage size, in bytes, above which writes
	// fail with ErrNoSpace (etcd --quota-backend-bytes). 0 means 2 GiB.
	QuotaBackendBytes int64
	// DiskReserveBytes is the free space, in bytes, a member keeps on its
	// data dir's file system (Cairn's own; etcd exits when the disk is
	// full): below it writes fail with etcd's "database space exceeded" and
	// the NOSPACE alarm is raised, while reads and deletes go on. 0 means
	// what storage needs to go on writing: about 3.2 memtables plus 16 MiB
	// for Pebble, and two Raft WAL segments (about 45 MiB with the
	// defaults); negative turns the check off.
	DiskReserveBytes int64

	// HeartbeatMs is the Raft heartbeat interval in milliseconds (etcd --heartbeat-interval).
	HeartbeatMs uint
	// ElectionMs is the Raft election timeout in milliseconds (etcd --election-timeout).
	ElectionMs uint

	// WatchProgressNotifyInterval is how often idle watchers that asked for
	// progress_notify get a progress response (etcd
	// --watch-progress-notify-interval). Default 10 minutes; at least 100 ms.
	WatchProgressNotifyInterval time.Duration

	// AutoCompactionMode says how AutoCompactionRetention reads (etcd
	// --auto-compaction-mode): "periodic" (the default) or "revision".
	AutoCompactionMode string
	// AutoCompactionRetention turns on automatic compaction of the key
	// history (etcd --auto-compaction-retention). Periodic mode: the history
	// to keep, as a duration ("30m", "1h") or a whole number of hours ("1");
	// the leader compacts to the revision of that long ago, every tenth of
	// it (at most hourly). Revision mode: how many revisions to keep,
	// compacted every 5 minutes. "" or "0": off (the default).
	AutoCompactionRetention string

	// EnablePprof serves Go runtime profiles under /debug/pprof/ on the
	// client port (etcd --enable-pprof).
	EnablePprof bool
	// EnableV2 serves the v2 keys API (/v2/keys, /v2/members,
	// /v2/machines) on the client port, emulated on the v3 store, as etcd
	// 3.5 --enable-v2 (off by default there too); see docs/v2.md.
	EnableV2 bool
	// Metrics is the detail of the Prometheus metrics served at /metrics
	// (etcd --metrics): "basic", or "extensive" to add the
	// grpc_server_handling_seconds histogram. Default "basic".
	Metrics string
	// ListenMetricsURLs are extra http(s):// or unix(s):// URLs that serve only
	// /metrics and the health endpoints (/health, /livez, /readyz), as
	// etcd --listen-metrics-urls; the client URLs serve them too.
	ListenMetricsURLs []url.URL

	// FeatureGates are etcd 3.7's server feature gates (etcd
	// --feature-gates) by name, as server.FeatureGates lists them; a gate
	// absent takes etcd's default. Cairn acts on FastLeaseKeepAlive,
	// PriorityRequest, InitialCorruptCheck and CompactHashCheck (and
	// AllAlpha, AllBeta); it accepts the others.
	FeatureGates map[string]bool
	// CorruptCheckTime is how often the leader compares its HashKV with the
	// other members' (etcd --corrupt-check-time); 0, the default, never.
	// With FeatureGates InitialCorruptCheck a restarting member compares
	// before it serves; with CompactHashCheck the leader compares the
	// hashes of compactions every CompactHashCheckTime (etcd
	// --compact-hash-check-time, default 1 minute). See server/corrupt.go.
	CorruptCheckTime     time.Duration
	CompactHashCheckTime time.Duration
	// TLS of the client, peer and metrics listeners and of connections to
	// peers: see tls.go.
	TLSConfig

	// MaxConcurrentStreams is the most concurrent gRPC streams per client
	// connection (etcd --max-concurrent-streams). 0 means no limit.
	MaxConcurrentStreams uint32
	// DisableGRPCGateway stops serving etcd's gRPC-JSON gateway (/v3/...)
	// on the client HTTP endpoints (etcd --enable-grpc-gateway=false); those
	// paths then answer 404, as etcd's.
	DisableGRPCGateway bool
	// GRPCKeepAliveMinTime is the shortest interval at which a client may
	// ping the server; a client that pings more often is disconnected
	// (etcd --grpc-keepalive-min-time). 0 means 5 s.
	GRPCKeepAliveMinTime time.Duration
	// GRPCKeepAliveInterval is how long a connection may be idle before
	// the server pings it (etcd --grpc-keepalive-interval); 0 means 2 h.
	GRPCKeepAliveInterval time.Duration
	// GRPCKeepAliveTimeout is how long the server waits for a ping's
	// answer before it closes the connection (etcd
	// --grpc-keepalive-timeout); 0 means 20 s.
	GRPCKeepAliveTimeout time.Duration

	// WALDir is a separate directory for the Raft write-ahead log (etcd
	// --wal-dir), such as one on its own device. Default: wal/ in Dir.
	WALDir string
	// MaxWALs is how many write-ahead log segment files to keep once the
	// log no longer needs them (etcd --max-wals); 0 means the default, 5;
	// negative keeps every one (etcd's --max-wals=0).
	MaxWALs int

	// AuthToken is etcd's --auth-token: "simple" (the default, also when
	// empty) or "jwt,sign-method=...,priv-key=...,pub-key=...,ttl=..."
	// (see package pkg/authtoken). A bad spec stops Start.
	AuthToken string
	// AuthTokenTTL is how long a simple token lives unused
	// (--auth-token-ttl; 0: 300 s).
	AuthTokenTTL time.Duration
	// BcryptCost is the bcrypt cost of the password hashes this member
	// makes (--bcrypt-cost; 0 or a value outside 4..31: 10, as etcd).
	BcryptCost int

	// UnsafeNoFsync disables fsync of the Raft log (etcd --unsafe-no-fsync).
	// Acknowledged writes may be lost on a crash. For tests only.
	UnsafeNoFsync bool

	// LogLevel is one of debug, info, warn, error (etcd --log-level).
	LogLevel string
	// Logger, if set, is used instead of one built from LogLevel.
	Logger *slog.Logger

	// IgnoredFlags lists etcd flags that were given but that Cairn does not
	// implement yet; Start logs each once.
	IgnoredFlags []string
}

// DefaultMaxWALs is etcd's --max-wals default.
const DefaultMaxWALs = 5

// maxWALs is MaxWALs as the server takes it: 0 keeps every file.
func (c *Config) maxWALs() int {
	switch {
	case c.MaxWALs == 0:
		return DefaultMaxWALs
	case c.MaxWALs < 0:
		return 0
	}
	return c.MaxWALs
}

// EnsureDefaults fills every zero field with its default.
func (c *Config) EnsureDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Dir == "" {
		c.Dir = c.Name + ".cairn"
	}
	if len(c.ListenClientURLs) == 0 {
		c.ListenClientURLs = []url.URL{mustURL(DefaultListenClientURL)}
	}
	if len(c.AdvertiseClientURLs) == 0 {
		c.AdvertiseClientURLs = c.ListenClientURLs
	}
	if len(c.ListenPeerURLs) == 0 {
		c.ListenPeerURLs = []url.URL{mustURL(DefaultListenPeerURL)}
	}
	if len(c.InitialAdvertisePeerURLs) == 0 {
		c.InitialAdvertisePeerURLs = c.ListenPeerURLs
	}
	if c.InitialCluster == "" && !c.Discovery.enabled() {
		parts := make([]string, len(c.InitialAdvertisePeerURLs))
		for i, u := range c.InitialAdvertisePeerURLs {
			parts[i] = c.Name + "=" + u.String()
		}
		c.InitialCluster = strings.Join(parts, ",")
	}
	if c.InitialClusterState == "" {
		c.InitialClusterState = ClusterStateNew
	}
	if c.InitialClusterToken == "" {
		c.InitialClusterToken = DefaultInitialClusterToken
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = DefaultSnapshotCount
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.AuthToken == "" {
		c.AuthToken = "simple"
	}
	if c.MaxTxnOps == 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.QuotaBackendBytes <= 0 {
		c.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	if c.HeartbeatMs == 0 {
		c.HeartbeatMs = DefaultHeartbeatMs
	}
	if c.ElectionMs == 0 {
		c.ElectionMs = DefaultElectionMs
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.WatchProgressNotifyInterval == 0 {
		c.WatchProgressNotifyInterval = 10 * time.Minute
	}
	if c.CompactHashCheckTime == 0 {
		c.CompactHashCheckTime = time.Minute
	}
	if c.Metrics == "" {
		c.Metrics = MetricsBasic
	}
	if c.AutoCompactionMode == "" {
		c.AutoCompactionMode = compactor.ModePeriodic
	}
	if c.SelfSignedCertValidity == 0 {
		c.SelfSignedCertValidity = 1
	}
	if c.GRPCKeepAliveMinTime == 0 {
		c.GRPCKeepAliveMinTime = 5 * time.Second
	}
	if c.GRPCKeepAliveInterval == 0 {
		c.GRPCKeepAliveInterval = 2 * time.Hour
	}
	if c.GRPCKeepAliveTimeout == 0 {
		c.GRPCKeepAliveTimeout = 20 * time.Second
	}
}

// Validate reports the first invalid field, naming it as etcd's flag.
func (c *Config) Validate() error {
	if c.InitialClusterState != ClusterStateNew && c.InitialClusterState != ClusterStateExisting {
		return fmt.Errorf("--initial-cluster-state: invalid value %q (want %q or %q)", c.InitialClusterState, ClusterStateNew, ClusterStateExisting)
	}
	if c.ElectionMs < 5*c.HeartbeatMs {
		return fmt.Errorf("--election-timeout[%vms] should be at least as 5 times as --heartbeat-interval[%vms]", c.ElectionMs, c.HeartbeatMs)
	}
	if c.CompactHashCheckTime < 0 { // as etcd's message
		return fmt.Errorf("--compact-hash-check-time must be >0 (set to %v)", c.CompactHashCheckTime)
	}
	if c.CorruptCheckTime < 0 {
		return fmt.Errorf("--corrupt-check-time must not be negative (set to %v)", c.CorruptCheckTime)
	}
	if c.WatchProgressNotifyInterval < 100*time.Millisecond {
		return fmt.Errorf("--watch-progress-notify-interval: %v is below the minimum of 100ms", c.WatchProgressNotifyInterval)
	}
	if c.ElectionMs > 50000 {
		return fmt.Errorf("--election-timeout[%vms] is too long, and should be set less than 50 seconds", c.ElectionMs)
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	switch c.AutoCompactionMode {
	case compactor.ModePeriodic, compactor.ModeRevision:
	default:
		return fmt.Errorf("--auto-compaction-mode: unknown auto-compaction-mode %q (want %q or %q)", c.AutoCompactionMode, compactor.ModePeriodic, compactor.ModeRevision)
	}
	if _, _, err := compactor.ParseRetention(c.AutoCompactionMode, c.AutoCompactionRetention); err != nil {
		return err
	}
	if c.Metrics != MetricsBasic && c.Metrics != MetricsExtensive {
		return fmt.Errorf("--metrics: invalid value %q (want %q or %q)", c.Metrics, MetricsBasic, MetricsExtensive)
	}
	if err := c.validateDiscovery(); err != nil {
		return err
	}
	if _, err := ParseInitialCluster(c.InitialCluster); err != nil && !c.Discovery.enabled() {
		return fmt.Errorf("--initial-cluster: %w", err)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error", "panic", "fatal":
	default:
		return fmt.Errorf("--log-level: unknown level %q (want debug, info, warn, error, panic or fatal)", c.LogLevel)
	}
	return nil
}

// ElectionTicks and HeartbeatTick express the timeouts in ticks of
// HeartbeatMs, the unit go.etcd.io/raft counts in.
func (c *Config) tickInterval() time.Duration { return time.Duration(c.HeartbeatMs) * time.Millisecond }
func (c *Config) electionTicks() int          { return int(c.ElectionMs / c.HeartbeatMs) }

// ParseInitialCluster parses "name=url,name=url" into name -> peer URLs.
func ParseInitialCluster(s string) (map[string][]url.URL, error) {
	out := map[string][]url.URL{}
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	for _, part := range strings.Split(s, ",") {
		name, raw, ok := strings.Cut(part, "=")
		if !ok || name == "" || raw == "" {
			return nil, fmt.Errorf("%q is not of the form name=peerURL", part)
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%q: invalid peer URL %q", name, raw)
		}
		out[name] = append(out[name], *u)
	}
	return out, nil
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}
