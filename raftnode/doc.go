// Package raftnode is the only user of raft.RawNode in Cairn: one goroutine
// runs raft's Ready loop (persist, send, hand over committed entries,
// Advance), and the Raft log and hard state live in Pebble.
//
// On-disk keys (package storage keyspaces):
//
//	'r' index        raftpb.Entry, deleted below the last log compaction
//	'h' "hardstate"  raftpb.HardState
//	'h' "snapshot"   raftpb.SnapshotMetadata of the last log compaction
//	                 or installed snapshot
//
// Entries and the hard state of one Ready are written in one synced Pebble
// batch before anything from that Ready is applied or acknowledged; raft's
// in-memory MemoryStorage mirrors the log from the last compaction on.
//
// Snapshots: the leader compacts its log every SnapshotCount applied
// entries, keeping CatchUpEntries. When Raft needs to send a member what is
// gone, the MsgSnap goes out on SnapshotRequests; the server answers with
// the state at its applied index (the metadata it sends says so) through
// the transport. On the receiving member ReceiveSnapshot writes the stream
// into one sstable that also clears the old state and log and carries the
// new snapshot metadata, then steps the message; once Raft accepts it, the
// apply loop installs it (one Pebble ingest) after every earlier entry,
// and the Raft loop waits for that before it goes on.
package raftnode
