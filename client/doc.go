// Package client is Cairn's Go SDK: key-value reads and writes with
// revisions, typed JSON, compare-and-swap, watches that survive
// disconnects and compactions, leases, locks and elections, all on top of
// the official etcd client (go.etcd.io/etcd/client/v3), so it works
// against Cairn and etcd alike. It imports no server code.
//
// Sub-packages build on it: registry (service registration, discovery and
// a gRPC resolver), config (typed configuration with hot reload) and
// cairntest (a real in-process server for tests).
//
// # Connecting
//
// From Go, a connection string, or the environment:
//
//	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:2379"}})
//	c, err := client.Connect("Server=10.0.0.1:2379|10.0.0.2:2379,DialTimeout=5000")
//	c, err := client.NewFromEnv() // CAIRN_ENDPOINTS, CAIRN_DIAL_TIMEOUT, ...
//	defer c.Close()
//
// The zero Config connects to 127.0.0.1:2379. Invalid settings fail with a
// *FieldError naming the field, key or variable. Etcd returns the
// underlying *clientv3.Client for everything else (Txn, Compact,
// Maintenance), and Wrap adopts an existing one.
//
// # Keys and revisions
//
// Every write returns the store revision it created; reads return
// KeyValue with CreateRevision, ModRevision, Version and Lease. A Range
// from GetPrefix carries the revision it was read at, so a watch can start
// right after it. CompareAndSwap writes only if a key's ModRevision is
// still the one the caller read (0: only if absent); PutJSON, GetJSON and
// CompareAndSwapJSON do the same with encoding/json values.
//
// List and ListSeq (an iter.Seq2) stream a prefix of any size through
// KV.RangeStream, in constant memory on both sides, and fall back to pages
// of Range at one revision on servers without RangeStream.
//
// # Watching
//
// Watch and WatchPrefix call a function with each change, in revision
// order, on one goroutine per watcher, until the context ends. Each Event
// says whether it created, modified or deleted its key. After a
// disconnect or server restart the watch resumes from the revision after
// the last one delivered, so nothing is lost or repeated; if that revision
// has been compacted meanwhile, the watcher re-reads the keys and delivers
// an EventReset carrying the current state, then continues. WithInitialState
// starts with such a reset (snapshot + watch).
//
// # Leases, locks and elections
//
// LeaseGrant, LeaseKeepAlive (until the context ends; loss reported as
// ErrLeaseLost), LeaseKeepAliveOnce, LeaseRevoke and LeaseInfo manage
// leases; WithLease attaches keys. TTLs are time.Durations rounded up to
// whole seconds, the server's unit.
//
// Lock, TryLock and Campaign use clientv3/concurrency, each on a session
// of its own whose lease loss closes Lost instead of going unnoticed. A
// lease-based lock cannot guarantee mutual exclusion by itself (a paused
// or partitioned holder may not learn in time that its lease expired;
// see Jepsen's analysis of etcd 3.4.3): guard protected writes with
// Lock.IsOwner or Leadership.IsLeader in a Txn, or pass FencingToken to
// the resource.
//
// # Errors
//
// Sentinel errors (ErrNotFound, ErrLeaseNotFound, ErrLeaseLost, ErrLocked,
// ErrNoLeader, ErrNotLeader, ErrClosed...) are matched with errors.Is;
// server errors are clientv3's, wrapped with the operation. Every call
// takes a context, which bounds it: clientv3 retries reads while the
// cluster is unreachable, so a call without a deadline may wait forever.
package client
