package storage

import (
	"encoding/binary"
	"errors"
)

// Keyspace prefixes. See the package documentation for the layout of each.
const (
	KeyspaceRaftLog   byte = 'r'
	KeyspaceRaftState byte = 'h'
	KeyspaceMeta      byte = 'm'
	KeyspaceVersions  byte = 'k'
	KeyspaceLatest    byte = 'l'
	KeyspaceEvents    byte = 'e'
	KeyspaceLeases    byte = 'L'
	KeyspaceAttach    byte = 'a'
	KeyspaceAuth      byte = 'u'
	KeyspaceMembers   byte = 'c'
	KeyspaceAlarms    byte = 'A'
)

// ErrBadEscape is returned when decoding an escaped key that is malformed.
var ErrBadEscape = errors.New("storage: malformed escaped key")

// AppendEscaped appends key to dst so that byte order of the results
// matches byte order of the keys, and no result is a prefix of another:
// 0x00 becomes 0x00 0xFF and the key ends with the terminator 0x00 0x01.
func AppendEscaped(dst, key []byte) []byte {
	for _, b := range key {
		if b == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, b)
		}
	}
	return append(dst, 0, 1)
}

// AppendEscapedPrefix is AppendEscaped without the terminator: every escaped
// key that starts with key sorts at or after it.
func AppendEscapedPrefix(dst, key []byte) []byte {
	for _, b := range key {
		if b == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, b)
		}
	}
	return dst
}

// DecodeEscaped reads one escaped key from the front of b and returns it
// and the rest of b after the terminator.
func DecodeEscaped(b []byte) (key, rest []byte, err error) {
	key = make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			key = append(key, b[i])
			continue
		}
		if i+1 >= len(b) {
			return nil, nil, ErrBadEscape
		}
		switch b[i+1] {
		case 0xFF:
			key = append(key, 0)
			i++
		case 1:
			return key, b[i+2:], nil
		default:
			return nil, nil, ErrBadEscape
		}
	}
	return nil, nil, ErrBadEscape
}

// AppendUint64 appends v big-endian, so numeric order is byte order.
func AppendUint64(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, v)
}

// MetaKey is the key of meta entry name.
func MetaKey(name string) []byte {
	return append([]byte{KeyspaceMeta}, name...)
}

// RaftStateKey is the key of raft state entry name.
func RaftStateKey(name string) []byte {
	return append([]byte{KeyspaceRaftState}, name...)
}

// RaftLogKey is the key of the raft log entry at index.
func RaftLogKey(index uint64) []byte {
	return AppendUint64([]byte{KeyspaceRaftLog}, index)
}

// KeyspaceEnd is the first key after every key of keyspace ks.
func KeyspaceEnd(ks byte) []byte { return []byte{ks + 1} }
