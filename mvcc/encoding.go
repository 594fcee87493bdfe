package mvcc

import (
	"encoding/binary"
	"errors"

	"github.com/cairn-kv/cairn/storage"
)

// ErrCorruptRecord is returned when a stored record cannot be decoded.
var ErrCorruptRecord = errors.New("mvcc: corrupt record")

// Record kinds, the first byte of a version record.
const (
	recordPut       byte = 1
	recordTombstone byte = 2
)

// record is the stored form of one version of a key. The key and the
// mod_revision are not stored in a 'k' record: they are in its storage key.
type record struct {
	tombstone      bool
	createRevision int64
	modRevision    int64 // stored only in 'l' records
	version        int64
	lease          int64
	value          []byte
}

// appendRecord encodes r: kind, then uvarints create, mod, version, lease,
// then the value bytes to the end.
func appendRecord(dst []byte, r record) []byte {
	if r.tombstone {
		return append(dst, recordTombstone)
	}
	dst = append(dst, recordPut)
	dst = binary.AppendUvarint(dst, uint64(r.createRevision))
	dst = binary.AppendUvarint(dst, uint64(r.modRevision))
	dst = binary.AppendUvarint(dst, uint64(r.version))
	dst = binary.AppendUvarint(dst, uint64(r.lease))
	return append(dst, r.value...)
}

// decodeRecord decodes a record. The value aliases b.
func decodeRecord(b []byte) (record, error) {
	if len(b) == 0 {
		return record{}, ErrCorruptRecord
	}
	switch b[0] {
	case recordTombstone:
		if len(b) != 1 {
			return record{}, ErrCorruptRecord
		}
		return record{tombstone: true}, nil
	case recordPut:
	default:
		return record{}, ErrCorruptRecord
	}
	b = b[1:]
	var fields [4]uint64
	for i := range fields {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > 1<<63-1 || n != uvarintLen(v) {
			return record{}, ErrCorruptRecord
		}
		fields[i] = v
		b = b[n:]
	}
	return record{
		createRevision: int64(fields[0]),
		modRevision:    int64(fields[1]),
		version:        int64(fields[2]),
		lease:          int64(fields[3]),
		value:          b,
	}, nil
}

// uvarintLen is the length of v's canonical uvarint encoding; a longer
// (padded) encoding is refused as corrupt.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// versionKey is 'k' esc(key) ^rev ^sub: a key's versions sort newest first.
func versionKey(dst, key []byte, rev, sub int64) []byte {
	dst = append(dst, storage.KeyspaceVersions)
	dst = storage.AppendEscaped(dst, key)
	dst = storage.AppendUint64(dst, ^uint64(rev))
	return storage.AppendUint64(dst, ^uint64(sub))
}

// versionKeyPrefix is 'k' esc(key): the prefix of every version of key.
func versionKeyPrefix(dst, key []byte) []byte {
	dst = append(dst, storage.KeyspaceVersions)
	return storage.AppendEscaped(dst, key)
}

// versionBound is the 'k' key at which user key k begins (escaped, no
// terminator), for range bounds over user keys.
func versionBound(key []byte) []byte {
	return storage.AppendEscapedPrefix([]byte{storage.KeyspaceVersions}, key)
}

// decodeVersionKey splits a 'k' key into user key, revision and sub-revision.
func decodeVersionKey(k []byte) (key []byte, rev, sub int64, err error) {
	if len(k) == 0 || k[0] != storage.KeyspaceVersions {
		return nil, 0, 0, ErrCorruptRecord
	}
	key, rest, err := storage.DecodeEscaped(k[1:])
	if err != nil || len(rest) != 16 {
		return nil, 0, 0, ErrCorruptRecord
	}
	rev = int64(^binary.BigEndian.Uint64(rest[:8]))
	sub = int64(^binary.BigEndian.Uint64(rest[8:]))
	return key, rev, sub, nil
}

// latestKey is 'l' esc(key).
func latestKey(dst, key []byte) []byte {
	dst = append(dst, storage.KeyspaceLatest)
	return storage.AppendEscaped(dst, key)
}

// latestBound is the 'l' key at which user key k begins, for range bounds.
func latestBound(key []byte) []byte {
	return storage.AppendEscapedPrefix([]byte{storage.KeyspaceLatest}, key)
}

func decodeLatestKey(k []byte) ([]byte, error) {
	if len(k) == 0 || k[0] != storage.KeyspaceLatest {
		return nil, ErrCorruptRecord
	}
	key, rest, err := storage.DecodeEscaped(k[1:])
	if err != nil || len(rest) != 0 {
		return nil, ErrCorruptRecord
	}
	return key, nil
}

// eventKey is 'e' rev sub.
func eventKey(rev, sub int64) []byte {
	k := storage.AppendUint64([]byte{storage.KeyspaceEvents}, uint64(rev))
	return storage.AppendUint64(k, uint64(sub))
}

// appendEvent encodes an event record: the type byte then the key.
func appendEvent(dst []byte, typ byte, key []byte) []byte {
	dst = append(dst, typ)
	return append(dst, key...)
}

var (
	metaRev         = storage.MetaKey("rev")
	metaCompact     = storage.MetaKey("compact")
	metaCompactDone = storage.MetaKey("compact-done")
	// metaCompactSum is the sum of the HashKV digests of the state at the
	// compact-done revision (see stateSum).
	metaCompactSum = storage.MetaKey("compact-sum")
	// metaCompactProgress is a compaction in progress (compactProgress).
	metaCompactProgress = storage.MetaKey("compact-progress")
)

func encodeInt(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decodeInt(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, ErrCorruptRecord
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
