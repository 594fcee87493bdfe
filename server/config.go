package server

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairn-kv/cairn/pkg/clock"
)

// Config is what a Member needs; embed builds it from embed.Config.
type Config struct {
	// Name is this member's name; Dir its data directory.
	Name string
	Dir  string
	// PeerURLs and ClientURLs are this member's advertised URLs.
	PeerURLs   []string
	ClientURLs []string
	// InitialCluster maps member names to peer URLs (etcd --initial-cluster);
	// InitialClusterToken seeds the IDs.
	InitialCluster      map[string][]string
	InitialClusterToken string
	// InitialClusterState is "new" (bootstrap with InitialCluster) or
	// "existing" (join a running cluster).
	InitialClusterState string
	// NoBootstrap refuses to bootstrap or join: the data dir must hold a
	// member already (embed sets it when discovery is skipped because the
	// dir has data, so a dir without a stored membership is an error, not
	// a one-member cluster).
	NoBootstrap bool
	// SnapshotCount is the number of applied entries between Raft log compactions.
	SnapshotCount uint64
	// LiveCacheBytes bounds the store's cache of live records' metadata
	// (mvcc.Options.LiveCacheBytes: 0 is the default, negative off).
	LiveCacheBytes int64
	// CatchUpEntries is how many applied entries a log compaction keeps
	// (etcd --snapshot-catchup-entries; 0: 5000).
	CatchUpEntries uint64
	// MaxRequestBytes is the largest request accepted, in bytes.
	MaxRequestBytes uint
	// QuotaBackendBytes is the storage size, in bytes, above which writes
	// fail with ErrNoSpace.
	QuotaBackendBytes int64
	// DiskReserveBytes is the free space, in bytes, the member keeps on its
	// data dir's file system: below it, writes fail with ErrNoSpace and the
	// NOSPACE alarm is raised, before the disk is full. 0 means what the
	// storage engine needs to go on writing (storage.Engine.WriteReserve);
	// negative turns the check off.
	DiskReserveBytes int64
	// AutoCompactionMode is compactor.ModePeriodic or ModeRevision; with
	// AutoCompactionPeriod (periodic) or AutoCompactionRevisions (revision)
	// above zero the leader compacts the history on etcd's schedule
	// (--auto-compaction-*). Both zero: no automatic compaction.
	AutoCompactionMode      string
	AutoCompactionPeriod    time.Duration
	AutoCompactionRevisions int64
	// TickInterval is the Raft heartbeat; ElectionTicks the election
	// timeout in heartbeats.
	TickInterval  time.Duration
	ElectionTicks int
	// NoSync skips fsync of the Raft log: unsafe, for tests.
	NoSync bool
	// FeatureGates are etcd's --feature-gates settings by gate name (see
	// FeatureGates); a gate absent takes etcd 3.7.4's default.
	FeatureGates map[string]bool
	// CorruptCheckTime is how often the leader compares the members'
	// HashKV (etcd --corrupt-check-time); 0: never. CompactHashCheckTime
	// is how often it compares the hashes of compactions, with the
	// CompactHashCheck gate (0: 1 minute). See corrupt.go.
	CorruptCheckTime     time.Duration
	CompactHashCheckTime time.Duration
	// WALDir is the Raft write-ahead log's directory ("": wal/ in Dir);
	// MaxWALs how many released segment files it keeps (0: all).
	WALDir  string
	MaxWALs int
	// PeerTLS, if set, yields the TLS configuration of each new
	// connection to an https peer URL (etcd --peer-cert-file, ...).
	PeerTLS func() *tls.Config
	// AuthToken is etcd's --auth-token spec ("simple", "jwt,...", or ""
	// for none; see package authtoken); AuthTokenTTL the simple tokens'
	// lifetime (--auth-token-ttl; 0: 300 s).
	AuthToken    string
	AuthTokenTTL time.Duration
	// BcryptCost is the cost of the password hashes this member makes
	// (--bcrypt-cost; 0: bcrypt.DefaultCost, 10).
	BcryptCost int
	Logger     *slog.Logger
	// Clock is the time lease expiry, checkpoints, automatic compaction
	// and the Raft ticker run on; nil: the real one (tests pass a
	// clock.Fake).
	Clock clock.Clock

	// wrapCommit, if set (by tests), runs around each apply batch's commit.
	wrapCommit func(commit func() error) error
}

// bcryptCost is BcryptCost, with etcd's default for a value out of
// bcrypt's range.
func (c *Config) bcryptCost() int {
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		return bcrypt.DefaultCost
	}
	return c.BcryptCost
}

// Validate checks the fields New relies on.
func (c *Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("server: Dir is required")
	case len(c.PeerURLs) == 0:
		return errors.New("server: PeerURLs is required")
	case c.TickInterval <= 0 || c.ElectionTicks <= 0:
		return errors.New("server: TickInterval and ElectionTicks must be positive")
	}
	if err := validateFeatureGates(c.FeatureGates); err != nil {
		return err
	}
	if _, ok := c.InitialCluster[c.Name]; !ok {
		return errors.New("server: --initial-cluster has no member named " + c.Name)
	}
	return nil
}

// reqTimeout is how long a proposal may wait for its result, as etcd's
// ReqTimeout: 5 s plus two election timeouts.
func (c *Config) reqTimeout() time.Duration {
	return 5*time.Second + 2*time.Duration(c.ElectionTicks)*c.TickInterval
}
