package mvcc

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash"
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// KVHash is a HashKV answer: the hash of the versions at or below Revision
// that a read could see with the store compacted at CompactRevision.
type KVHash struct {
	Hash            uint32
	CompactRevision int64
	Revision        int64
}

// keptHashes is how many compactions' hashes the store remembers (etcd: 10).
const keptHashes = 10

// HashKV answers etcd's Maintenance.HashKV for revision rev (0: current),
// from a consistent view. For the revision of one of the last compactions
// it returns, as etcd does, the hash that compaction computed before it
// removed anything: of the versions since the compaction before it (whose
// revision is its CompactRevision), so that members can compare every
// compacted span (etcd's compact hash check). Otherwise see ReadTxn.HashKV.
func (s *Store) HashKV(ctx context.Context, rev int64) (KVHash, error) {
	if rev > 0 {
		s.hashes.Lock()
		for _, h := range s.hashes.list {
			if h.Revision == rev {
				s.hashes.Unlock()
				return h, nil
			}
		}
		s.hashes.Unlock()
	}
	rt := s.Read()
	defer rt.End()
	hash, hashRev, err := rt.HashKV(ctx, rev)
	if err != nil {
		return KVHash{}, err
	}
	return KVHash{Hash: hash, CompactRevision: rt.compactRev, Revision: hashRev}, nil
}

// compactionHash records the hash of the versions up to rev as the store
// is compacted at prev, before a compaction at rev removes any of them.
// Only the compactor writes below rev, so the live database is a
// consistent view of them.
func (s *Store) compactionHash(ctx context.Context, rev, prev int64) error {
	h := newVersionHash()
	if err := hashVersions(ctx, s.eng.DB, rev, prev, h.add); err != nil {
		return err
	}
	s.hashes.Lock()
	defer s.hashes.Unlock()
	s.hashes.list = append(s.hashes.list, KVHash{Hash: h.sum(), CompactRevision: prev, Revision: rev})
	if n := len(s.hashes.list); n > keptHashes {
		s.hashes.list = append(s.hashes.list[:0], s.hashes.list[n-keptHashes:]...)
	}
	return nil
}

// versionHash is the CRC-32C of HashKV: over, in key and revision order,
// each counted version's key, revision, sub-revision and stored record.
type versionHash struct{ h hash.Hash32 }

func newVersionHash() versionHash {
	h := crc32.New(castagnoli)
	h.Write([]byte("key"))
	return versionHash{h}
}

func (v versionHash) add(key []byte, rev, sub int64, rec []byte) {
	var hdr [binary.MaxVarintLen64 * 3]byte
	b := binary.AppendUvarint(hdr[:0], uint64(len(key)))
	v.h.Write(b)
	v.h.Write(key)
	b = binary.AppendUvarint(hdr[:0], uint64(rev))
	b = binary.AppendUvarint(b, uint64(sub))
	b = binary.AppendUvarint(b, uint64(len(rec)))
	v.h.Write(b)
	v.h.Write(rec)
}

func (v versionHash) sum() uint32 { return v.h.Sum32() }

// HashKV hashes the store's versions up to revision rev (0: the current
// one), for comparing members, as etcd's Maintenance.HashKV: every version
// at or below rev that a read could still see, that is each version after
// the compacted revision and, per key, the newest version at or below it
// unless that is a deletion. Versions compaction has made unreadable count
// for nothing whether or not they are physically gone yet, so members agree
// whatever the progress of their background compaction. The hash is CRC-32C
// over, in key and revision order, each key, revision, sub-revision and
// stored record. It returns ErrFutureRev and ErrCompacted as Range does,
// and the revision hashed.
func (t *ReadTxn) HashKV(ctx context.Context, rev int64) (hash uint32, hashRev int64, err error) {
	switch {
	case rev <= 0:
		rev = t.rev
	case rev > t.rev:
		return 0, 0, ErrFutureRev
	case rev < t.compactRev:
		return 0, 0, ErrCompacted
	}
	h := newVersionHash()
	if err := hashVersions(ctx, t.snap, rev, t.compactRev, h.add); err != nil {
		return 0, 0, err
	}
	return h.sum(), rev, nil
}

// hashVersions calls fn for each version HashKV counts, in key order and,
// per key, oldest first.
func hashVersions(ctx context.Context, r pebble.Reader, rev, compactRev int64, fn func(key []byte, rev, sub int64, rec []byte)) error {
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceVersions},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceVersions),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	type version struct {
		rev, sub int64
		rec      []byte
	}
	var (
		cur  []byte
		vers []version // of cur, newest first, as stored
	)
	flush := func() {
		// Of the versions at or below compactRev only the newest survives
		// compaction, and not even that one if it is a deletion.
		end := len(vers)
		for i, v := range vers {
			if v.rev <= compactRev {
				end = i
				if !(len(v.rec) == 1 && v.rec[0] == recordTombstone) {
					end = i + 1
				}
				break
			}
		}
		for i := end - 1; i >= 0; i-- {
			fn(cur, vers[i].rev, vers[i].sub, vers[i].rec)
		}
		vers = vers[:0]
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		key, vrev, sub, err := decodeVersionKey(it.Key())
		if err != nil {
			return err
		}
		if !bytes.Equal(key, cur) {
			if cur != nil {
				flush()
			}
			cur = append(cur[:0], key...)
		}
		if vrev > rev {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		vers = append(vers, version{vrev, sub, bytes.Clone(v)})
	}
	if err := it.Error(); err != nil {
		return err
	}
	if cur != nil {
		flush()
	}
	return nil
}
