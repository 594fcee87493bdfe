// Package mvcc is Cairn's multi-version key-value state machine: every write
// transaction makes one new store revision, and every version of every key
// stays readable until compaction, ordered on disk in Pebble.
//
// On-disk keys (see package storage for the keyspace bytes):
//
//	'k' esc(key) ^rev ^sub  -> version record (create_revision, version, lease, value) or tombstone
//	'l' esc(key)            -> live record of the key (with its mod_revision)
//	'e' rev sub             -> event record (type, key), for watch catch-up in revision order
//	'm' "rev"               -> current store revision
//	'm' "compact"           -> compacted revision (reads below it fail with ErrCompacted)
//	'm' "compact-done"      -> revision up to which old versions are physically removed
//	'm' "compact-sum"       -> sum of the HashKV digests of the state at compact-done
//	'm' "compact-progress"  -> a physical compaction in progress: its span, next event, sums
//
// Physical compaction is driven by the events of the revisions it compacts,
// so its work is proportional to them, not to the keys in the store; it
// computes the HashKV hash of each compaction in the same pass, and keeps
// the sum HashKV starts from (see ReadTxn.HashKV).
//
// Writes go through a Batch that the apply loop owns (it also writes the
// applied index into the same Pebble batch); reads go through a ReadTxn, a
// consistent snapshot at one revision. Scan is the primitive read: it hands
// each live key of a range, forward or in reverse, to a callback without
// copying it, so callers copy only what they keep (a Range's response, a
// RangeStream's chunk) and memory does not grow with the range. Neither holds a lock for longer than
// it takes to commit a batch or take a snapshot.
//
// Semantics follow etcd's mvcc package: a write transaction that changes
// anything bumps the revision by one, its changes take sub-revisions 0, 1,
// ...; a delete resets version to 0 and the next put re-creates the key.
package mvcc
