// Command discovery shows service registration and discovery: services
// register themselves in Cairn under leases, and a gRPC client dials
// "cairn:///greeter" and balances its calls round robin over whatever
// instances are registered, following them as they come and go. The RPC
// is gRPC's standard health check, so no generated code is needed.
//
// Against a running server, one process per role:
//
//	go run ./cmd/cairn &
//	go run ./examples/discovery -role service -id a &
//	go run ./examples/discovery -role service -id b &
//	go run ./examples/discovery -role client
//	# stop a service with Ctrl-C: it deregisters and the client stops calling it
//
// Self-contained, with an in-process server, two services, a client, and a
// scripted sequence of instances leaving and joining (what the test runs):
//
//	go run ./examples/discovery -embedded
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/registry"
	"github.com/cairn-kv/cairn/examples/internal/embedded"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "discovery:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("discovery", flag.ContinueOnError)
	endpoints := fs.String("endpoints", client.DefaultEndpoint, "Cairn endpoints, comma-separated")
	isEmbedded := fs.Bool("embedded", false, "start an in-process Cairn and run the demo")
	role := fs.String("role", "demo", "service, client, or demo (services and a client in one process)")
	name := fs.String("name", "greeter", "the service name")
	id := fs.String("id", "", "the instance ID (role service; default: the host name and process ID)")
	listen := fs.String("listen", "127.0.0.1:0", "where the service listens (role service)")
	ttl := fs.Duration("ttl", 10*time.Second, "the registration lease TTL (role service)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	eps := strings.Split(*endpoints, ",")
	if *isEmbedded {
		var stop func()
		var err error
		if eps, stop, err = embedded.Start(); err != nil {
			return err
		}
		defer stop()
		*role = "demo"
	}
	c, err := client.New(client.Config{Endpoints: eps})
	if err != nil {
		return err
	}
	defer c.Close()
	r := registry.New(c, registry.Options{})

	switch *role {
	case "service":
		if *id == "" {
			host, _ := os.Hostname()
			*id = fmt.Sprintf("%s-%d", host, os.Getpid())
		}
		return runService(ctx, r, *name, *id, *listen, *ttl, out)
	case "client":
		return runClient(ctx, r, *name, out)
	case "demo":
		return runDemo(ctx, r, *name, out)
	}
	return fmt.Errorf("unknown -role %q (want service, client or demo)", *role)
}
