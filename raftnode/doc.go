// Package raftnode is the only user of raft.RawNode in Cairn: one goroutine
// runs raft's Ready loop (persist, send, hand over committed entries,
// Advance), and the Raft log and hard state live in a write-ahead log of
// their own (package wal; docs/storage.md).
//
// Entries and the hard state of one Ready are appended to the WAL and
// synced (fdatasync) before anything from that Ready is applied or
// acknowledged; raft's in-memory MemoryStorage mirrors the log from the
// last compaction on. The state LSM commits unsynced; start-up replays the
// log from the state's applied index, and refuses to start if the state is
// beyond the log's end or before its start. A log compaction waits for the
// state LSM to flush before the WAL records it and lets go of segments.
//
// In the state LSM, 'h' "snapshot" holds the raftpb.SnapshotMetadata of the
// last snapshot installed from a leader (the snapshot file carries it, so it
// lands with the state); when it is newer than the WAL's last snapshot
// record (a crash between the two), start-up takes it. Format-1 data dirs,
// whose log was in the 'r' and 'h' keyspaces, are converted at start-up.
//
// Conf changes: the apply loop decides each committed conf change (see
// Apply.Decide) and the Raft loop applies its verdict, waiting for it
// before it acknowledges the Ready; on restart, the verdicts recorded with
// the applied state (Config.ConfVerdict) rebuild Raft's configuration.
//
// Snapshots: the leader compacts its log every SnapshotCount applied
// entries, keeping CatchUpEntries. When Raft needs to send a member what is
// gone, the MsgSnap goes out on SnapshotRequests; the server answers with
// the state at its applied index (the metadata it sends says so) through
// the transport. On the receiving member ReceiveSnapshot writes the stream
// into one sstable that also clears the old state and carries the new
// snapshot metadata, keeps it under the snapshot's (index, term) (a
// message never names a file), then steps the message; Step drops any
// MsgSnap that did not come this way; once Raft accepts it, the
// apply loop installs it (one Pebble ingest) after every earlier entry,
// and the Raft loop waits for that, records the install in the WAL (which
// voids the log before it), and goes on.
//
// Testing: the loop ticks on Config.Clock, and reports each step it takes
// for a Ready to a trace hook that only tests set. The interaction tests
// (interaction_test.go, testdata/interaction/*.txt, etcd-io/raft's style)
// drive a few nodes on a fake clock, deliver their messages one at a time,
// print each node's steps, and check raft's ordering contract on every
// trace; `go test -run TestInteraction -rewrite` regenerates them.
package raftnode
