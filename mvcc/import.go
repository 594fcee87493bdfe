package mvcc

import (
	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/storage"
)

// importCommitEvery bounds an Importer's batch: it commits every so many
// versions, so memory does not grow with the store restored.
const importCommitEvery = 10000

// Importer writes versions restored from a backup straight into a new
// store's keyspaces, in revision order, as Put and DeleteRange would have
// written them. It is for an empty store that nothing else uses yet (cairn
// snapshot restore); its batches commit without sync: the caller makes the
// import durable (a flush of a store without WAL, as restore opens it).
type Importer struct {
	db  *pebble.DB
	b   *pebble.Batch
	n   int
	rev int64 // the newest revision added
	// scratch buffers for keys and records: the batch copies what it is given.
	kbuf, vbuf []byte
}

// NewImporter starts an import into db.
func NewImporter(db *pebble.DB) *Importer { return &Importer{db: db, b: db.NewBatch()} }

// Add writes one version: kv at revision (kv.ModRevision, sub), or a
// tombstone of kv.Key there. Versions must come in revision order. Events
// are written only at or above compacted, which must be the revision up to
// which the source's compaction had finished: a watcher may start at the
// compacted revision itself, older ones get ErrCompacted, and a compaction
// still to run finds the versions it removes through their events.
func (im *Importer) Add(kv *mvccpb.KeyValue, sub int64, tombstone bool, compacted int64) error {
	rev := kv.ModRevision
	rec := record{tombstone: tombstone}
	typ := byte(mvccpb.Event_DELETE)
	if !tombstone {
		rec = record{createRevision: kv.CreateRevision, version: kv.Version, lease: kv.Lease, value: kv.Value}
		typ = byte(mvccpb.Event_PUT)
	}
	im.kbuf, im.vbuf = versionKey(im.kbuf[:0], kv.Key, rev, sub), appendRecord(im.vbuf[:0], rec)
	if err := im.b.Set(im.kbuf, im.vbuf, nil); err != nil {
		return err
	}
	im.kbuf = latestKey(im.kbuf[:0], kv.Key)
	if tombstone {
		if err := im.b.Delete(im.kbuf, nil); err != nil {
			return err
		}
	} else {
		live := rec
		live.modRevision = rev
		im.vbuf = appendRecord(im.vbuf[:0], live)
		if err := im.b.Set(im.kbuf, im.vbuf, nil); err != nil {
			return err
		}
	}
	if rev >= compacted {
		im.kbuf = storage.AppendUint64(storage.AppendUint64(append(im.kbuf[:0], storage.KeyspaceEvents), uint64(rev)), uint64(sub))
		im.vbuf = appendEvent(im.vbuf[:0], typ, kv.Key)
		if err := im.b.Set(im.kbuf, im.vbuf, nil); err != nil {
			return err
		}
	}
	im.rev = max(im.rev, rev)
	if im.n++; im.n%importCommitEvery == 0 {
		return im.flush()
	}
	return nil
}

func (im *Importer) flush() error {
	if err := im.b.Commit(pebble.NoSync); err != nil {
		return err
	}
	im.b.Close()
	im.b = im.db.NewBatch()
	return nil
}

// Rev is the newest revision added so far (0: none).
func (im *Importer) Rev() int64 { return im.rev }

// Finish records the store's revision (at least 1) and, if compacted > 0,
// its compacted revision, and commits (without sync). compactDone is the
// revision up to which old versions are already gone (a backup holds only
// what its compaction kept; a store whose compaction was still running
// holds more, which the compactor removes after start).
func (im *Importer) Finish(rev, compacted, compactDone int64) error {
	defer im.b.Close()
	if err := im.b.Set(metaRev, encodeInt(max(rev, 1)), nil); err != nil {
		return err
	}
	if compacted > 0 {
		if err := im.b.Set(metaCompact, encodeInt(compacted), nil); err != nil {
			return err
		}
		if err := im.b.Set(metaCompactDone, encodeInt(min(compactDone, compacted)), nil); err != nil {
			return err
		}
	}
	return im.b.Commit(pebble.NoSync)
}

// ForEachLive calls fn with every live key and its lease, in key order, as
// of r.
func ForEachLive(r pebble.Reader, fn func(key []byte, lease int64) error) error {
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceLatest},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceLatest),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		key, err := decodeLatestKey(it.Key())
		if err != nil {
			return err
		}
		rec, err := decodeRecord(it.Value())
		if err != nil {
			return err
		}
		if err := fn(key, rec.lease); err != nil {
			return err
		}
	}
	return it.Error()
}
