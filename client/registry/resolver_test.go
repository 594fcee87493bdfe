package registry_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/cairn-kv/cairn/client/cairntest"
	"github.com/cairn-kv/cairn/client/registry"
)

// startBackend serves gRPC's health service on a free port.
func startBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// check makes one health check and returns the address that answered.
func check(ctx context.Context, hc healthpb.HealthClient) (string, error) {
	var p peer.Peer
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true)); err != nil {
		return "", err
	}
	return p.Addr.String(), nil
}

func call(ctx context.Context, t *testing.T, hc healthpb.HealthClient) string {
	t.Helper()
	addr, err := check(ctx, hc)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// A gRPC client dialing cairn:///greeter balances over the registered
// instances and follows them as they come and go.
func TestResolver(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	r := registry.New(c, registry.Options{})
	addrA, addrB, addrC := startBackend(t), startBackend(t), startBackend(t)

	// Dial before any instance exists: calls wait for one.
	conn, err := grpc.NewClient("cairn:///greeter", grpc.WithResolvers(r.ResolverBuilder()),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	first := make(chan string, 1)
	go func() {
		addr, err := check(ctx, hc)
		if err != nil {
			t.Error(err)
		}
		first <- addr
	}()

	a, err := r.Register(ctx, registry.Service{Name: "greeter", ID: "a", Addr: addrA}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Deregister(ctx)
	if got := <-first; got != addrA {
		t.Fatalf("first call answered by %s, want %s", got, addrA)
	}
	b, err := r.Register(ctx, registry.Service{Name: "greeter", ID: "b", Addr: addrB}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Round robin: once b is connected, calls alternate between the two.
	waitForCalls(ctx, t, hc, map[string]bool{addrA: true, addrB: true})

	if err := b.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	cReg, err := r.Register(ctx, registry.Service{Name: "greeter", ID: "c", Addr: addrC}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cReg.Deregister(ctx)
	waitForCalls(ctx, t, hc, map[string]bool{addrA: true, addrC: true})
}

// waitForCalls calls until a run of 20 calls reaches exactly the addresses
// in want, alternating as round robin does.
func waitForCalls(ctx context.Context, t *testing.T, hc healthpb.HealthClient, want map[string]bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		seen := map[string]int{}
		ok := true
		prev := ""
		for range 20 {
			a := call(ctx, t, hc)
			seen[a]++
			if !want[a] || a == prev {
				ok = false
			}
			prev = a
		}
		if ok && len(seen) == len(want) {
			return
		}
	}
	t.Fatalf("calls never settled on %v", want)
}

func TestResolverRejectsEmptyTarget(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	r := registry.New(cairntest.Start(t).Client(t), registry.Options{})
	conn, err := grpc.NewClient("cairn:///", grpc.WithResolvers(r.ResolverBuilder()),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("call through cairn:/// succeeded")
	}
}
