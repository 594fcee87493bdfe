package main

import (
	"strings"
	"time"

	"github.com/cairn-kv/cairn/embed"
)

// spec describes one etcd flag (3.7's, or an experimental-* flag of 3.6):
// how its value is checked, where it goes in embed.Config, and how a config
// file spells it.
type spec struct {
	name string
	kind kind
	def  string // the default, as --help shows it
	help string
	// choices lists the accepted values of kindChoice and kindChoices, and
	// the literal exceptions (such as "*") of kindURLs.
	choices []string
	yaml    yamlForm
	// newName is the 3.6 name of a 3.5 experimental-* flag, which etcd 3.7
	// removed. Setting both is an error, and setting the old one draws a
	// deprecation warning.
	newName string
	// gate is the feature gate that replaces an experimental-* switch.
	gate string
	// deprecated, if set, is printed as a warning when the flag is set.
	deprecated string
	// set stores the value in the Config. Nil means Cairn accepts the flag
	// and ignores it, listing it in Config.IgnoredFlags.
	set func(*embed.Config, parsed)
}

// yamlForm says how a config file (--config-file) spells a flag.
type yamlForm int

const (
	yamlScalar yamlForm = iota // key is the flag's name; value is a scalar of the flag's kind
	yamlNone                   // no top-level key: not settable from a file, or nested under another key
	yamlList                   // key is the flag's name; value is a list of strings
)

// group is a section of --help.
type group struct {
	title  string
	hidden bool // listed in docs/flags.md but not in --help
	specs  []spec
}

