// Package raftnode is the only user of raft.RawNode in Cairn: one goroutine
// runs raft's Ready loop (persist, send, hand over committed entries,
// Advance), and the Raft log and hard state live in Pebble.
//
// On-disk keys (package storage keyspaces):
//
//	'r' index        raftpb.Entry, deleted below the last log compaction
//	'h' "hardstate"  raftpb.HardState
//	'h' "snapshot"   raftpb.SnapshotMetadata of the last log compaction
//
// Entries and the hard state of one Ready are written in one synced Pebble
// batch before anything from that Ready is applied or acknowledged; raft's
// in-memory MemoryStorage mirrors the log from the last compaction on.
package raftnode
