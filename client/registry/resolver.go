package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/internal/backoff"
)

// Scheme is the gRPC target scheme the resolver serves: "cairn:///<name>".
const Scheme = "cairn"

// roundRobin is the service config the resolver hands to gRPC. A service
// config given with grpc.WithDefaultServiceConfig does not override it;
// grpc.WithDisableServiceConfig does.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// ResolverBuilder returns a gRPC resolver.Builder for targets
// "cairn:///<name>": each resolves to the addresses of the instances of
// service name, kept current by Discover, balanced round_robin. Pass it
// to one connection with grpc.WithResolvers, or install it process-wide
// with RegisterResolver.
//
// While the instances cannot be read (the cluster is unreachable), the
// resolver reports the error to gRPC and retries with backoff. When a
// service has no instances, RPCs fail with codes.Unavailable (or wait,
// with grpc.WaitForReady) until one registers.
func (r *Registry) ResolverBuilder() resolver.Builder { return &builder{r: r} }

// RegisterResolver installs r's resolver for the "cairn" scheme in gRPC's
// global registry, so that plain grpc.NewClient("cairn:///name") uses it.
// Like resolver.Register, call it only during initialization.
func RegisterResolver(r *Registry) { resolver.Register(r.ResolverBuilder()) }

type builder struct{ r *Registry }

func (b *builder) Scheme() string { return Scheme }

func (b *builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	name := target.Endpoint()
	if name == "" {
		return nil, fmt.Errorf("registry: target %q names no service (want cairn:///<name>)", target.URL.String())
	}
	sc := cc.ParseServiceConfig(roundRobin)
	ctx, cancel := context.WithCancel(context.Background())
	rs := &grpcResolver{cancel: cancel, done: make(chan struct{})}
	go rs.run(ctx, b.r, name, cc, sc)
	return rs, nil
}

// grpcResolver feeds one gRPC ClientConn with a Discover'd set.
type grpcResolver struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (rs *grpcResolver) run(ctx context.Context, r *Registry, name string, cc resolver.ClientConn, sc *serviceconfig.ParseResult) {
	defer close(rs.done)
	update := func(u Update) {
		addrs := make([]resolver.Address, 0, len(u.Instances))
		for _, s := range u.Instances {
			addrs = append(addrs, resolver.Address{Addr: s.Addr})
		}
		// An error here means the balancer rejected the state (an empty
		// set, say); the next change brings a new one.
		_ = cc.UpdateState(resolver.State{Addresses: addrs, ServiceConfig: sc})
	}
	var bo backoff.Backoff
	for {
		in, err := r.Discover(ctx, name, update)
		if err == nil {
			<-in.Done()
			return
		}
		if ctx.Err() != nil || errors.Is(err, client.ErrClosed) {
			return
		}
		cc.ReportError(err)
		if !bo.Wait(ctx) {
			return
		}
	}
}

// ResolveNow does nothing: the set is pushed as it changes.
func (rs *grpcResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close stops watching and waits for the resolver's goroutine.
func (rs *grpcResolver) Close() {
	rs.once.Do(rs.cancel)
	<-rs.done
}
