// Package apply is Cairn's deterministic state machine step: given
// committed Raft entries and a storage batch, it applies each request to
// mvcc (and, later, lease, auth and membership) and produces the response
// each waiting client gets. It has no goroutines, clock or network.
//
// It also holds the read side of the KV API (Range and read-only Txn over a
// read view), so reads and writes share one implementation of etcd's rules.
package apply
