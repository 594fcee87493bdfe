// Command oracle35 runs a real etcd v3.5.21 member with --enable-v2, the
// oracle of the v2 keys API (/v2/keys, /v2/members, /v2/machines), in its
// own process: the compat module requires etcd 3.7 (which has no v2 API),
// and a Go module cannot require two versions of go.etcd.io/etcd/server/v3,
// so this tiny module (its own go.mod) holds the 3.5 release. The compat
// tests build it with `go build` and start it as a subprocess (see
// compat/internal/cluster.StartEtcd36).
//
//	oracle35 --data-dir DIR [--client-port N] [--peer-port N] [--log-file FILE]
//	         [--max-request-bytes N] [--watch-progress-notify-interval D]
//
// A port of 0 (the default) is a free port picked on 127.0.0.1; when one
// picked is taken before etcd binds it, it tries again with others. The
// member is configured as the compat suites' 3.7 oracle is (one member
// named n1, fsync off, 10 ms ticks, a 100 ms election timeout), with the v2
// API enabled (etcd 3.5's --enable-v2). Once etcd
// serves, it prints one line on stdout:
//
//	ready 127.0.0.1:CLIENTPORT
//
// and it stops cleanly on SIGTERM or SIGINT, or when its standard input
// reaches end of file, so that it does not outlive a test binary that dies.
// On a failure it prints the error on stderr and exits 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startTimeout bounds how long etcd may take to become ready.
const startTimeout = 20 * time.Second

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("oracle35", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "Data directory (required).")
	clientPort := fs.Int("client-port", 0, "Client port on 127.0.0.1 (0: a free one).")
	peerPort := fs.Int("peer-port", 0, "Peer port on 127.0.0.1 (0: a free one).")
	logFile := fs.String("log-file", "", "etcd's log (default: none; \"stderr\" for stderr).")
	logLevel := fs.String("log-level", "error", "etcd's log level.")
	var o options
	fs.UintVar(&o.maxRequestBytes, "max-request-bytes", 0, "--max-request-bytes (0: etcd's default).")
	fs.DurationVar(&o.progressInterval, "watch-progress-notify-interval", 0, "--watch-progress-notify-interval (0: etcd's default).")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: oracle35 --data-dir DIR [--client-port N] [--peer-port N] [--log-file FILE]")
		return 2
	}
	var (
		e      *embed.Etcd
		client string
		err    error
	)
	for attempt := 0; attempt < 3; attempt++ {
		sub := filepath.Join(*dir, fmt.Sprint(attempt))
		if err = os.MkdirAll(sub, 0o700); err != nil {
			break
		}
		e, client, err = start(sub, *clientPort, *peerPort, *logFile, *logLevel, o)
		if err == nil || !strings.Contains(err.Error(), "address already in use") || (*clientPort != 0 && *peerPort != 0) {
			break
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "oracle35: %v\n", err)
		return 1
	}
	defer e.Close()
	fmt.Printf("ready %s\n", client)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-sig:
	case <-eof:
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "oracle35: etcd stopped: %v\n", err)
		return 1
	}
	return 0
}

// options are the settings the compat suites vary, as cluster.Options.
type options struct {
	maxRequestBytes  uint
	progressInterval time.Duration
}

// start starts etcd with its data in dir and waits until it serves.
func start(dir string, clientPort, peerPort int, logFile, logLevel string, o options) (*embed.Etcd, string, error) {
	free, err := freePorts(2)
	if err != nil {
		return nil, "", err
	}
	if clientPort == 0 {
		clientPort = free[0]
	}
	if peerPort == 0 {
		peerPort = free[1]
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}

	cfg := embed.NewConfig()
	cfg.Name = "n1"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = logLevel
	cfg.LogOutputs = []string{"/dev/null"}
	if logFile != "" {
		cfg.LogOutputs = []string{logFile}
	}
	cfg.UnsafeNoFsync = true
	cfg.EnableV2 = true
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	if o.maxRequestBytes != 0 {
		cfg.MaxRequestBytes = o.maxRequestBytes
	}
	if o.progressInterval != 0 {
		cfg.ExperimentalWatchProgressNotifyInterval = o.progressInterval
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("etcd failed before ready: %w", err)
	case <-time.After(startTimeout):
		e.Close()
		return nil, "", errors.New("etcd not ready after " + startTimeout.String())
	}
	return e, clientURL.Host, nil
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
