// Package registry registers service instances in Cairn (or etcd) under
// leases and discovers them, with a gRPC resolver on top.
//
// # Key layout
//
// Each instance is one key holding its Service as JSON, attached to the
// instance's lease:
//
//	/cairn/services/<name>/<id> → {"name":"greeter","id":"a","addr":"10.0.0.1:8080","metadata":{"zone":"z1"}}
//
// The prefix (/cairn/services/) is Options.Prefix. Names and IDs must not
// contain '/'. Anything that writes this layout (another language's SDK,
// etcdctl put --lease) is discovered too.
//
// # Registering
//
//	reg, err := registry.New(c, registry.Options{}).Register(ctx, registry.Service{
//		Name: "greeter", ID: "a", Addr: "10.0.0.1:8080"}, 10*time.Second)
//
// Register grants a lease of the TTL, writes the key and keeps the lease
// alive. If the lease is lost (expired during a partition, revoked by an
// operator) or the key is deleted, the Registration registers again by
// itself under a new lease, retrying with exponential backoff until it
// succeeds, and reports each change to Options.OnStatus. When ctx ends, or
// on Deregister, it revokes its lease, so the instance disappears at once
// rather than a TTL later.
//
// # Discovering
//
// Discover reads the instances of a service (a snapshot) and watches the
// prefix from the snapshot's revision on, so the set it keeps is never
// missing a change; after a compaction it re-reads and reports the
// difference. onChange hears each change with the whole set and the delta.
//
// # gRPC
//
// ResolverBuilder resolves targets "cairn:///<name>" to the live instances'
// addresses and selects the round_robin balancer:
//
//	conn, err := grpc.NewClient("cairn:///greeter",
//		grpc.WithResolvers(reg.ResolverBuilder()),
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
package registry