// flagGroups is every flag of `etcd --help` in etcd 3.7, the experimental-*
// flags of etcd 3.6 (which 3.7 removed), and the removed flags etcd still
// accepts silently.
var flagGroups = []group{
	{title: "Member", specs: []spec{
		{name: "name", def: "default", help: "Human-readable name of this member.",
			set: func(c *embed.Config, v parsed) { c.Name = v.text }},
		{name: "data-dir", def: "${name}.cairn", help: "Directory that holds this member's data.",
			set: func(c *embed.Config, v parsed) { c.Dir = v.text }},
		{name: "wal-dir", help: "Separate directory for the write-ahead log.",
			set: func(c *embed.Config, v parsed) { c.WALDir = v.text }},
		{name: "snapshot-count", kind: kindUint64, def: "10000", help: "Applied Raft entries between compactions of the Raft log.",
			set: func(c *embed.Config, v parsed) { c.SnapshotCount = v.u }},
		{name: "live-cache-bytes", kind: kindInt64, def: "0", help: "Bytes of memory for the metadata of recently written keys, which spares a put its storage read (0: 16 MiB; negative: off).",
			set: func(c *embed.Config, v parsed) { c.LiveCacheBytes = v.i }},
		{name: "heartbeat-interval", kind: kindUint, def: "100", help: "Raft heartbeat interval, in milliseconds.",
			set: func(c *embed.Config, v parsed) { c.HeartbeatMs = uint(v.u) }},
		{name: "election-timeout", kind: kindUint, def: "1000", help: "Raft election timeout, in milliseconds; at least 5 heartbeat intervals.",
			set: func(c *embed.Config, v parsed) { c.ElectionMs = uint(v.u) }},
		{name: "initial-election-tick-advance", kind: kindBool, def: "true", help: "Skip most of the first election timeout after boot."},
		{name: "listen-peer-urls", kind: kindURLs, def: embed.DefaultListenPeerURL, help: "URLs to listen on for peer traffic.",
			set: func(c *embed.Config, v parsed) { c.ListenPeerURLs = v.urls }},
		{name: "listen-client-urls", kind: kindURLs, def: embed.DefaultListenClientURL, help: "URLs to listen on for client gRPC (and HTTP) traffic.",
			set: func(c *embed.Config, v parsed) { c.ListenClientURLs = v.urls }},
		{name: "listen-client-http-urls", kind: kindURLs, help: "URLs to listen on for HTTP-only client traffic; --listen-client-urls then serve gRPC only.",
			set: func(c *embed.Config, v parsed) { c.ListenClientHTTPURLs = v.urls }},
		{name: "max-snapshots", kind: kindUint, def: "5", help: "Snapshot files to keep (0: unlimited).",
			deprecated: "--max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8."},
		{name: "max-wals", kind: kindUint, def: "5", help: "Write-ahead log files to keep (0: unlimited).",
			set: func(c *embed.Config, v parsed) {
				c.MaxWALs = int(v.u)
				if v.u == 0 {
					c.MaxWALs = -1
				}
			}},
		{name: "memory-mlock", kind: kindBool, def: "false", help: "Lock the database pages in RAM."},
		{name: "quota-backend-bytes", kind: kindInt64, def: "0", help: "Storage size, in bytes, above which writes fail with \"database space exceeded\" (0: 2 GiB).",
			set: func(c *embed.Config, v parsed) { c.QuotaBackendBytes = v.i }},
		{name: "backend-bbolt-freelist-type", def: "map", help: "bbolt freelist type: array or map."},
		{name: "backend-batch-interval", kind: kindDuration, def: "0s", help: "Longest time before the backend commits a batch."},
		{name: "backend-batch-limit", kind: kindInt, def: "0", help: "Most operations before the backend commits a batch."},
		{name: "max-txn-ops", kind: kindUint, def: "128", help: "Most operations one transaction may hold.",
			set: func(c *embed.Config, v parsed) { c.MaxTxnOps = uint(v.u) }},
		{name: "max-request-bytes", kind: kindUint, def: "1572864", help: "Largest client request accepted, in bytes.",
			set: func(c *embed.Config, v parsed) { c.MaxRequestBytes = uint(v.u) }},
		{name: "max-concurrent-streams", kind: kindUint32, def: "4294967295", help: "Most concurrent gRPC streams per client connection.",
			set: func(c *embed.Config, v parsed) { c.MaxConcurrentStreams = uint32(v.u) }},
		{name: "grpc-keepalive-min-time", kind: kindDuration, def: "5s", help: "Shortest interval at which a client may ping the server.",
			set: func(c *embed.Config, v parsed) { c.GRPCKeepAliveMinTime = keepaliveMinTime(v.d) }},
		{name: "grpc-keepalive-interval", kind: kindDuration, def: "2h0m0s", help: "Interval of server-to-client pings (0: gRPC's default, 2h).",
			set: func(c *embed.Config, v parsed) { c.GRPCKeepAliveInterval = v.d }},
		{name: "grpc-keepalive-timeout", kind: kindDuration, def: "20s", help: "Wait for a ping reply before closing the connection (0: gRPC's default, 20s).",
			set: func(c *embed.Config, v parsed) { c.GRPCKeepAliveTimeout = v.d }},
		{name: "socket-reuse-port", kind: kindBool, def: "false", yaml: yamlNone, help: "Set SO_REUSEPORT on listeners."},
		{name: "socket-reuse-address", kind: kindBool, def: "false", yaml: yamlNone, help: "Set SO_REUSEADDR on listeners."},
		{name: "enable-grpc-gateway", kind: kindBool, def: "true", help: "Serve the JSON/HTTP gateway to the gRPC API.",
			set: func(c *embed.Config, v parsed) { c.DisableGRPCGateway = !v.b }},
		{name: "raft-read-timeout", kind: kindDuration, def: "5s", yaml: yamlNone, help: "Read timeout of peer connections."},
		{name: "raft-write-timeout", kind: kindDuration, def: "5s", yaml: yamlNone, help: "Write timeout of peer connections."},
		{name: "enable-v2", kind: kindBool, def: "false", help: "Serve the v2 keys API (/v2/keys), emulated on the v3 store, as etcd 3.5.",
			set: func(c *embed.Config, v parsed) { c.EnableV2 = v.b }},
		{name: "feature-gates", kind: kindGates, help: "Server feature gates, as Name=true|false,...: " + gatesHelp(),
			set: setFeatureGates},
	}},
	{title: "Clustering", specs: []spec{
		{name: "initial-advertise-peer-urls", kind: kindURLs, def: embed.DefaultListenPeerURL, help: "This member's peer URLs, as announced to the cluster.",
			set: func(c *embed.Config, v parsed) { c.InitialAdvertisePeerURLs = v.urls }},
		{name: "initial-cluster", def: "default=" + embed.DefaultListenPeerURL, help: "Bootstrap members, as name=peerURL,name=peerURL,...",
			set: func(c *embed.Config, v parsed) { c.InitialCluster = v.text }},
		{name: "initial-cluster-state", kind: kindChoice, choices: []string{embed.ClusterStateNew, embed.ClusterStateExisting}, def: "new",
			help: "\"new\" to bootstrap a cluster, \"existing\" to join one; ignored once the member has data.",
			set:  func(c *embed.Config, v parsed) { c.InitialClusterState = v.text }},
		{name: "initial-cluster-token", def: embed.DefaultInitialClusterToken, help: "Cluster token that seeds cluster and member IDs at bootstrap.",
			set: func(c *embed.Config, v parsed) { c.InitialClusterToken = v.text }},
		{name: "advertise-client-urls", kind: kindURLs, def: embed.DefaultListenClientURL, help: "This member's client URLs, as announced to clients; required with --listen-client-urls.",
			set: func(c *embed.Config, v parsed) { c.AdvertiseClientURLs = v.urls }},
		{name: "discovery", help: "v2 discovery URL to bootstrap the cluster.",
			set: func(c *embed.Config, v parsed) { c.Discovery.URL = v.text }},
		{name: "discovery-token", yaml: yamlNone, help: "v3 discovery: token of the cluster to bootstrap.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.Token = v.text }},
		{name: "discovery-endpoints", kind: kindList, yaml: yamlNone, help: "v3 discovery: gRPC endpoints of the discovery service.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.Endpoints = v.list }},
		{name: "discovery-dial-timeout", kind: kindDuration, def: "2s", yaml: yamlNone, help: "v3 discovery: dial timeout.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.DialTimeout = v.d }},
		{name: "discovery-request-timeout", kind: kindDuration, def: "5s", yaml: yamlNone, help: "v3 discovery: request timeout.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.RequestTimeout = v.d }},
		{name: "discovery-keepalive-time", kind: kindDuration, def: "2s", yaml: yamlNone, help: "v3 discovery: keepalive time.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.KeepAliveTime = v.d }},
		{name: "discovery-keepalive-timeout", kind: kindDuration, def: "6s", yaml: yamlNone, help: "v3 discovery: keepalive timeout.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.KeepAliveTimeout = v.d }},
		{name: "discovery-insecure-transport", kind: kindBool, def: "true", yaml: yamlNone, help: "v3 discovery: connect without TLS.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.SecureTransport = !v.b }},
		{name: "discovery-insecure-skip-tls-verify", kind: kindBool, def: "false", yaml: yamlNone, help: "v3 discovery: skip server certificate verification.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.InsecureSkipVerify = v.b }},
		{name: "discovery-cert", yaml: yamlNone, help: "v3 discovery: client TLS certificate file.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.CertFile = v.text }},
		{name: "discovery-key", yaml: yamlNone, help: "v3 discovery: client TLS key file.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.KeyFile = v.text }},
		{name: "discovery-cacert", yaml: yamlNone, help: "v3 discovery: CA bundle to verify the service.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.CACertFile = v.text }},
		{name: "discovery-user", yaml: yamlNone, help: "v3 discovery: username[:password].",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.Username = v.text }},
		{name: "discovery-password", yaml: yamlNone, help: "v3 discovery: password.",
			set: func(c *embed.Config, v parsed) { c.Discovery.V3.Password = v.text }},
		{name: "discovery-fallback", kind: kindChoice, choices: []string{"exit", "proxy"}, def: "exit", yaml: yamlNone, help: "What to do when discovery fails; only \"exit\" is supported.",
			set: handledByParse},
		{name: "discovery-proxy", help: "HTTP proxy for the v2 discovery service.",
			set: func(c *embed.Config, v parsed) { c.Discovery.Proxy = v.text }},
		{name: "discovery-srv", help: "DNS domain whose SRV records list the bootstrap members.",
			set: func(c *embed.Config, v parsed) { c.Discovery.SRV = v.text }},
		{name: "discovery-srv-name", help: "Suffix of the DNS SRV name queried at bootstrap.",
			set: func(c *embed.Config, v parsed) { c.Discovery.SRVName = v.text }},
		{name: "strict-reconfig-check", kind: kindBool, def: "true", help: "Reject membership changes that would lose quorum."},
		{name: "pre-vote", kind: kindBool, def: "true", help: "Use Raft pre-vote, so a rejoining partitioned member does not disrupt the leader."},
		{name: "auto-compaction-retention", def: "0", help: "History to keep when compacting automatically (0: off): periodic mode, a duration (\"30m\") or whole hours (\"1\"); revision mode, a revision count.",
			set: func(c *embed.Config, v parsed) { c.AutoCompactionRetention = v.text }},
		{name: "auto-compaction-mode", def: "periodic", help: "How to read --auto-compaction-retention: periodic (a duration) or revision (a count).",
			set: func(c *embed.Config, v parsed) { c.AutoCompactionMode = v.text }},
		{name: "v2-deprecation", kind: kindChoices, def: "write-only",
			choices:    []string{"write-only", "write-only-skip-check", "write-only-drop-data", "gone"},
			help:       "Stage of the v2 store's removal; etcd 3.6 enforces the default.",
			deprecated: "--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input."},
	}},
	{title: "Security", specs: []spec{
		{name: "cert-file", yaml: yamlNone, help: "Client-facing TLS certificate file.",
			set: func(c *embed.Config, v parsed) { c.ClientTLS.CertFile = v.text }},
		{name: "key-file", yaml: yamlNone, help: "Client-facing TLS key file.",
			set: func(c *embed.Config, v parsed) { c.ClientTLS.KeyFile = v.text }},
		{name: "client-cert-auth", kind: kindBool, def: "false", yaml: yamlNone, help: "Require client certificates.",
			set: func(c *embed.Config, v parsed) { c.ClientTLS.ClientCertAuth = v.b }},
		{name: "client-cert-file", yaml: yamlNone, help: "Certificate this member presents as a client, if not --cert-file.",
			set: func(c *embed.Config, v parsed) { c.ClientTLS.ClientCertFile = v.text }},
		{name: "client-key-file", yaml: yamlNone, help: "Key this member uses as a client, if not --key-file.",
			set: func(c *embed.Config, v parsed) { c.ClientTLS.ClientKeyFile = v.text }},
		{name: "client-crl-file", yaml: yamlNone, help: "Client certificate revocation list (PEM or DER); re-read when it changes.",
			set: func(c *embed.Config, v parsed) { c.ClientTLS.CRLFile = v.text }},
		{name: "client-cert-allowed-hostname", kind: kindList, yaml: yamlNone, help: "SAN hostnames a client certificate must carry.",
			set: func(c *embed.Config, v parsed) { c.ClientTLS.AllowedHostnames = nonEmpty(v.list) }},
		{name: "trusted-ca-file", yaml: yamlNone, help: "CA bundle that verifies client certificates.",
			set: func(c *embed.Config, v parsed) { c.ClientTLS.TrustedCAFile = v.text }},
		{name: "auto-tls", kind: kindBool, def: "false", yaml: yamlNone, help: "Serve clients with a generated certificate.",
			set: func(c *embed.Config, v parsed) { c.ClientAutoTLS = v.b }},
		{name: "peer-cert-file", yaml: yamlNone, help: "Peer TLS certificate file.",
			set: func(c *embed.Config, v parsed) { c.PeerTLS.CertFile = v.text }},
		{name: "peer-key-file", yaml: yamlNone, help: "Peer TLS key file.",
			set: func(c *embed.Config, v parsed) { c.PeerTLS.KeyFile = v.text }},
		{name: "peer-client-cert-auth", kind: kindBool, def: "false", yaml: yamlNone, help: "Require peer client certificates.",
			set: func(c *embed.Config, v parsed) { c.PeerTLS.ClientCertAuth = v.b }},
		{name: "peer-client-cert-file", yaml: yamlNone, help: "Certificate presented to peers as a client, if not --peer-cert-file.",
			set: func(c *embed.Config, v parsed) { c.PeerTLS.ClientCertFile = v.text }},
		{name: "peer-client-key-file", yaml: yamlNone, help: "Key used with peers as a client, if not --peer-key-file.",
			set: func(c *embed.Config, v parsed) { c.PeerTLS.ClientKeyFile = v.text }},
		{name: "peer-trusted-ca-file", yaml: yamlNone, help: "CA bundle that verifies peer certificates.",
			set: func(c *embed.Config, v parsed) { c.PeerTLS.TrustedCAFile = v.text }},
		{name: "peer-cert-allowed-cn", kind: kindList, yaml: yamlNone, help: "CNs a peer certificate may carry.",
			set: func(c *embed.Config, v parsed) { c.PeerTLS.AllowedCNs = nonEmpty(v.list) }},
		{name: "peer-cert-allowed-hostname", kind: kindList, yaml: yamlNone, help: "SAN hostnames a peer certificate may carry.",
			set: func(c *embed.Config, v parsed) { c.PeerTLS.AllowedHostnames = nonEmpty(v.list) }},
		{name: "peer-auto-tls", kind: kindBool, def: "false", yaml: yamlNone, help: "Talk to peers with a generated certificate.",
			set: func(c *embed.Config, v parsed) { c.PeerAutoTLS = v.b }},
		{name: "self-signed-cert-validity", kind: kindUint, def: "1", help: "Validity of generated certificates, in years.",
			set: func(c *embed.Config, v parsed) { c.SelfSignedCertValidity = uint(v.u) }},
		{name: "peer-crl-file", yaml: yamlNone, help: "Peer certificate revocation list (PEM or DER); re-read when it changes.",
			set: func(c *embed.Config, v parsed) { c.PeerTLS.CRLFile = v.text }},
		{name: "peer-skip-client-san-verification", kind: kindBool, def: "false", yaml: yamlNone, help: "Do not check the SAN of peer client certificates.",
			set: func(c *embed.Config, v parsed) { c.PeerSkipClientSANVerify = v.b }},
		{name: "experimental-peer-skip-client-san-verification", kind: kindBool, def: "false", newName: "peer-skip-client-san-verification",
			help: "Old name of --peer-skip-client-san-verification.",
			set:  func(c *embed.Config, v parsed) { c.PeerSkipClientSANVerify = v.b }},
		{name: "cipher-suites", kind: kindList, yaml: yamlList, help: "TLS cipher suites (empty: Go's choice).",
			set: func(c *embed.Config, v parsed) { c.CipherSuites = nonEmpty(v.list) }},
		{name: "cors", kind: kindURLs, choices: []string{"*"}, def: "*", help: "Origins allowed by CORS (* allows all)."},
		{name: "host-whitelist", kind: kindList, def: "*", help: "Host headers accepted on insecure HTTP (* accepts all)."},
		{name: "tls-min-version", def: "TLS1.2", help: "Lowest TLS version: TLS1.2 or TLS1.3.",
			set: func(c *embed.Config, v parsed) { c.TLSMinVersion = v.text }},
		{name: "tls-max-version", help: "Highest TLS version: TLS1.2 or TLS1.3 (empty: Go's choice).",
			set: func(c *embed.Config, v parsed) { c.TLSMaxVersion = v.text }},
	}},
	{title: "Auth", specs: []spec{
		{name: "auth-token", def: "simple", help: "Auth token type and options: simple, or jwt,sign-method=...,priv-key=...,pub-key=...,ttl=...",
			set: func(c *embed.Config, v parsed) { c.AuthToken = v.text }},
		{name: "bcrypt-cost", kind: kindUint, def: "10", help: "bcrypt cost of password hashes (4 to 31).",
			set: func(c *embed.Config, v parsed) { c.BcryptCost = int(min(v.u, 1<<20)) }},
		{name: "auth-token-ttl", kind: kindUint, def: "300", help: "Lifetime of a simple auth token, in seconds.",
			set: func(c *embed.Config, v parsed) { c.AuthTokenTTL = time.Duration(min(v.u, 1<<32)) * time.Second }},
	}},
	{title: "Profiling and monitoring", specs: []spec{
		{name: "enable-pprof", kind: kindBool, def: "false", help: "Serve runtime profiles under /debug/pprof/.",
			set: func(c *embed.Config, v parsed) { c.EnablePprof = v.b }},
		{name: "metrics", kind: kindChoice, choices: []string{embed.MetricsBasic, embed.MetricsExtensive}, def: "basic",
			help: "Metrics detail: basic, or extensive to add gRPC handling-time histograms.",
			set:  func(c *embed.Config, v parsed) { c.Metrics = v.text }},
		{name: "listen-metrics-urls", kind: kindURLs, help: "Extra URLs serving /metrics, /health, /livez and /readyz.",
			set: func(c *embed.Config, v parsed) { c.ListenMetricsURLs = v.urls }},
	}},
	{title: "Logging", specs: []spec{
		{name: "logger", def: "zap", help: "Logger; only zap."},
		{name: "log-outputs", kind: kindList, def: "default", yaml: yamlList, help: "Log destinations: stdout, stderr, or file paths."},
		{name: "log-level", def: "info", help: "Lowest level logged: debug, info, warn, error, panic or fatal.",
			set: func(c *embed.Config, v parsed) { c.LogLevel = v.text }},
		{name: "log-format", def: "json", help: "Log format: json or console."},
		{name: "enable-log-rotation", kind: kindBool, def: "false", help: "Rotate a single file log output."},
		{name: "log-rotation-config-json", def: `{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}`,
			help: "Log rotation settings, as JSON."},
		{name: "warning-unary-request-duration", kind: kindDuration, def: "300ms", help: "Log a warning for unary requests slower than this."},
	}},
	{title: "Distributed tracing", specs: []spec{
		{name: "enable-distributed-tracing", kind: kindBool, def: "false", help: "Export OpenTelemetry traces."},
		{name: "distributed-tracing-address", def: "localhost:4317", help: "Trace collector address."},
		{name: "distributed-tracing-service-name", def: "etcd", help: "Service name in traces; the same on every member."},
		{name: "distributed-tracing-instance-id", help: "Instance ID in traces; unique per member."},
		{name: "distributed-tracing-sampling-rate", kind: kindInt, def: "0", help: "Spans sampled per million."},
		{name: "experimental-enable-distributed-tracing", kind: kindBool, def: "false", newName: "enable-distributed-tracing",
			help: "Old name of --enable-distributed-tracing."},
		{name: "experimental-distributed-tracing-address", def: "localhost:4317", newName: "distributed-tracing-address",
			help: "Old name of --distributed-tracing-address."},
		{name: "experimental-distributed-tracing-service-name", def: "etcd", newName: "distributed-tracing-service-name",
			help: "Old name of --distributed-tracing-service-name."},
		{name: "experimental-distributed-tracing-instance-id", newName: "distributed-tracing-instance-id",
			help: "Old name of --distributed-tracing-instance-id."},
		{name: "experimental-distributed-tracing-sampling-rate", kind: kindInt, def: "0", newName: "distributed-tracing-sampling-rate",
			help: "Old name of --distributed-tracing-sampling-rate."},
	}},
	{title: "Former experimental features, and etcd 3.6's experimental-* names (removed in etcd 3.7)", specs: []spec{
		{name: "corrupt-check-time", kind: kindDuration, def: "0s", help: "Interval between cluster corruption checks.",
			set: func(c *embed.Config, v parsed) { c.CorruptCheckTime = v.d }},
		{name: "compact-hash-check-time", kind: kindDuration, def: "1m0s", help: "Interval between the leader's checks of followers' compaction hashes.",
			set: func(c *embed.Config, v parsed) { c.CompactHashCheckTime = v.d }},
		{name: "compaction-batch-limit", kind: kindInt, def: "1000", help: "Most revisions deleted per compaction batch."},
		{name: "compaction-sleep-interval", kind: kindDuration, def: "10ms", help: "Pause between compaction batches."},
		{name: "watch-progress-notify-interval", kind: kindDuration, def: "10m0s", help: "Interval of progress notifications to watchers.",
			set: func(c *embed.Config, v parsed) { c.WatchProgressNotifyInterval = v.d }},
		{name: "warning-apply-duration", kind: kindDuration, def: "100ms", help: "Log a warning for applies slower than this."},
		{name: "downgrade-check-time", kind: kindDuration, def: "5s", help: "Interval between downgrade status checks."},
		{name: "bootstrap-defrag-threshold-megabytes", kind: kindUint, def: "0", help: "Defragment at boot if that frees at least this many MB (0: never)."},
		{name: "snapshot-catchup-entries", kind: kindUint64, def: "5000", help: "Raft entries kept after a compaction for slow followers; one further behind gets a snapshot.",
			set: func(c *embed.Config, v parsed) { c.SnapshotCatchUpEntries = v.u }},
		{name: "max-learners", kind: kindInt, def: "1", help: "Most learners the cluster may hold."},
		{name: "experimental-initial-corrupt-check", kind: kindBool, def: "false", gate: "InitialCorruptCheck",
			help: "Check for corruption before serving.", set: setGate("InitialCorruptCheck")},
		{name: "experimental-corrupt-check-time", kind: kindDuration, def: "0s", newName: "corrupt-check-time",
			help: "Old name of --corrupt-check-time.", set: func(c *embed.Config, v parsed) { c.CorruptCheckTime = v.d }},
		{name: "experimental-compact-hash-check-enabled", kind: kindBool, def: "false", gate: "CompactHashCheck",
			help: "Have the leader check followers' compaction hashes.", set: setGate("CompactHashCheck")},
		{name: "experimental-compact-hash-check-time", kind: kindDuration, def: "1m0s", newName: "compact-hash-check-time",
			help: "Old name of --compact-hash-check-time.", set: func(c *embed.Config, v parsed) { c.CompactHashCheckTime = v.d }},
		{name: "experimental-enable-lease-checkpoint", kind: kindBool, def: "false", gate: "LeaseCheckpoint",
			help: "Have the leader checkpoint lease TTLs to followers."},
		{name: "experimental-enable-lease-checkpoint-persist", kind: kindBool, def: "false", gate: "LeaseCheckpointPersist",
			help: "Persist lease TTL checkpoints."},
		{name: "experimental-compaction-batch-limit", kind: kindInt, def: "1000", newName: "compaction-batch-limit",
			help: "Old name of --compaction-batch-limit."},
		{name: "experimental-compaction-sleep-interval", kind: kindDuration, def: "10ms", newName: "compaction-sleep-interval",
			help: "Old name of --compaction-sleep-interval."},
		{name: "experimental-watch-progress-notify-interval", kind: kindDuration, def: "10m0s", newName: "watch-progress-notify-interval",
			help: "Old name of --watch-progress-notify-interval.",
			set:  func(c *embed.Config, v parsed) { c.WatchProgressNotifyInterval = v.d }},
		{name: "experimental-warning-apply-duration", kind: kindDuration, def: "100ms", newName: "warning-apply-duration",
			help: "Old name of --warning-apply-duration."},
		{name: "experimental-warning-unary-request-duration", kind: kindDuration, def: "300ms", newName: "warning-unary-request-duration",
			help: "Old name of --warning-unary-request-duration."},
		{name: "experimental-txn-mode-write-with-shared-buffer", kind: kindBool, def: "true", gate: "TxnModeWriteWithSharedBuffer",
			help: "Let write transactions share the read buffer."},
		{name: "experimental-stop-grpc-service-on-defrag", kind: kindBool, def: "false", gate: "StopGRPCServiceOnDefrag",
			help: "Stop serving gRPC during defragmentation."},
		{name: "experimental-bootstrap-defrag-threshold-megabytes", kind: kindUint, def: "0", newName: "bootstrap-defrag-threshold-megabytes",
			help: "Old name of --bootstrap-defrag-threshold-megabytes."},
		{name: "experimental-memory-mlock", kind: kindBool, def: "false", newName: "memory-mlock",
			help: "Old name of --memory-mlock."},
		{name: "experimental-snapshot-catchup-entries", kind: kindUint64, def: "5000", newName: "snapshot-catchup-entries",
			help: "Old name of --snapshot-catchup-entries.",
			set:  func(c *embed.Config, v parsed) { c.SnapshotCatchUpEntries = v.u }},
		{name: "experimental-downgrade-check-time", kind: kindDuration, def: "5s", newName: "downgrade-check-time",
			help: "Old name of --downgrade-check-time."},
	}},
	{title: "Unsafe", specs: []spec{
		{name: "force-new-cluster", kind: kindBool, def: "false", help: "Restart as a one-member cluster, dropping the other members."},
		{name: "unsafe-no-fsync", kind: kindBool, def: "false", help: "Do not fsync the Raft log; a crash may lose acknowledged writes.",
			set: func(c *embed.Config, v parsed) { c.UnsafeNoFsync = v.b }},
	}},
	{title: "Command", specs: []spec{
		{name: "config-file", yaml: yamlNone, help: "YAML configuration file; when given, other flags and ETCD_* variables are ignored.",
			set: handledByParse},
		{name: "version", kind: kindBool, def: "false", yaml: yamlNone, help: "Print the version and exit.",
			set: handledByParse},
	}},
	{title: "Removed flags etcd still accepts and ignores", hidden: true, specs: legacySpecs(
		"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval", "config", "force",
		"max-result-buffer", "max-retry-attempts", "peer-heartbeat-interval", "peer-election-timeout",
		"retry-interval", "snapshot", "v", "vv", "test.coverprofile", "test.outputdir",
	)},
}

// keepaliveMinTime maps etcd's --grpc-keepalive-min-time to
// embed.Config's: etcd sets no enforcement policy for 0, so gRPC's default
// of 5 minutes applies (embed.Config's 0 means etcd's default, 5 s).
func keepaliveMinTime(d time.Duration) time.Duration {
	if d <= 0 {
		return 5 * time.Minute
	}
	return d
}

// nonEmpty drops the empty entries of a comma-separated list ("" is none).
func nonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// handledByParse marks flags that parseConfig acts on itself.
func handledByParse(*embed.Config, parsed) {}

func legacySpecs(names ...string) []spec {
	out := make([]spec, len(names))
	for i, n := range names {
		out[i] = spec{name: n, kind: kindLegacy, yaml: yamlNone, help: "Removed; accepted and ignored."}
	}
	return out
}

// specsByName indexes flagGroups.
var specsByName = func() map[string]*spec {
	m := map[string]*spec{}
	for gi := range flagGroups {
		for si := range flagGroups[gi].specs {
			sp := &flagGroups[gi].specs[si]
			if m[sp.name] != nil {
				panic("duplicate flag --" + sp.name)
			}
			m[sp.name] = sp
		}
	}
	return m
}()
