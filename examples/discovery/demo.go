package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cairn-kv/cairn/client/registry"
)

// runDemo runs everything in one process: services a and b register, the
// client balances over them, b shuts down (deregistering), c starts, and
// the client follows each change.
func runDemo(ctx context.Context, r *registry.Registry, name string, out io.Writer) error {
	const ttl = 10 * time.Second
	services := map[string]*service{}
	defer func() {
		for _, s := range services {
			s.stop()
		}
	}()
	start := func(id string) error {
		s, err := startService(ctx, r, name, id, "127.0.0.1:0", ttl)
		if err != nil {
			return err
		}
		services[id] = s
		fmt.Fprintf(out, "service %s registered\n", id)
		return nil
	}
	stop := func(id string) error {
		err := services[id].stop()
		delete(services, id)
		fmt.Fprintf(out, "service %s deregistered\n", id)
		return err
	}
	for _, id := range []string{"a", "b"} {
		if err := start(id); err != nil {
			return err
		}
	}

	cl, err := newCaller(ctx, r, name, nil)
	if err != nil {
		return err
	}
	defer cl.close()
	expect := func(ids ...string) error {
		if err := cl.waitFor(ctx, ids...); err != nil {
			return err
		}
		fmt.Fprintf(out, "client: calls go round robin to %v\n", ids)
		return nil
	}

	if err := expect("a", "b"); err != nil {
		return err
	}
	if err := stop("b"); err != nil {
		return err
	}
	if err := expect("a"); err != nil {
		return err
	}
	if err := start("c"); err != nil {
		return err
	}
	return expect("a", "c")
}
