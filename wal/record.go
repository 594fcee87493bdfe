package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record types.
const (
	recHeader   byte = 1 // magic, format version, segment sequence number
	recEntry    byte = 2 // raftpb.Entry
	recState    byte = 3 // raftpb.HardState
	recSnapshot byte = 4 // raftpb.SnapshotMetadata: log compacted up to it
	recInstall  byte = 5 // raftpb.SnapshotMetadata: log replaced by it
)

// headerLen is the length and CRC that precede every record's type byte.
const headerLen = 8

// formatVersion is the segment format; the header record carries it.
const formatVersion = 1

var magic = []byte("cairnwal")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is what a *CorruptError matches with errors.Is.
var ErrCorrupt = errors.New("wal: corrupt")

// CorruptError is damage that Open will not repair: it names the segment
// file, the byte offset of the first bad record and the last log index
// read intact before it (0: none).
type CorruptError struct {
	File      string
	Offset    int64
	LastIndex uint64
	Reason    string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: %s at offset %d: %s (last good index %d); refusing to start: restore this member from a peer or a backup",
		e.File, e.Offset, e.Reason, e.LastIndex)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// appendRecord appends one framed record to buf.
func appendRecord(buf []byte, typ byte, data []byte) []byte {
	var h [headerLen + 1]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(data)+1))
	crc := crc32.Update(0, crcTable, []byte{typ})
	crc = crc32.Update(crc, crcTable, data)
	binary.LittleEndian.PutUint32(h[4:8], crc)
	h[8] = typ
	buf = append(buf, h[:]...)
	return append(buf, data...)
}

// readResult says what lies at an offset of a segment.
type readResult int

const (
	readOK    readResult = iota // a whole record with a good CRC
	readZeros                   // a zero header: the unused part of the segment, if zeros follow
	readBad                     // a record cut short or failing its CRC
)

// readRecord decodes the record at off in b; next is the offset after it.
func readRecord(b []byte, off int64) (typ byte, data []byte, next int64, res readResult) {
	if int64(len(b))-off < headerLen {
		if allZero(b[off:]) {
			return 0, nil, off, readZeros
		}
		return 0, nil, off, readBad
	}
	n := binary.LittleEndian.Uint32(b[off : off+4])
	crc := binary.LittleEndian.Uint32(b[off+4 : off+8])
	if n == 0 && crc == 0 {
		return 0, nil, off, readZeros
	}
	end := off + headerLen + int64(n)
	if n == 0 || end > int64(len(b)) {
		return 0, nil, off, readBad
	}
	body := b[off+headerLen : end]
	if crc32.Checksum(body, crcTable) != crc {
		return 0, nil, off, readBad
	}
	return body[0], body[1:], end, readOK
}

// validRecordAfter reports whether a whole record with a good CRC starts
// anywhere in b after off: what tells damage in the middle of a segment
// from a write cut short at its end. Records of more than maxRecord bytes
// are not looked for.
func validRecordAfter(b []byte, off int64) bool {
	for p := off + 1; p+headerLen < int64(len(b)); p++ {
		n := int64(binary.LittleEndian.Uint32(b[p : p+4]))
		if n == 0 || n > maxRecord || p+headerLen+n > int64(len(b)) {
			continue
		}
		body := b[p+headerLen : p+headerLen+n]
		if body[0] < recHeader || body[0] > recInstall {
			continue
		}
		if crc32.Checksum(body, crcTable) == binary.LittleEndian.Uint32(b[p+4:p+8]) {
			return true
		}
	}
	return false
}

// maxRecord bounds the length of one record, in bytes: far above the
// largest Raft entry a member accepts (--max-request-bytes).
const maxRecord = 1 << 30

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
