// Command config-reload is an application whose configuration lives in
// Cairn and reloads without a restart. Invalid updates are rejected and
// the last good configuration stays in force.
//
// Against a running server:
//
//	go run ./cmd/cairn &
//	go run ./examples/config-reload -endpoints 127.0.0.1:2379
//	# in another terminal:
//	etcdctl put /examples/config-reload/app.json '{"greeting":"bonjour","workers":4}'
//	etcdctl put /examples/config-reload/app.json '{"greeting":"oops","workers":0}'   # rejected
//
// Self-contained, with an in-process server and a scripted series of
// updates (what the test runs):
//
//	go run ./examples/config-reload -embedded
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/config"
	"github.com/cairn-kv/cairn/examples/internal/embedded"
)

// AppConfig is the application's configuration, stored as JSON.
type AppConfig struct {
	// Greeting is what the application says.
	Greeting string `json:"greeting"`
	// Workers is how many workers it runs, 1 to 64.
	Workers int `json:"workers"`
}

// Validate rejects configurations the application cannot run with.
func (c *AppConfig) Validate() error {
	if strings.TrimSpace(c.Greeting) == "" {
		return errors.New("greeting is empty")
	}
	if c.Workers < 1 || c.Workers > 64 {
		return fmt.Errorf("workers must be between 1 and 64, not %d", c.Workers)
	}
	return nil
}

var defaultConfig = AppConfig{Greeting: "hello", Workers: 2}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "config-reload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("config-reload", flag.ContinueOnError)
	endpoints := fs.String("endpoints", client.DefaultEndpoint, "Cairn endpoints, comma-separated")
	key := fs.String("key", "/examples/config-reload/app.json", "the configuration key")
	isEmbedded := fs.Bool("embedded", false, "start an in-process Cairn and run the -demo script")
	demo := fs.Bool("demo", false, "write a scripted series of updates, print what happens, and exit")
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
		*demo = true
	}
	c, err := client.New(client.Config{Endpoints: eps})
	if err != nil {
		return err
	}
	defer c.Close()

	// First run: store the default configuration (only if the key is absent).
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if created, _, err := client.CompareAndSwapJSON(sctx, c, *key, 0, defaultConfig); err != nil {
		return fmt.Errorf("cannot reach Cairn at %s: %w", *endpoints, err)
	} else if created {
		fmt.Fprintf(out, "stored the default configuration at %s\n", *key)
	}

	// Every callback reports on this channel, so that the demo can wait
	// for each update to be handled before writing the next.
	handled := make(chan struct{}, 10)
	b, err := config.Bind(ctx, c, *key, config.Options[AppConfig]{
		OnChange: func(_, cfg AppConfig, rev int64) {
			fmt.Fprintf(out, "applied revision %d: %s\n", rev, describe(cfg))
			handled <- struct{}{}
		},
		OnReject: func(err error, rev int64) {
			fmt.Fprintf(out, "rejected revision %d (%v); keeping the last good configuration\n", rev, cause(err))
			handled <- struct{}{}
		},
	})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(out, "loaded revision %d: %s\n", b.Revision(), describe(b.Current()))

	if !*demo {
		<-ctx.Done() // serve until interrupted
		return nil
	}
	for _, v := range []string{
		`{"greeting":"bonjour","workers":4}`,
		`{"greeting":"hola",`,             // not JSON
		`{"greeting":"hola","workers":0}`, // fails Validate
		`{"greeting":"hola","workers":8}`,
	} {
		if _, err := c.Put(ctx, *key, v); err != nil {
			return err
		}
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			return errors.New("update not seen within 10 s")
		}
	}
	fmt.Fprintf(out, "running with revision %d: %s\n", b.Revision(), describe(b.Current()))
	return nil
}

func describe(c AppConfig) string {
	return fmt.Sprintf("greeting=%q workers=%d", c.Greeting, c.Workers)
}

// cause strips the key from a rejection, for shorter lines.
func cause(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ".json: "); i >= 0 {
		return s[i+len(".json: "):]
	}
	return s
}
