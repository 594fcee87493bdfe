// Package storage is Cairn's on-disk engine: one Pebble database per member,
// divided into keyspaces by a one-byte prefix, with an order-preserving
// escape for arbitrary user keys.
//
// Keyspaces (the byte each key starts with):
//
//	'r' index(8, big-endian)            format 1 only: raft log entry (now in package wal)
//	'h' "snapshot"                      metadata of the last installed Raft snapshot
//	'm' name                            meta: applied index, revisions, IDs
//	'k' esc(key) ^rev(8) sub(8)         every version of a key (mvcc)
//	'l' esc(key)                        the live version of a key (mvcc)
//	'e' rev(8) sub(8)                   events in revision order (mvcc)
//	'L' id / 'a' id key                 leases and their attachments
//	'u' …, 'c' …                        auth and membership
//	'A' member(8) type(4)               an active alarm (package alarm)
//
// A data directory holds db/ (Pebble), wal/ (the Raft log, unless
// --wal-dir puts it elsewhere), snap/ (snapshots being received) and a
// marker file, cairn.dir, naming its format (2; format 1 kept the Raft log
// in the r and h keyspaces and is converted at start-up). Open refuses a
// Pebble MANIFEST damaged before its end, and a directory that has
// content but no marker (another program's, such as etcd's member/ layout)
// rather than writing over it.
package storage
