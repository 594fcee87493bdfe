// Package v2http serves etcd's v2 keys API (/v2/keys, /v2/members,
// /v2/machines) emulated on the v3 store, as etcd 3.5 served it with
// --enable-v2: the same routes, parameters, actions, node JSON, error codes
// and messages, HTTP statuses and X-Etcd-Index / X-Raft-Index / X-Raft-Term
// headers. There is no second store: every v2 operation is v3 reads and one
// v3 Txn through the member's client to itself (Options.Client).
//
// Layout under Prefix ("_cairn/v2/") in the v3 keyspace:
//
//	_cairn/v2/k/DDD/a/b      file /a/b (DDD: its depth, 3 digits: 002)
//	_cairn/v2/k/DDD/a/b/     directory /a/b
//	_cairn/v2/act            the action of the last v2 write (JSON)
//
// The depth makes a directory's children one prefix (k/003/a/b/), so a
// listing reads one level at a time. A node's value is encodeValue's: the
// created index (0: this version's own revision), the expiration, then the
// file's bytes.
//
// Indexes are v3 revisions: modifiedIndex is the node's mod revision,
// createdIndex the revision that created it (a set replaces a node, so it
// creates anew, as v2store), X-Etcd-Index the store revision. Revisions
// also count v3 writes, so v2 indexes have gaps etcd's would not.
//
// TTLs are v3 leases: a write with ttl grants a lease of that many seconds
// (at least 1, raised to the server's minimum) and attaches the node to
// it; the node records its expiration time for "expiration" and "ttl".
// The lease's expiry deletes the key in a revision without an act write,
// which watchers report as "expire".
//
// Writes are serializable: each reads what it decides on at one revision
// and commits a Txn guarded by the mod revision of act (every v2 write
// writes it) and of the nodes it changes; a failed guard retries.
//
// Watches (wait=true) are v3 watches of the prefix from waitIndex; the
// event history is the v3 history, so error 401 ("The event in requested
// index is outdated and cleared") answers a waitIndex below the compacted
// revision, where etcd kept the last 1000 events.
package v2http
