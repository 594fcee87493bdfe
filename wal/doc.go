// Package wal is Cairn's write-ahead log for Raft: the log entries, the
// hard state and the snapshot points of one member, in preallocated segment
// files of CRC-checked records, synced with fdatasync once per Ready.
//
// # Files
//
// A WAL is a directory of segments named %016x-%016x.wal: the segment's
// sequence number and the log index expected next when it was created (as
// etcd's WAL). A segment is created as a .tmp file, preallocated to
// Options.SegmentBytes, given its header records, synced and renamed into
// place, so a segment that exists is whole. Sequence numbers are
// contiguous; a gap means a segment was lost and Open refuses.
//
// # Records
//
// Every record is
//
//	length  uint32, little-endian: bytes of type and data
//	crc     uint32, little-endian: CRC-32C (Castagnoli) of type and data
//	type    byte
//	data    length-1 bytes
//
// Types: a segment header (magic, format version, sequence number); a Raft
// entry (raftpb.Entry); a hard state (raftpb.HardState); a snapshot point
// (raftpb.SnapshotMetadata: the log is compacted up to it, entries above it
// stay); a snapshot install (raftpb.SnapshotMetadata: the log is replaced,
// every entry written before it is void). Each new segment begins with its
// header, the current snapshot point and the current hard state, so
// releasing older segments never loses either. The unused rest of a
// segment is zeros.
//
// # Recovery
//
// Open reads every segment and is strict, as etcd's WAL: a torn final
// record in the newest segment (a write cut short by a crash: partial, a
// bad CRC or zeros, with nothing but zeros after it, or a file cut short)
// is truncated away with a log line naming the file and offset
// ("repairing"). Anything else — a record failing its CRC with data after
// it, a zeroed region with data after it, damage in an older segment, a
// gap in the indexes, a term going backwards, a missing segment — makes
// Open return a *CorruptError naming the file, the offset and the last
// good index, and nothing is changed on disk.
//
// # Releasing segments
//
// ReleaseTo(index) lets go of every segment (oldest first, never the one
// being written) whose entries are all at or below index; the caller
// promises the state machine has durably applied them. Released segments
// are deleted once more than MaxSegments files exist (etcd --max-wals;
// zero keeps them all).
package wal
