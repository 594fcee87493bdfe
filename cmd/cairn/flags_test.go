package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-kv/cairn/embed"
)

// mustParse parses and fails the test on error.
func mustParse(t *testing.T, args, environ []string) invocation {
	t.Helper()
	inv, err := parseConfig(args, environ)
	if err != nil {
		t.Fatalf("parseConfig(%q, %q): %v", args, environ, err)
	}
	if inv.cfg == nil {
		t.Fatalf("parseConfig(%q, %q): no config", args, environ)
	}
	return inv
}

func urlStrings(us []url.URL) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = u.String()
	}
	return strings.Join(s, ",")
}

func TestDefaults(t *testing.T) {
	inv := mustParse(t, nil, nil)
	want := embed.Config{}
	want.EnsureDefaults()
	if !reflect.DeepEqual(*inv.cfg, want) {
		t.Errorf("config with no flags:\ngot  %+v\nwant %+v", *inv.cfg, want)
	}
	if len(inv.notices) != 0 {
		t.Errorf("notices: got %q, want none", inv.notices)
	}
}

func TestMappedFlags(t *testing.T) {
	const lc = "--listen-client-urls=http://10.0.0.1:2379"
	for _, tc := range []struct {
		args []string
		got  func(*embed.Config) any
		want any
	}{
		{[]string{"--name", "m1"}, func(c *embed.Config) any { return c.Name }, "m1"},
		{[]string{"--name", "m1"}, func(c *embed.Config) any { return c.Dir }, "m1.cairn"},
		{[]string{"-name=m1"}, func(c *embed.Config) any { return c.Name }, "m1"},
		{[]string{"--data-dir=/var/lib/x"}, func(c *embed.Config) any { return c.Dir }, "/var/lib/x"},
		{[]string{lc, "--advertise-client-urls=http://a:1"}, func(c *embed.Config) any { return urlStrings(c.ListenClientURLs) }, "http://10.0.0.1:2379"},
		{[]string{lc, "--advertise-client-urls=http://a:1"}, func(c *embed.Config) any { return urlStrings(c.AdvertiseClientURLs) }, "http://a:1"},
		{[]string{"--listen-peer-urls=http://10.0.0.1:2380"}, func(c *embed.Config) any { return urlStrings(c.ListenPeerURLs) }, "http://10.0.0.1:2380"},
		{[]string{"--listen-peer-urls=http://10.0.0.1:2380"}, func(c *embed.Config) any { return c.InitialCluster }, "default=http://10.0.0.1:2380"},
		{[]string{"--initial-advertise-peer-urls=http://p:2380"}, func(c *embed.Config) any { return urlStrings(c.InitialAdvertisePeerURLs) }, "http://p:2380"},
		{[]string{"--initial-cluster=a=http://a:2380,b=http://b:2380"}, func(c *embed.Config) any { return c.InitialCluster }, "a=http://a:2380,b=http://b:2380"},
		{[]string{"--initial-cluster-state=existing"}, func(c *embed.Config) any { return c.InitialClusterState }, "existing"},
		{[]string{"--initial-cluster-token=tok"}, func(c *embed.Config) any { return c.InitialClusterToken }, "tok"},
		{[]string{"--snapshot-count=5"}, func(c *embed.Config) any { return c.SnapshotCount }, uint64(5)},
		{[]string{"--live-cache-bytes=-1"}, func(c *embed.Config) any { return c.LiveCacheBytes }, int64(-1)},
		{[]string{"--max-request-bytes=1024"}, func(c *embed.Config) any { return c.MaxRequestBytes }, uint(1024)},
		{[]string{"--max-txn-ops=0x10"}, func(c *embed.Config) any { return c.MaxTxnOps }, uint(16)},
		{[]string{"--quota-backend-bytes=8589934592"}, func(c *embed.Config) any { return c.QuotaBackendBytes }, int64(8 << 30)},
		{[]string{"--heartbeat-interval=50"}, func(c *embed.Config) any { return c.HeartbeatMs }, uint(50)},
		{[]string{"--election-timeout=5000"}, func(c *embed.Config) any { return c.ElectionMs }, uint(5000)},
		{[]string{"--unsafe-no-fsync"}, func(c *embed.Config) any { return c.UnsafeNoFsync }, true},
		{[]string{"--unsafe-no-fsync=false"}, func(c *embed.Config) any { return c.UnsafeNoFsync }, false},
		{[]string{"--log-level", "debug"}, func(c *embed.Config) any { return c.LogLevel }, "debug"},
		{nil, func(c *embed.Config) any { return c.Metrics }, "basic"},
		{[]string{"--metrics=extensive"}, func(c *embed.Config) any { return c.Metrics }, "extensive"},
		{[]string{"--listen-metrics-urls=http://127.0.0.1:2381,http://10.0.0.1:2381"}, func(c *embed.Config) any { return urlStrings(c.ListenMetricsURLs) }, "http://10.0.0.1:2381,http://127.0.0.1:2381"},
	} {
		inv := mustParse(t, tc.args, nil)
		if got := tc.got(inv.cfg); got != tc.want {
			t.Errorf("%q: got %v (%T), want %v (%T)", tc.args, got, got, tc.want, tc.want)
		}
		if len(inv.cfg.IgnoredFlags) != 0 {
			t.Errorf("%q: IgnoredFlags got %q, want none", tc.args, inv.cfg.IgnoredFlags)
		}
	}
}

