package registry_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
	"github.com/cairn-kv/cairn/client/registry"
)

// startExampleServer runs a fresh in-process Cairn for one example. Real
// programs connect to a running cluster instead.
func startExampleServer() (endpoints []string, stop func()) {
	srv, err := cairntest.StartServer()
	if err != nil {
		log.Fatal(err)
	}
	return srv.Endpoints(), func() { srv.Close() }
}

func ExampleRegistry_Register() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	r := registry.New(c, registry.Options{
		OnStatus: func(s registry.Status) { fmt.Println(s.Service.ID, s.State) },
	})
	reg, err := r.Register(ctx, registry.Service{
		Name: "greeter", ID: "a", Addr: "127.0.0.1:50051", Metadata: map[string]string{"version": "1.2"},
	}, 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	kv, _ := c.Get(ctx, reg.Key())
	fmt.Println(kv.Key, kv.Value)

	// On shutdown: revoke the lease so the instance disappears at once.
	if err := reg.Deregister(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// a registered
	// /cairn/services/greeter/a {"name":"greeter","id":"a","addr":"127.0.0.1:50051","metadata":{"version":"1.2"}}
	// a deregistered
}

func ExampleRegistry_Discover() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, _ := client.New(client.Config{Endpoints: endpoints})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := registry.New(c, registry.Options{})

	changes := make(chan registry.Update, 10)
	in, err := r.Discover(ctx, "greeter", func(u registry.Update) { changes <- u })
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	fmt.Println("instances:", len((<-changes).Instances))

	a, _ := r.Register(ctx, registry.Service{Name: "greeter", ID: "a", Addr: "10.0.0.1:80"}, 10*time.Second)
	u := <-changes
	fmt.Println("added:", u.Added[0].ID, u.Added[0].Addr)
	a.Deregister(ctx)
	u = <-changes
	fmt.Println("removed:", u.Removed[0].ID, "; left:", len(u.Instances))
	// Output:
	// instances: 0
	// added: a 10.0.0.1:80
	// removed: a ; left: 0
}

func ExampleRegistry_ResolverBuilder() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, _ := client.New(client.Config{Endpoints: endpoints})
	defer c.Close()
	r := registry.New(c, registry.Options{})

	// Calls on conn go round robin to the registered instances of greeter.
	conn, err := grpc.NewClient("cairn:///greeter",
		grpc.WithResolvers(r.ResolverBuilder()),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println(conn.Target())
	// Output:
	// cairn:///greeter
}
