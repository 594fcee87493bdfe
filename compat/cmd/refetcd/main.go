// Command refetcd runs a real etcd 3.7 member (go.etcd.io/etcd/server/v3,
// the release the compat module requires) with the few flags a benchmark
// needs, so that scripts/bench-vs-etcd.sh can start etcd and Cairn the same
// way: the data directory is --data-dir as given, fsync is on unless
// --unsafe-no-fsync, and every other setting is etcd's default (snapshot
// count 10000, heartbeat 100 ms, election timeout 1000 ms), as it is Cairn's.
//
//	go run ./cmd/refetcd --data-dir /tmp/e1 \
//	  --listen-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800
//
// It prints "ready to serve client requests" on stderr once etcd serves,
// whatever --log-level says, and stops cleanly on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startTimeout bounds how long etcd may take to become ready.
const startTimeout = 5 * time.Minute

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg := embed.NewConfig()
	fs := flag.NewFlagSet("refetcd", flag.ContinueOnError)
	var lcurls, acurls, lpurls, apurls string
	fs.StringVar(&cfg.Name, "name", "default", "Member name.")
	fs.StringVar(&cfg.Dir, "data-dir", "", "Data directory (default: ${name}.etcd).")
	fs.StringVar(&lcurls, "listen-client-urls", "http://127.0.0.1:2379", "Client URLs to listen on, comma-separated.")
	fs.StringVar(&acurls, "advertise-client-urls", "", "Client URLs to announce (default: --listen-client-urls).")
	fs.StringVar(&lpurls, "listen-peer-urls", "http://127.0.0.1:2380", "Peer URLs to listen on, comma-separated.")
	fs.StringVar(&apurls, "initial-advertise-peer-urls", "", "Peer URLs to announce (default: --listen-peer-urls).")
	fs.StringVar(&cfg.InitialCluster, "initial-cluster", "", "name=peerURL,... (default: this member alone).")
	fs.StringVar(&cfg.ClusterState, "initial-cluster-state", "new", "new or existing.")
	fs.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "Cluster token.")
	fs.Uint64Var(&cfg.SnapshotCount, "snapshot-count", cfg.SnapshotCount, "Applied entries between snapshots.")
	fs.Int64Var(&cfg.QuotaBackendBytes, "quota-backend-bytes", 0, "Backend quota in bytes (0: 2 GiB).")
	fs.BoolVar(&cfg.UnsafeNoFsync, "unsafe-no-fsync", false, "Disable fsync.")
	fs.BoolVar(&cfg.EnablePprof, "enable-pprof", false, "Serve /debug/pprof/ on the client port.")
	fs.StringVar(&cfg.LogLevel, "log-level", "error", "debug, info, warn or error.")
	fs.StringVar(&cfg.ClientTLSInfo.CertFile, "cert-file", "", "Client TLS certificate (for https:// client URLs).")
	fs.StringVar(&cfg.ClientTLSInfo.KeyFile, "key-file", "", "Client TLS key.")
	fs.StringVar(&cfg.ClientTLSInfo.TrustedCAFile, "trusted-ca-file", "", "CA bundle that verifies client certificates.")
	fs.BoolVar(&cfg.ClientTLSInfo.ClientCertAuth, "client-cert-auth", false, "Require client certificates.")
	fs.StringVar(&cfg.ClientTLSInfo.CRLFile, "client-crl-file", "", "Client certificate revocation list (DER).")
	fs.StringVar(&cfg.AuthToken, "auth-token", cfg.AuthToken, "Auth token type and options: simple, or jwt,sign-method=...,priv-key=...,pub-key=...")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "refetcd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if acurls == "" {
		acurls = lcurls
	}
	if apurls == "" {
		apurls = lpurls
	}
	for _, u := range []struct {
		dst  *[]url.URL
		flag string
		val  string
	}{
		{&cfg.ListenClientUrls, "listen-client-urls", lcurls},
		{&cfg.AdvertiseClientUrls, "advertise-client-urls", acurls},
		{&cfg.ListenPeerUrls, "listen-peer-urls", lpurls},
		{&cfg.AdvertisePeerUrls, "initial-advertise-peer-urls", apurls},
	} {
		urls, err := parseURLs(u.val)
		if err != nil {
			fmt.Fprintf(os.Stderr, "refetcd: --%s: %v\n", u.flag, err)
			return 2
		}
		*u.dst = urls
	}
	if cfg.Dir == "" {
		cfg.Dir = cfg.Name + ".etcd"
	}
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	cfg.LogOutputs = []string{"stderr"}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "refetcd: %v\n", err)
		return 1
	}
	defer e.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "refetcd: ready to serve client requests on %s\n", acurls)
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "refetcd: etcd failed before ready: %v\n", err)
		return 1
	case <-sig:
		fmt.Fprintln(os.Stderr, "refetcd: interrupted while starting")
		return 1
	case <-time.After(startTimeout):
		fmt.Fprintf(os.Stderr, "refetcd: etcd not ready after %v\n", startTimeout)
		return 1
	}
	select {
	case <-sig:
		return 0
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "refetcd: etcd stopped: %v\n", err)
		return 1
	}
}

func parseURLs(s string) ([]url.URL, error) {
	var out []url.URL
	for _, part := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, *u)
	}
	return out, nil
}