func TestURLLists(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://b:2,http://a:1", "http://a:1,http://b:2"},                             // sorted, as etcd
		{"http://a:1,http://a:1", "http://a:1"},                                        // deduplicated
		{"http://a:1, unix://sock", "http://a:1,unix://sock"},                          // spaces trimmed
		{"https://[::1]:2379,http://0.0.0.0:1", "http://0.0.0.0:1,https://[::1]:2379"}, // https parses; Validate decides
	} {
		sp := specsByName["listen-client-urls"]
		p, err := parseText(sp, tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := urlStrings(p.urls); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		want  string
		usage bool // a malformed command line: exit status 2
	}{
		{[]string{"--no-such-flag"}, "flag provided but not defined: --no-such-flag", true},
		{[]string{"-no-such-flag=1"}, "flag provided but not defined: --no-such-flag", true},
		{[]string{"--name"}, "flag needs an argument: --name", true},
		{[]string{"--snapshot-count=abc"}, `invalid value "abc" for flag --snapshot-count: parse error`, true},
		{[]string{"--snapshot-count=-1"}, `invalid value "-1" for flag --snapshot-count`, true},
		{[]string{"--backend-batch-limit=abc"}, `invalid value "abc" for flag --backend-batch-limit`, true},
		{[]string{"--max-concurrent-streams=4294967296"}, `invalid value "4294967296" for flag --max-concurrent-streams: value out of range`, true},
		{[]string{"--unsafe-no-fsync=maybe"}, `invalid value "maybe" for flag --unsafe-no-fsync`, true},
		{[]string{"--pre-vote=maybe"}, `invalid value "maybe" for flag --pre-vote`, true},
		{[]string{"--grpc-keepalive-timeout=10"}, `invalid value "10" for flag --grpc-keepalive-timeout`, true},
		{[]string{"--listen-client-urls", "foo"}, `invalid value "foo" for flag --listen-client-urls: URL scheme must be`, true},
		{[]string{"--listen-peer-urls=http://a"}, `invalid value "http://a" for flag --listen-peer-urls: URL address does not have the form "host:port"`, true},
		{[]string{"--advertise-client-urls=http://a:1/x"}, `invalid value "http://a:1/x" for flag --advertise-client-urls: URL must not contain a path`, true},
		{[]string{"--listen-metrics-urls=localhost:2381"}, `invalid value "localhost:2381" for flag --listen-metrics-urls`, true},
		{[]string{"--metrics=bogus"}, `invalid value "bogus" for flag --metrics: valid values are "basic", "extensive"`, true},
		{[]string{"--listen-metrics-urls=https://127.0.0.1:2381"}, "--listen-metrics-urls: client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url", false},
		{[]string{"--initial-cluster-state=old"}, `invalid value "old" for flag --initial-cluster-state: valid values are "new", "existing"`, true},
		{[]string{"--v2-deprecation=not-yet"}, `invalid value "not-yet" for flag --v2-deprecation`, true},
		{[]string{"--feature-gates=NoSuchGate=true"}, "unrecognized feature gate: NoSuchGate", true},
		{[]string{"--feature-gates=CompactHashCheck"}, "missing bool value for CompactHashCheck", true},
		{[]string{"gateway"}, `"gateway" is not a valid flag`, false},
		{[]string{"--name", "a", "extra"}, `"extra" is not a valid flag`, false},
		{[]string{"--listen-client-urls=http://0.0.0.0:2379"}, "--advertise-client-urls is required when --listen-client-urls is set explicitly", false},
		{[]string{"--discovery-fallback=proxy"}, "--discovery-fallback can't be configured as \"proxy\"", false},
		{[]string{"--discovery-srv=example.com", "--initial-cluster=default=http://127.0.0.1:2380"}, `multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv"`, false},
		{[]string{"--discovery-srv=example.com", "--discovery-token=t", "--discovery-endpoints=127.0.0.1:2379"}, `Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv"`, false},
		{[]string{"--discovery=http://127.0.0.1:2379/v2/keys/discovery/t", "--discovery-srv=example.com"}, `multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"`, false},
		{[]string{"--discovery-token=t"}, "both --discovery-token and --discovery-endpoints must be set", false},
		{[]string{"--discovery-endpoints=127.0.0.1:2379"}, "both --discovery-token and --discovery-endpoints must be set", false},
		{[]string{"--discovery-token=t", "--discovery-endpoints=127.0.0.1:2379,,127.0.0.1:2380"}, "--discovery-endpoints must not contain empty endpoints", false},
		{[]string{"--experimental-compaction-batch-limit=5", "--compaction-batch-limit=6"}, "cannot set --experimental-compaction-batch-limit and --compaction-batch-limit at the same time", false},
		{[]string{"--experimental-initial-corrupt-check", "--feature-gates=InitialCorruptCheck=true"}, "cannot set both --experimental-initial-corrupt-check and --feature-gates=InitialCorruptCheck", false},
		{[]string{"--heartbeat-interval=0"}, "--heartbeat-interval must be >0", false},
		{[]string{"--heartbeat-interval=500"}, "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[500ms]", false},
		{[]string{"--log-level=loud"}, "--log-level", false},
		{[]string{"--initial-cluster=nonsense"}, "--initial-cluster", false},
	} {
		_, err := parseConfig(tc.args, nil)
		if err == nil {
			t.Errorf("%q: got no error, want %q", tc.args, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got error %q, want it to contain %q", tc.args, err, tc.want)
		}
		if got := errors.As(err, new(usageError)); got != tc.usage {
			t.Errorf("%q: usage error got %v, want %v", tc.args, got, tc.usage)
		}
	}
}

func TestIgnoredFlags(t *testing.T) {
	inv := mustParse(t, []string{
		"--name=n", "--auto-compaction-retention=1h", "--auto-compaction-mode=periodic",
		"--memory-mlock=true", "--log-outputs=stderr",
		"--force", "-v", "--feature-gates=LeaseCheckpoint=true",
	}, nil)
	want := []string{
		"feature-gates=LeaseCheckpoint", "force", "log-outputs", "memory-mlock", "v",
	}
	if !slices.Equal(inv.cfg.IgnoredFlags, want) {
		t.Errorf("IgnoredFlags:\ngot  %q\nwant %q", inv.cfg.IgnoredFlags, want)
	}
	if inv.cfg.Name != "n" {
		t.Errorf("Name: got %q, want %q", inv.cfg.Name, "n")
	}
}

// sampleValue is a valid value for a flag of kind k.
func sampleValue(sp *spec) string {
	switch sp.kind {
	case kindBool, kindLegacy:
		return "true"
	case kindInt, kindInt64, kindUint, kindUint32, kindUint64:
		return "7"
	case kindDuration:
		return "3s"
	case kindURLs:
		return "http://127.0.0.1:12345"
	case kindChoice, kindChoices:
		return sp.choices[0]
	case kindGates:
		return "StopGRPCServiceOnDefrag=true"
	}
	return "x"
}

// TestEveryFlagAccepted sets each flag alone, including every
// experimental-* name, and checks it either lands in the Config or is
// listed as ignored.
func TestEveryFlagAccepted(t *testing.T) {
	special := map[string][]string{
		"listen-client-urls":        {"--listen-client-urls=http://127.0.0.1:1", "--advertise-client-urls=http://127.0.0.1:1"},
		"initial-cluster":           {"--initial-cluster=default=http://127.0.0.1:2380"},
		"election-timeout":          {"--election-timeout=700"},
		"log-level":                 {"--log-level=warn"},
		"auto-compaction-retention": {"--auto-compaction-retention=1h"},
		"auto-compaction-mode":      {"--auto-compaction-mode=revision"},
		"tls-min-version":           {"--tls-min-version=TLS1.3"},
		"tls-max-version":           {"--tls-max-version=TLS1.3"},
		"cipher-suites":             {"--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
		"discovery-token":           {"--discovery-token=x", "--discovery-endpoints=127.0.0.1:2379"},
		"discovery-endpoints":       {"--discovery-token=x", "--discovery-endpoints=127.0.0.1:2379"},
	}
	// Certificate and key flags come in pairs.
	for _, p := range [][2]string{{"cert-file", "key-file"}, {"client-cert-file", "client-key-file"},
		{"peer-cert-file", "peer-key-file"}, {"peer-client-cert-file", "peer-client-key-file"}} {
		special[p[0]] = []string{"--" + p[0] + "=c.pem", "--" + p[1] + "=k.pem"}
		special[p[1]] = special[p[0]]
	}
	for name, sp := range specsByName {
		if name == "version" || name == "config-file" {
			continue
		}
		args, ok := special[name]
		if _, refused := unimplementedSecurity[name]; refused && !ok {
			args, ok = []string{"--" + name + "=" + sp.def}, true // other values are refused
		}
		if !ok {
			args = []string{"--" + name + "=" + sampleValue(sp)}
		}
		inv, err := parseConfig(args, nil)
		if err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		ignored := slices.Contains(inv.cfg.IgnoredFlags, name)
		if ignored != (sp.set == nil) {
			t.Errorf("%q: in IgnoredFlags got %v, want %v", args, ignored, sp.set == nil)
		}
		if strings.HasPrefix(name, "experimental-") && len(inv.notices) != 1 {
			t.Errorf("%q: notices got %q, want one deprecation warning", args, inv.notices)
		}
	}
}

func TestEnv(t *testing.T) {
	for _, tc := range []struct {
		name        string
		args, env   []string
		check       func(*embed.Config) string // "" if fine
		wantNotices []string
	}{
		{name: "ETCD_NAME", env: []string{"PATH=/bin", "ETCD_NAME=from-env"},
			check: func(c *embed.Config) string { return wantEq("Name", c.Name, "from-env") }},
		{name: "URLs and numbers", env: []string{
			"ETCD_LISTEN_CLIENT_URLS=http://10.1.1.1:2379", "ETCD_ADVERTISE_CLIENT_URLS=http://10.1.1.1:2379", "ETCD_SNAPSHOT_COUNT=42"},
			check: func(c *embed.Config) string {
				return wantEq("ListenClientURLs", urlStrings(c.ListenClientURLs), "http://10.1.1.1:2379") +
					wantEq("SnapshotCount", fmt.Sprint(c.SnapshotCount), "42")
			}},
		{name: "command line and env for different flags", args: []string{"--name=cli"}, env: []string{"ETCD_DATA_DIR=/d"},
			check: func(c *embed.Config) string { return wantEq("Name", c.Name, "cli") + wantEq("Dir", c.Dir, "/d") }},
		{name: "empty variable is unset", env: []string{"ETCD_NAME="},
			check: func(c *embed.Config) string { return wantEq("Name", c.Name, "default") }},
		{name: "first entry wins, as os.Getenv", env: []string{"ETCD_NAME=one", "ETCD_NAME=two"},
			check: func(c *embed.Config) string { return wantEq("Name", c.Name, "one") }},
		{name: "ignored flag from env", env: []string{"ETCD_AUTO_COMPACTION_RETENTION=1h", "ETCD_MEMORY_MLOCK=true"},
			check: func(c *embed.Config) string {
				return wantEq("IgnoredFlags", fmt.Sprint(c.IgnoredFlags), "[memory-mlock]") +
					wantEq("AutoCompactionRetention", c.AutoCompactionRetention, "1h")
			}},
		{name: "unrecognized", env: []string{"ETCD_NO_SUCH=1", "ETCDCTL_API=3", "XETCD_NAME=x"},
			check:       func(c *embed.Config) string { return wantEq("Name", c.Name, "default") },
			wantNotices: []string{"unrecognized environment variable ETCD_NO_SUCH=1"}},
		{name: "ETCD_VERSION is special", env: []string{"ETCD_VERSION=1"},
			check:       func(c *embed.Config) string { return "" },
			wantNotices: []string{"cannot set special environment variable ETCD_VERSION=1; ignoring it"}},
	} {
		inv, err := parseConfig(tc.args, tc.env)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if msg := tc.check(inv.cfg); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
		if !slices.Equal(inv.notices, tc.wantNotices) {
			t.Errorf("%s: notices got %q, want %q", tc.name, inv.notices, tc.wantNotices)
		}
	}
}

func wantEq(field, got, want string) string {
	if got == want {
		return ""
	}
	return fmt.Sprintf("%s got %q, want %q; ", field, got, want)
}

func TestEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		// etcd refuses a flag given both ways rather than letting one win.
		{[]string{"--name=cli"}, []string{"ETCD_NAME=env"},
			"conflicting environment variable ETCD_NAME is shadowed by the command-line flag --name"},
		{[]string{"--name=cli"}, []string{"ETCD_NAME="}, "conflicting environment variable ETCD_NAME"},
		{nil, []string{"ETCD_SNAPSHOT_COUNT=abc"}, `invalid value "abc" for ETCD_SNAPSHOT_COUNT (flag --snapshot-count): parse error`},
		{nil, []string{"ETCD_UNSAFE_NO_FSYNC=maybe"}, `invalid value "maybe" for ETCD_UNSAFE_NO_FSYNC (flag --unsafe-no-fsync)`},
		{nil, []string{"ETCD_LISTEN_PEER_URLS=foo"}, `invalid value "foo" for ETCD_LISTEN_PEER_URLS (flag --listen-peer-urls)`},
		{nil, []string{"ETCD_LISTEN_CLIENT_URLS=http://a:1"}, "--advertise-client-urls is required"},
	} {
		_, err := parseConfig(tc.args, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: got error %v, want one containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "etcd.conf.yml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFile(t *testing.T) {
	path := writeFile(t, `
name: 'infra1'
data-dir: /var/lib/infra1
listen-client-urls: http://10.0.0.1:2379,http://127.0.0.1:2379
advertise-client-urls: http://10.0.0.1:2379
listen-peer-urls: http://10.0.0.1:2380
initial-advertise-peer-urls: http://10.0.0.1:2380
initial-cluster: infra1=http://10.0.0.1:2380,infra2=http://10.0.0.2:2380
initial-cluster-state: existing
initial-cluster-token: tok
snapshot-count: 500
max-request-bytes: 2048
max-txn-ops: 64
quota-backend-bytes: 4294967296
heartbeat-interval: 200
election-timeout: 2000
unsafe-no-fsync: true
log-level: warn
wal-dir: /wal
max-wals: 0
enable-v2: true
# accepted and ignored:
log-outputs: [stderr]
cipher-suites: [TLS_AES_128_GCM_SHA256]
auto-compaction-retention: 1
backend-batch-interval: 100000000
client-transport-security:
  cert-file: /c.pem
  key-file: /k.pem
  client-cert-auth: true
  allowed-cn: [ignored-on-the-client-side]
peer-transport-security:
  auto-tls: true
  allowed-cn: [m1, m2]
no-such-key: 1
proxy: 'off'
`)
	inv := mustParse(t, []string{"--config-file", path, "--name=ignored", "--wal-dir=/x"}, []string{"ETCD_NAME=ignored", "ETCD_BOGUS=1"})
	c := inv.cfg
	for _, tc := range []struct{ field, got, want string }{
		{"Name", c.Name, "infra1"},
		{"Dir", c.Dir, "/var/lib/infra1"},
		{"ListenClientURLs", urlStrings(c.ListenClientURLs), "http://10.0.0.1:2379,http://127.0.0.1:2379"},
		{"AdvertiseClientURLs", urlStrings(c.AdvertiseClientURLs), "http://10.0.0.1:2379"},
		{"ListenPeerURLs", urlStrings(c.ListenPeerURLs), "http://10.0.0.1:2380"},
		{"InitialAdvertisePeerURLs", urlStrings(c.InitialAdvertisePeerURLs), "http://10.0.0.1:2380"},
		{"InitialCluster", c.InitialCluster, "infra1=http://10.0.0.1:2380,infra2=http://10.0.0.2:2380"},
		{"InitialClusterState", c.InitialClusterState, "existing"},
		{"InitialClusterToken", c.InitialClusterToken, "tok"},
		{"SnapshotCount", fmt.Sprint(c.SnapshotCount), "500"},
		{"MaxRequestBytes", fmt.Sprint(c.MaxRequestBytes), "2048"},
		{"MaxTxnOps", fmt.Sprint(c.MaxTxnOps), "64"},
		{"QuotaBackendBytes", fmt.Sprint(c.QuotaBackendBytes), "4294967296"},
		{"HeartbeatMs", fmt.Sprint(c.HeartbeatMs), "200"},
		{"ElectionMs", fmt.Sprint(c.ElectionMs), "2000"},
		{"UnsafeNoFsync", fmt.Sprint(c.UnsafeNoFsync), "true"},
		{"LogLevel", c.LogLevel, "warn"},
		{"AutoCompactionRetention", c.AutoCompactionRetention, "1"},
		{"WALDir", c.WALDir, "/wal"},
		{"MaxWALs", fmt.Sprint(c.MaxWALs), "-1"},
		{"EnableV2", fmt.Sprint(c.EnableV2), "true"},
		{"IgnoredFlags", fmt.Sprint(c.IgnoredFlags), "[backend-batch-interval log-outputs]"},
		{"ClientTLS", fmt.Sprintf("%s %s %v", c.ClientTLS.CertFile, c.ClientTLS.KeyFile, c.ClientTLS.ClientCertAuth), "/c.pem /k.pem true"},
		{"PeerTLS", fmt.Sprintf("%v %q", c.PeerAutoTLS, c.PeerTLS.AllowedCNs), `true ["m1" "m2"]`},
		{"CipherSuites", fmt.Sprint(c.CipherSuites), "[TLS_AES_128_GCM_SHA256]"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.field, tc.got, tc.want)
		}
	}
	if len(inv.notices) != 1 || !strings.Contains(inv.notices[0], "other command-line flags and environment variables are ignored") {
		t.Errorf("notices: got %q, want one saying flags and environment are ignored", inv.notices)
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	path := writeFile(t, "name: from-file\n")
	inv := mustParse(t, nil, []string{"ETCD_CONFIG_FILE=" + path, "ETCD_NAME=ignored"})
	if inv.cfg.Name != "from-file" {
		t.Errorf("Name: got %q, want %q", inv.cfg.Name, "from-file")
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct{ content, want string }{
		{"name: [unclosed\n", "config file %s: yaml:"},
		{"- a\n- b\n", "config file %s: yaml:"},
		{"snapshot-count: abc\n", "config file %s: invalid value for snapshot-count: want an integer"},
		{"max-txn-ops: -1\n", "config file %s: invalid value for max-txn-ops: value out of range"},
		{"unsafe-no-fsync: maybe\n", "config file %s: invalid value for unsafe-no-fsync: want true or false"},
		{"backend-batch-interval: 100ms\n", "config file %s: invalid value for backend-batch-interval: want an integer"},
		{"listen-peer-urls: foo\n", "config file %s: invalid value for listen-peer-urls: URL scheme must be"},
		{"log-outputs: stderr\n", "config file %s: invalid value for log-outputs: want a list of strings"},
		{"feature-gates: Bogus=true\n", "unrecognized feature gate: Bogus"},
		{"client-transport-security: yes-please\n", "config file %s: client-transport-security: want a mapping"},
		{"initial-cluster-state: sideways\n", "--initial-cluster-state: invalid value"},
		{"experimental-corrupt-check-time: 5\ncorrupt-check-time: 5\n", "cannot set --experimental-corrupt-check-time and --corrupt-check-time"},
	} {
		path := writeFile(t, tc.content)
		want := strings.ReplaceAll(tc.want, "%s", path)
		_, err := parseConfig([]string{"--config-file=" + path}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("file %q: got error %v, want one containing %q", tc.content, err, want)
		}
	}
	missing := filepath.Join(t.TempDir(), "absent.yml")
	if _, err := parseConfig([]string{"--config-file", missing}, nil); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: got error %v, want one naming %s", err, missing)
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		help, version bool
	}{
		{[]string{"-h"}, true, false},
		{[]string{"--help"}, true, false},
		{[]string{"-help"}, true, false},
		{[]string{"--version"}, false, true},
		{[]string{"--version", "--name=x"}, false, true},
	} {
		inv, err := parseConfig(tc.args, []string{"ETCD_BOGUS=1"})
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if inv.help != tc.help || inv.version != tc.version || inv.cfg != nil {
			t.Errorf("%q: got help=%v version=%v cfg=%v, want help=%v version=%v cfg=nil",
				tc.args, inv.help, inv.version, inv.cfg != nil, tc.help, tc.version)
		}
	}
}

// TestDocsListEveryFlag keeps docs/flags.md in step with the flag table.
func TestDocsListEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../docs/flags.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name := range specsByName {
		if !strings.Contains(doc, "`--"+name+"`") {
			t.Errorf("docs/flags.md does not list `--%s`", name)
		}
	}
}
