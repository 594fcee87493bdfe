// Package backup writes and reads backups in etcd's snapshot format, so
// that etcd's tools restore what Cairn saves and Cairn restores what etcd
// saves: a bbolt file with etcd 3.6's buckets and encodings (the key bucket
// by 17-byte revision keys, 18 with a trailing 't' for a tombstone, values
// mvccpb.KeyValue; meta with consistent_index, term, confState,
// storageVersion and the compaction revisions; lease, members, cluster,
// auth), followed by the SHA-256 of the file's bytes, as `etcdctl snapshot
// save` stores it.
//
// A backup is written from a Pebble snapshot of the member's state, so
// writes go on meanwhile; memory stays bounded whatever the store's size.
package backup
