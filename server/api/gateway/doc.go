// Package gateway serves etcd's gRPC-JSON gateway: the /v3/... HTTP routes
// through which curl, APISIX and other HTTP clients reach the v3 API.
//
// Like etcd's (server/embed/serve.go), it is a grpc-gateway v2 ServeMux
// whose handlers forward each request over a gRPC client connection to the
// member's own client listener, so every request passes the same
// interceptors, limits and authentication as a gRPC client's. The KV,
// Watch, Lease, Cluster, Maintenance and Auth routes are the handlers
// generated in go.etcd.io/etcd/api/v3/etcdserverpb/gw; the Lock and
// Election routes, whose generated handlers live in etcd's server module,
// are written here over dynamic messages built from descriptors of etcd's
// v3lock.proto and v3election.proto (concurrency.go).
//
// JSON is protojson with proto field names, unpopulated fields omitted and
// unknown fields discarded (etcd's marshaler options): bytes are base64,
// 64-bit integers strings. Errors are grpc-gateway's
// {"error","code","message"} bodies with its gRPC-to-HTTP status mapping;
// streaming routes (/v3/watch, /v3/lease/keepalive, /v3/election/observe)
// answer newline-delimited {"result":...} objects.
package gateway
