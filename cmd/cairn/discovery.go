package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairn-kv/cairn/discovery"
)

// runDiscovery is `cairn discovery new`: it creates a discovery token on a
// discovery service the user runs (a Cairn or an etcd), as the public
// discovery.etcd.io did. Status 2 for a malformed command line, 1 when the
// service refuses.
func runDiscovery(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, discoveryUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] != "new" {
		fmt.Fprintf(stderr, "cairn discovery: unknown command %q\n%s", args[0], discoveryUsage)
		return 2
	}
	fs := flag.NewFlagSet("cairn discovery new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.Int("size", 3, "number of members of the cluster to bootstrap")
	endpoint := fs.String("endpoint", "", "v2: URL of a v2 keys API server; v3: its gRPC endpoints, comma-separated")
	v3 := fs.Bool("v3", false, "create a v3 discovery token (--discovery-token) instead of a v2 discovery URL")
	proxy := fs.String("proxy", "", "v2: HTTP proxy to reach the endpoint through")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to try")
	var v3cfg discovery.V3Config
	fs.StringVar(&v3cfg.Username, "user", "", "v3: username[:password] on the discovery service")
	fs.StringVar(&v3cfg.Password, "password", "", "v3: password on the discovery service")
	fs.StringVar(&v3cfg.CertFile, "cert", "", "v3: client TLS certificate file")
	fs.StringVar(&v3cfg.KeyFile, "key", "", "v3: client TLS key file")
	fs.StringVar(&v3cfg.CACertFile, "cacert", "", "v3: CA bundle that verifies the service")
	fs.BoolVar(&v3cfg.InsecureSkipVerify, "insecure-skip-tls-verify", false, "v3: accept any server certificate")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cairn discovery new: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *endpoint == "" {
		fmt.Fprintln(stderr, "cairn discovery new: --endpoint is required")
		return 2
	}
	if *size <= 0 {
		fmt.Fprintf(stderr, "cairn discovery new: --size must be positive, got %d\n", *size)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var out string
	var err error
	if *v3 {
		v3cfg.Endpoints, v3cfg.RequestTimeout, v3cfg.DialTimeout = strings.Split(*endpoint, ","), *timeout, *timeout
		out, err = discovery.NewV3Token(ctx, v3cfg, *size)
	} else {
		out, err = discovery.NewV2Token(ctx, *endpoint, *proxy, *size)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cairn discovery new: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, out)
	return 0
}

const discoveryUsage = `Usage:
  cairn discovery new --size N --endpoint URL [--proxy URL]
  cairn discovery new --v3 --size N --endpoint HOST:PORT[,HOST:PORT...]
      [--user USER[:PASSWORD]] [--password PASSWORD]
      [--cert FILE --key FILE] [--cacert FILE] [--insecure-skip-tls-verify]

new creates a discovery token for a cluster of N members, as the public
discovery.etcd.io did, on a discovery service you run:

  v2 (etcd <= 3.5's --discovery): URL is a server of the v2 keys API (a
  Cairn, or etcd 3.5 with --enable-v2). Prints the discovery URL,
  URL/v2/keys/discovery/<token>; start each member with --discovery=<it>.

  v3 (etcd 3.6+'s --discovery-token): the endpoints are gRPC endpoints of
  an etcd or a Cairn. Prints the token; start each member with
  --discovery-token=<it> --discovery-endpoints=<the same endpoints> (and
  the --discovery-user, --discovery-cert, ... flags the service needs).
`
