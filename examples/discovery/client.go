package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/cairn-kv/cairn/client/registry"
)

// caller makes health-check calls through cairn:///<name> and tells which
// instance answered each one.
type caller struct {
	conn *grpc.ClientConn
	hc   healthpb.HealthClient
	in   *registry.Instances

	mu struct {
		sync.Mutex
		byAddr map[string]string // instance address -> ID
	}
}

func newCaller(ctx context.Context, r *registry.Registry, name string, onChange func(registry.Update)) (*caller, error) {
	conn, err := grpc.NewClient(registry.Scheme+":///"+name,
		grpc.WithResolvers(r.ResolverBuilder()),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	cl := &caller{conn: conn, hc: healthpb.NewHealthClient(conn)}
	// The resolver keeps gRPC's addresses current; this second view only
	// names the instances for printing.
	cl.in, err = r.Discover(ctx, name, func(u registry.Update) {
		m := map[string]string{}
		for _, s := range u.Instances {
			m[s.Addr] = s.ID
		}
		cl.mu.Lock()
		cl.mu.byAddr = m
		cl.mu.Unlock()
		if onChange != nil {
			onChange(u)
		}
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return cl, nil
}

func (cl *caller) close() {
	cl.in.Close()
	cl.conn.Close()
}

// call makes one call and returns the ID of the instance that answered.
func (cl *caller) call(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := cl.hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true)); err != nil {
		return "", err
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if id, ok := cl.mu.byAddr[p.Addr.String()]; ok {
		return id, nil
	}
	return p.Addr.String(), nil
}

// round makes n calls and returns the instances that answered, sorted.
func (cl *caller) round(ctx context.Context, n int) ([]string, error) {
	seen := map[string]bool{}
	for range n {
		id, err := cl.call(ctx)
		if err != nil {
			return nil, err
		}
		seen[id] = true
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// waitFor makes rounds of calls until one reaches exactly the instances
// want; the balancer needs a moment to connect to a new instance and to
// drop a removed one.
func (cl *caller) waitFor(ctx context.Context, want ...string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := cl.round(ctx, 10)
		if err != nil {
			return err
		}
		if slices.Equal(got, want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("calls reached %v, want %v", got, want)
		}
	}
}

// runClient is the -role client mode: call once a second and print which
// instances answer, and every change to the registered set.
func runClient(ctx context.Context, r *registry.Registry, name string, out io.Writer) error {
	cl, err := newCaller(ctx, r, name, func(u registry.Update) {
		fmt.Fprintf(out, "registered instances at revision %d: %s\n", u.Revision, ids(u.Instances))
	})
	if err != nil {
		return err
	}
	defer cl.close()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		got, err := cl.round(ctx, 4)
		switch {
		case errors.Is(err, context.Canceled):
			return nil
		case err != nil:
			fmt.Fprintf(out, "calls failed: %v\n", err)
		default:
			fmt.Fprintf(out, "4 calls answered by %s\n", strings.Join(got, ", "))
		}
	}
}

func ids(ss []registry.Service) string {
	if len(ss) == 0 {
		return "none"
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return strings.Join(out, ", ")
}
