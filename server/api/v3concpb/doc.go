// Package v3concpb holds the wire types and gRPC service descriptions of
// etcd's concurrency services: v3lockpb.Lock (Lock, Unlock) and
// v3electionpb.Election (Campaign, Proclaim, Leader, Observe, Resign).
//
// The messages are hand-written to match etcd's v3lock.proto and
// v3election.proto field for field (names, numbers, types), so clients
// generated from those files talk to Cairn unchanged. Each type marshals
// itself with protowire, through Marshal and Unmarshal methods, which is
// what Cairn's gRPC codec (pkg/codec) dispatches on; embedded
// etcdserverpb.ResponseHeader and mvccpb.KeyValue fields are generated
// messages and go through package proto. Unmarshal skips unknown fields,
// rejects a field of these types sent with the wrong wire type, and copies
// bytes out of its input. (Inside an embedded ResponseHeader or KeyValue,
// package proto keeps such a field as an unknown field instead.)
package v3concpb
