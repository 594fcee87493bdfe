// Package api is Cairn's gRPC surface: etcd's v3 services over the
// etcdserverpb types. It validates requests as etcd's v3rpc does, calls the
// member through narrow interfaces declared here, fills response headers,
// and maps every error to the rpctypes error etcd clients expect.
//
// While auth is enabled it finds the caller of each call (the token in
// gRPC metadata "token" or "authorization", else with --client-cert-auth
// the verified certificate's CN), checks what etcd checks at its API layer
// (reads, watch creation, lease keep-alives and TTLs, admin calls), and
// hands the caller to the member for the proposals whose writes apply
// checks (etcd's authApplierV3).
package api
