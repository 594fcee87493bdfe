package mvcc

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc64"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

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
// removed anything: of the versions at its revision as the store was
// compacted at the compaction before it (whose revision is its
// CompactRevision), so that members can compare every compacted span
// (etcd's compact hash check). Otherwise see ReadTxn.HashKV.
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

// CompactionHashes are the hashes the last compactions computed (at most
// 10, as etcd's HashStorage.Hashes), oldest first, for the leader's compact
// hash check: a member answers HashKV at one of their revisions with the
// same hash and CompactRevision, so members that compacted the same history
// agree.
func (s *Store) CompactionHashes() []KVHash {
	s.hashes.Lock()
	defer s.hashes.Unlock()
	return append([]KVHash(nil), s.hashes.list...)
}

// recordCompactionHash remembers the hash a compaction computed.
func (s *Store) recordCompactionHash(h KVHash) {
	s.hashes.Lock()
	defer s.hashes.Unlock()
	s.hashes.list = append(s.hashes.list, h)
	if n := len(s.hashes.list); n > keptHashes {
		s.hashes.list = append(s.hashes.list[:0], s.hashes.list[n-keptHashes:]...)
	}
}

// The HashKV hash is a sum, so that compaction can keep it up to date with
// work proportional to the revisions it compacts: each counted version
// contributes a 64-bit digest of its key, revision, sub-revision and stored
// record, the digests are added modulo 2^64 with hashSeed, and the sum is
// folded to 32 bits. A sum does not depend on the order of the versions, so
// the sum over the store's state at a revision can be stored and moved
// forward by the keys that changed since; what each member counts depends
// only on the replicated history, so members agree whatever their
// compaction's progress.
const hashSeed uint64 = 0x6b65792d63616972 // "key-cair"

var crc64Table = crc64.MakeTable(crc64.ECMA)

// versionDigest is one version's share of the HashKV sum: the CRC-64 of
// uvarint len(key), key, uvarints rev, sub and len(rec), and rec, then
// mixed (SplitMix64's finalizer) so that sums of digests do not inherit the
// CRC's linearity.
func versionDigest(key []byte, rev, sub int64, rec []byte) uint64 {
	var hdr [binary.MaxVarintLen64 * 3]byte
	b := binary.AppendUvarint(hdr[:0], uint64(len(key)))
	h := crc64.Update(0, crc64Table, b)
	h = crc64.Update(h, crc64Table, key)
	b = binary.AppendUvarint(hdr[:0], uint64(rev))
	b = binary.AppendUvarint(b, uint64(sub))
	b = binary.AppendUvarint(b, uint64(len(rec)))
	h = crc64.Update(h, crc64Table, b)
	h = crc64.Update(h, crc64Table, rec)
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	return h ^ h>>31
}

// foldHash turns a sum of digests into the 32-bit HashKV answer.
func foldHash(sum uint64) uint32 {
	sum += hashSeed
	return uint32(sum) ^ uint32(sum>>32)
}

func isTombstone(rec []byte) bool { return len(rec) == 1 && rec[0] == recordTombstone }

// HashKV hashes the store's versions up to revision rev (0: the current
// one), for comparing members, as etcd's Maintenance.HashKV: every version
// at or below rev that a read could still see, that is each version after
// the compacted revision and, per key, the newest version at or below it
// unless that is a deletion. Versions compaction has made unreadable count
// for nothing whether or not they are physically gone yet, so members agree
// whatever the progress of their background compaction. See hashSeed for
// how the versions are combined. It returns ErrFutureRev and ErrCompacted
// as Range does, and the revision hashed.
//
// The work is proportional to the revisions after the last finished
// physical compaction: it starts from the sum that compaction stored for
// the state at its revision.
func (t *ReadTxn) HashKV(ctx context.Context, rev int64) (hash uint32, hashRev int64, err error) {
	switch {
	case rev <= 0:
		rev = t.rev
	case rev > t.rev:
		return 0, 0, ErrFutureRev
	case rev < t.compactRev:
		return 0, 0, ErrCompacted
	}
	state, ok, err := stateSum(ctx, t.snap, t.compactRev)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		// A store compacted by a version of Cairn that did not store
		// the sum, until its compactor has computed it: scan.
		sum, err := scanSum(ctx, t.snap, rev, t.compactRev)
		return foldHash(sum), rev, err
	}
	after, err := versionsSum(ctx, t.snap, t.compactRev, rev)
	if err != nil {
		return 0, 0, err
	}
	return foldHash(state + after), rev, nil
}

// stateSum is the sum of the digests of the state at revision compactRev
// (each key's newest version at or below it, unless a deletion), read from
// r: the sum the last physical compaction stored, moved forward over a
// compaction in progress and over the revisions compacted since. ok is
// false if the store has no stored sum.
func stateSum(ctx context.Context, r pebble.Reader, compactRev int64) (sum uint64, ok bool, err error) {
	cs, err := readCompactState(r)
	if err != nil || !cs.sumKnown {
		return 0, false, err
	}
	sum, at := cs.sum, cs.done
	if p := cs.progress; p != nil {
		// Keys the compactor has not reached yet are untouched: finish
		// its span on them without removing anything.
		d, err := stateDelta(ctx, r, p.nextRev, p.nextSub, p.prev, p.target, p.inDoneKeys)
		if err != nil {
			return 0, false, err
		}
		sum, at = p.state+d, p.target
	}
	if compactRev > at {
		d, err := stateDelta(ctx, r, at+1, 0, at, compactRev, nil)
		if err != nil {
			return 0, false, err
		}
		sum += d
	}
	return sum, true, nil
}

