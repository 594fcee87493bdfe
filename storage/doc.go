// Package storage is Cairn's on-disk engine: one Pebble database per member,
// divided into keyspaces by a one-byte prefix, with an order-preserving
// escape for arbitrary user keys.
//
// Keyspaces (the byte each key starts with):
//
//	'r' index(8, big-endian)            raft log entry (raftpb.Entry)
//	'h' name                            raft hard state, conf state, snapshot metadata
//	'm' name                            meta: applied index, revisions, IDs
//	'k' esc(key) ^rev(8) sub(8)         every version of a key (mvcc)
//	'l' esc(key)                        the live version of a key (mvcc)
//	'e' rev(8) sub(8)                   events in revision order (mvcc)
//	'L' id / 'a' id key                 leases and their attachments
//	'u' …, 'c' …                        auth and membership
//	'A' member(8) type(4)               an active alarm (package alarm)
//
// A data directory holds a marker file, cairn.dir, naming its format; Open
// refuses a directory that has content but no marker (another program's,
// such as etcd's member/ layout) rather than writing over it.
package storage
