// Package api is Cairn's gRPC surface: etcd's v3 services over the
// etcdserverpb types. It validates requests as etcd's v3rpc does, calls the
// member through narrow interfaces declared here, fills response headers,
// and maps every error to the rpctypes error etcd clients expect.
package api
