package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/discovery"
	"github.com/cairn-kv/cairn/embed"
)

// The --discovery* flags land in embed.Config.Discovery, and without
// --initial-cluster no default cluster is filled in.
func TestDiscoveryFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want embed.DiscoveryConfig
	}{
		{[]string{"--discovery-token=tok", "--discovery-endpoints=10.0.0.1:2379,10.0.0.2:2379",
			"--discovery-dial-timeout=3s", "--discovery-request-timeout=4s", "--discovery-keepalive-time=5s",
			"--discovery-keepalive-timeout=7s", "--discovery-insecure-transport=false", "--discovery-insecure-skip-tls-verify",
			"--discovery-cert=c.pem", "--discovery-key=k.pem", "--discovery-cacert=ca.pem",
			"--discovery-user=root", "--discovery-password=pw"}, nil,
			embed.DiscoveryConfig{V3: discovery.V3Config{Token: "tok", Endpoints: []string{"10.0.0.1:2379", "10.0.0.2:2379"},
				DialTimeout: 3 * time.Second, RequestTimeout: 4 * time.Second, KeepAliveTime: 5 * time.Second,
				KeepAliveTimeout: 7 * time.Second, SecureTransport: true, InsecureSkipVerify: true,
				CertFile: "c.pem", KeyFile: "k.pem", CACertFile: "ca.pem", Username: "root", Password: "pw"}}},
		{[]string{"--discovery-token=tok", "--discovery-endpoints=10.0.0.1:2379"}, nil,
			embed.DiscoveryConfig{V3: discovery.V3Config{Token: "tok", Endpoints: []string{"10.0.0.1:2379"}}}},
		{[]string{"--discovery=http://d:2379/v2/keys/discovery/t", "--discovery-proxy=p:3128", "--discovery-fallback=exit"}, nil,
			embed.DiscoveryConfig{URL: "http://d:2379/v2/keys/discovery/t", Proxy: "p:3128"}},
		{[]string{"--discovery-srv=example.com", "--discovery-srv-name=blue"}, []string{"CAIRN_DISCOVERY_SRV_RESOLVER=127.0.0.1:5353"},
			embed.DiscoveryConfig{SRV: "example.com", SRVName: "blue", SRVResolver: "127.0.0.1:5353"}},
		{nil, []string{"ETCD_DISCOVERY_SRV=example.com"}, embed.DiscoveryConfig{SRV: "example.com"}},
	} {
		inv, err := parseConfig(tc.args, tc.env)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if got := fmt.Sprintf("%+v", inv.cfg.Discovery); got != fmt.Sprintf("%+v", tc.want) {
			t.Errorf("%q:\n got %s\nwant %+v", tc.args, got, tc.want)
		}
		if inv.cfg.InitialCluster != "" {
			t.Errorf("%q: InitialCluster %q, want none", tc.args, inv.cfg.InitialCluster)
		}
		if len(inv.cfg.IgnoredFlags) > 0 {
			t.Errorf("%q: ignored %v", tc.args, inv.cfg.IgnoredFlags)
		}
	}
}

func TestDiscoveryNewUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{nil, 2, "cairn discovery new --size N --endpoint URL"},
		{[]string{"--help"}, 0, "discovery.etcd.io"},
		{[]string{"old"}, 2, `unknown command "old"`},
		{[]string{"new"}, 2, "--endpoint is required"},
		{[]string{"new", "--endpoint", "http://127.0.0.1:1", "--size", "0"}, 2, "--size must be positive"},
		{[]string{"new", "--endpoint", "http://127.0.0.1:1", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"new", "--endpoint", "http://127.0.0.1:1", "--timeout", "1s"}, 1, "cairn discovery new: discovery: create /v2/keys/discovery/"},
	} {
		var out, errb bytes.Buffer
		status := run(append([]string{"discovery"}, tc.args...), nil, &out, &errb)
		if status != tc.status || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%q: status %d, output %q; want %d and %q", tc.args, status, out.String()+errb.String(), tc.status, tc.want)
		}
	}
}

// etcd 3.7's discovery-config mapping, and the v2 and SRV keys, in a
// config file.
func TestDiscoveryConfigFile(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want embed.DiscoveryConfig
	}{
		{`
discovery-config:
  token: tok
  client:
    endpoints: [10.0.0.1:2379, 10.0.0.2:2379]
    dial-timeout: 3000000000
    request-timeout: 4000000000
    keepalive-time: 5000000000
    keepalive-timeout: 7000000000
    secure: {cert: c.pem, key: k.pem, cacert: ca.pem, insecure-transport: false, insecure-skip-tls-verify: true}
    auth: {username: root, password: pw}
    unknown-key: ignored
`, embed.DiscoveryConfig{V3: discovery.V3Config{Token: "tok", Endpoints: []string{"10.0.0.1:2379", "10.0.0.2:2379"},
			DialTimeout: 3 * time.Second, RequestTimeout: 4 * time.Second, KeepAliveTime: 5 * time.Second,
			KeepAliveTimeout: 7 * time.Second, SecureTransport: true, InsecureSkipVerify: true,
			CertFile: "c.pem", KeyFile: "k.pem", CACertFile: "ca.pem", Username: "root", Password: "pw"}}},
		{"discovery: http://d:2379/v2/keys/discovery/t\ndiscovery-proxy: p:3128\n",
			embed.DiscoveryConfig{URL: "http://d:2379/v2/keys/discovery/t", Proxy: "p:3128"}},
		{"discovery-srv: example.com\ndiscovery-srv-name: blue\n", embed.DiscoveryConfig{SRV: "example.com", SRVName: "blue"}},
	} {
		inv, err := parseConfig([]string{"--config-file", writeFile(t, tc.yaml)}, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.yaml, err)
			continue
		}
		if got := fmt.Sprintf("%+v", inv.cfg.Discovery); got != fmt.Sprintf("%+v", tc.want) {
			t.Errorf("%s:\n got %s\nwant %+v", tc.yaml, got, tc.want)
		}
		if len(inv.cfg.IgnoredFlags) > 0 {
			t.Errorf("%s: ignored %v", tc.yaml, inv.cfg.IgnoredFlags)
		}
	}
	_, err := parseConfig([]string{"--config-file", writeFile(t, "discovery-config: {token: t, client: {dial-timeout: 2s}}\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), "client.dial-timeout: want an integer") {
		t.Errorf("duration as a string: %v", err)
	}
}
