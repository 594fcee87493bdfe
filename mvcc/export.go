package mvcc

import (
	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/storage"
)

// Version is one stored version of a key, as a backup writes it: KV (for a
// tombstone, only KV.Key and KV.ModRevision are set) at revision
// (KV.ModRevision, Sub).
type Version struct {
	KV        *mvccpb.KeyValue
	Sub       int64
	Tombstone bool
}

// ExportMeta is the revision state of a store as of a Pebble reader.
type ExportMeta struct {
	// Rev is the current store revision; Compacted the compacted revision
	// (reads below it fail), 0 if never compacted.
	Rev, Compacted int64
}

// ReadExportMeta reads the revision and compacted revision from r.
func ReadExportMeta(r pebble.Reader) (ExportMeta, error) {
	rev, err := readMetaInt(r, metaRev, 1)
	if err != nil {
		return ExportMeta{}, err
	}
	compacted, err := readMetaInt(r, metaCompact, 0)
	if err != nil {
		return ExportMeta{}, err
	}
	return ExportMeta{Rev: rev, Compacted: max(compacted, 0)}, nil
}

// ForEachVersion calls fn for every version a read can still reach, as of
// reader r (a Pebble snapshot, for a consistent view), in storage order:
// by key, newest revision first. Versions that compaction removed logically
// but not yet physically are skipped: per key, only versions above
// compacted and the newest at or below it (unless a tombstone), as etcd's
// compaction keeps. Every call gets slices of its own.
func ForEachVersion(r pebble.Reader, compacted int64, fn func(v Version) error) error {
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceVersions},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceVersions),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	var cur []byte // the key whose versions are being read
	done := false  // cur's newest version at or below compacted was seen
	for ok := it.First(); ok; ok = it.Next() {
		key, rev, sub, err := decodeVersionKey(it.Key())
		if err != nil {
			return err
		}
		if cur == nil || string(key) != string(cur) {
			cur, done = append(cur[:0], key...), false
		}
		if done {
			continue
		}
		rec, err := decodeRecord(it.Value())
		if err != nil {
			return err
		}
		if rev <= compacted {
			done = true
			if rec.tombstone {
				continue
			}
		}
		kv := &mvccpb.KeyValue{Key: append([]byte(nil), key...), ModRevision: rev}
		if !rec.tombstone {
			kv.CreateRevision, kv.Version, kv.Lease = rec.createRevision, rec.version, rec.lease
			kv.Value = append([]byte(nil), rec.value...)
		}
		if err := fn(Version{KV: kv, Sub: sub, Tombstone: rec.tombstone}); err != nil {
			return err
		}
	}
	return it.Error()
}
