// Package v3concpb holds the wire types and gRPC service descriptions of
// etcd's concurrency services: v3lockpb.Lock (Lock, Unlock) and
// v3electionpb.Election (Campaign, Proclaim, Leader, Observe, Resign).
//
// The messages are hand-written to match etcd's v3lock.proto and
// v3election.proto field for field (names, numbers, types), so clients
// generated from those files talk to Cairn unchanged. Each type marshals
// itself with protowire, which is what Cairn's gRPC codec (pkg/codec)
// dispatches on; embedded etcdserverpb.ResponseHeader and mvccpb.KeyValue
// fields use their own generated Marshal and Unmarshal. Unmarshal skips
// unknown fields, rejects a known field sent with the wrong wire type (as
// etcd's generated code does), and copies bytes out of its input.
package v3concpb
