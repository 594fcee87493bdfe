package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cairn-kv/cairn/client/registry"
)

// service is a running instance: a gRPC server with the health service,
// registered under name/id.
type service struct {
	id   string
	grpc *grpc.Server
	reg  *registry.Registration
	done chan error
}

// startService listens, serves, and registers the instance at the address
// it actually listens on. It stays registered (re-registering after any
// loss) until stop.
func startService(ctx context.Context, r *registry.Registry, name, id, listen string, ttl time.Duration) (*service, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	s := &service{id: id, grpc: grpc.NewServer(), done: make(chan error, 1)}
	healthpb.RegisterHealthServer(s.grpc, health.NewServer())
	go func() { s.done <- s.grpc.Serve(ln) }()
	s.reg, err = r.Register(ctx, registry.Service{Name: name, ID: id, Addr: ln.Addr().String(),
		Metadata: map[string]string{"started": time.Now().UTC().Format(time.RFC3339)}}, ttl)
	if err != nil {
		s.grpc.Stop()
		return nil, err
	}
	return s, nil
}

// stop deregisters first (so clients stop picking this instance), then
// lets in-flight calls finish.
func (s *service) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.reg.Deregister(ctx)
	s.grpc.GracefulStop()
	<-s.done
	return err
}

// runService is the -role service mode: serve until interrupted.
func runService(ctx context.Context, r *registry.Registry, name, id, listen string, ttl time.Duration, out io.Writer) error {
	s, err := startService(ctx, r, name, id, listen, ttl)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "service %s/%s registered at %s (key %s); Ctrl-C to stop\n", name, id, s.reg.Service().Addr, s.reg.Key())
	<-ctx.Done()
	if err := s.stop(); err != nil {
		return err
	}
	fmt.Fprintf(out, "service %s/%s deregistered\n", name, id)
	return nil
}