// stateDelta is what the state sum gains from revision x to revision y:
// for each key changed in (x, y], at its last change, the digest of its
// newest version at or below y less that of its newest at or below x
// (each only if not a deletion). It visits the events from (fromRev,
// fromSub) to y, so a caller that has already accounted for earlier events
// of the span passes where to resume, and skips the events for which
// done (if not nil) says their key is accounted for. The versions it reads
// must not have been compacted past x for keys it has not accounted for.
func stateDelta(ctx context.Context, r pebble.Reader, fromRev, fromSub, x, y int64, done func(key []byte, rev, sub int64) bool) (uint64, error) {
	var d uint64
	err := walkEvents(ctx, r, fromRev, fromSub, y, func(vit *pebble.Iterator, rev, sub int64, key []byte) error {
		if done != nil && done(key, rev, sub) {
			return nil
		}
		last, rec, err := isLastChange(vit, key, rev, sub, y)
		if err != nil || !last {
			return err
		}
		if !isTombstone(rec) {
			d += versionDigest(key, rev, sub, rec)
		}
		if x < 0 {
			return nil // nothing at or below x
		}
		prefix := versionKeyPrefix(nil, key)
		if vit.SeekGE(versionKey(nil, key, x, math.MaxInt64)) && bytes.HasPrefix(vit.Key(), prefix) {
			_, prev, psub, err := decodeVersionKey(vit.Key())
			if err != nil {
				return err
			}
			v, err := vit.ValueAndErr()
			if err != nil {
				return err
			}
			if !isTombstone(v) {
				d -= versionDigest(key, prev, psub, v)
			}
		}
		return nil
	})
	return d, err
}

// versionsSum is the sum of the digests of every version in revisions
// (from, to], found through their events.
func versionsSum(ctx context.Context, r pebble.Reader, from, to int64) (uint64, error) {
	var sum uint64
	err := walkEvents(ctx, r, from+1, 0, to, func(vit *pebble.Iterator, rev, sub int64, key []byte) error {
		vk := versionKey(nil, key, rev, sub)
		if !vit.SeekGE(vk) || !bytes.Equal(vit.Key(), vk) {
			if err := vit.Error(); err != nil {
				return err
			}
			return ErrCorruptRecord // an event without its version
		}
		v, err := vit.ValueAndErr()
		if err != nil {
			return err
		}
		sum += versionDigest(key, rev, sub, v)
		return nil
	})
	return sum, err
}

// walkEvents calls fn for each event from (fromRev, fromSub) through
// revision to, in revision order, with an iterator over the versions
// keyspace for fn's seeks.
func walkEvents(ctx context.Context, r pebble.Reader, fromRev, fromSub, to int64, fn func(vit *pebble.Iterator, rev, sub int64, key []byte) error) error {
	if fromRev > to {
		return nil
	}
	eit, err := r.NewIter(&pebble.IterOptions{LowerBound: eventKey(max(fromRev, 0), fromSub), UpperBound: eventKey(to+1, 0)})
	if err != nil {
		return err
	}
	defer eit.Close()
	vit, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceVersions},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceVersions),
	})
	if err != nil {
		return err
	}
	defer vit.Close()
	n := 0
	for ok := eit.First(); ok; ok = eit.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rev, sub, key, err := decodeEvent(eit.Key(), eit.Value())
		if err != nil {
			return err
		}
		if err := fn(vit, rev, sub, key); err != nil {
			return err
		}
	}
	return eit.Error()
}

// decodeEvent splits an event record; key aliases v.
func decodeEvent(k, v []byte) (rev, sub int64, key []byte, err error) {
	if len(k) != 17 || len(v) < 1 {
		return 0, 0, nil, ErrCorruptRecord
	}
	return int64(binary.BigEndian.Uint64(k[1:9])), int64(binary.BigEndian.Uint64(k[9:17])), v[1:], nil
}

// isLastChange reports whether version (rev, sub) of key is its newest at
// or below y, leaving vit on it and returning its stored record.
func isLastChange(vit *pebble.Iterator, key []byte, rev, sub, y int64) (bool, []byte, error) {
	if !vit.SeekGE(versionKey(nil, key, y, math.MaxInt64)) {
		return false, nil, vit.Error()
	}
	if !bytes.Equal(vit.Key(), versionKey(nil, key, rev, sub)) {
		return false, nil, nil
	}
	v, err := vit.ValueAndErr()
	return err == nil, v, err
}

// scanSum is the HashKV sum by a scan of every version, for a store
// without a stored state sum.
func scanSum(ctx context.Context, r pebble.Reader, rev, compactRev int64) (uint64, error) {
	var sum uint64
	err := hashVersions(ctx, r, rev, compactRev, func(key []byte, rev, sub int64, rec []byte) {
		sum += versionDigest(key, rev, sub, rec)
	})
	return sum, err
}

// hashVersions calls fn for each version HashKV counts, in key order and,
// per key, oldest first, by a scan of the whole versions keyspace.
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
				if !isTombstone(v.rec) {
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
