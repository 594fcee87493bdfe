package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// replay rebuilds the log from the segments' records, in order.
type replay struct {
	snap *raftpb.SnapshotMetadata
	hs   *raftpb.HardState
	ents []*raftpb.Entry
	pos  []position // where each of ents was read
	// end is where the last segment's good records end; hdrEnd where its
	// header records end.
	end, hdrEnd int64
	// installed is set once an install record is read; installSeq is the
	// segment that holds the last one.
	installed  bool
	installSeq uint64
}

type position struct {
	file string
	off  int64
}

func (r *replay) lastIndex() uint64 {
	if n := len(r.ents); n > 0 {
		return r.ents[n-1].GetIndex()
	}
	return r.snap.GetIndex()
}

func (r *replay) corrupt(file string, off int64, format string, args ...any) error {
	return &CorruptError{File: file, Offset: off, LastIndex: r.lastIndex(), Reason: fmt.Sprintf(format, args...)}
}

// segment reads one segment into r. For the last segment it returns the
// offset of a torn final record to truncate (-1: none).
func (r *replay) segment(seg *segment, b []byte, last bool) (repairAt int64, err error) {
	if b == nil {
		if b, err = os.ReadFile(seg.path); err != nil {
			return -1, fmt.Errorf("wal: %w", err)
		}
	}
	var off int64
	first := true
	for {
		typ, data, next, res := readRecord(b, off)
		switch res {
		case readZeros:
			if !allZero(b[off:]) {
				return -1, r.corrupt(seg.path, off, "zeroed region with records after it")
			}
			if first {
				return -1, r.corrupt(seg.path, off, "segment has no header")
			}
			r.end = off
			return -1, nil
		case readBad:
			torn := !validRecordAfter(b, off)
			if int64(len(b))-off >= headerLen {
				n := int64(binary.LittleEndian.Uint32(b[off : off+4]))
				if end := off + headerLen + n; end <= int64(len(b)) && allZero(b[end:]) {
					torn = true
				}
			}
			if !torn {
				return -1, r.corrupt(seg.path, off, "record fails its CRC with records after it")
			}
			if !last {
				return -1, r.corrupt(seg.path, off, "record cut short or failing its CRC in a segment that is not the last")
			}
			if first {
				return -1, r.corrupt(seg.path, off, "segment header cut short or failing its CRC")
			}
			r.end = off
			return off, nil
		}
		if first {
			if typ != recHeader || !r.header(data, seg.seq) {
				return -1, r.corrupt(seg.path, off, "bad segment header")
			}
			first = false
			r.hdrEnd = next
			off = next
			continue
		}
		if err := r.record(typ, data, seg, off); err != nil {
			return -1, err
		}
		if typ != recEntry && r.hdrEnd == off {
			r.hdrEnd = next
		}
		off = next
	}
}

func (r *replay) header(data []byte, seq uint64) bool {
	if len(data) != len(magic)+12 || !bytes.Equal(data[:len(magic)], magic) {
		return false
	}
	v := binary.LittleEndian.Uint32(data[len(magic):])
	s := binary.LittleEndian.Uint64(data[len(magic)+4:])
	return v == formatVersion && s == seq
}

// record applies one good record to the log being rebuilt.
func (r *replay) record(typ byte, data []byte, seg *segment, off int64) error {
	switch typ {
	case recEntry:
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(data, e); err != nil {
			return r.corrupt(seg.path, off, "entry does not decode: %v", err)
		}
		idx := e.GetIndex()
		if n := len(r.ents); n > 0 {
			firstIdx := r.ents[0].GetIndex()
			switch {
			case idx > r.ents[n-1].GetIndex()+1:
				return r.corrupt(seg.path, off, "gap in the log: entry %d follows %d", idx, r.ents[n-1].GetIndex())
			case idx < firstIdx:
				return r.corrupt(seg.path, off, "entry %d below the first entry %d", idx, firstIdx)
			}
			r.ents, r.pos = r.ents[:idx-firstIdx], r.pos[:idx-firstIdx]
			if k := len(r.ents); k > 0 && e.GetTerm() < r.ents[k-1].GetTerm() {
				return r.corrupt(seg.path, off, "term going backwards: entry %d has term %d after term %d", idx, e.GetTerm(), r.ents[k-1].GetTerm())
			}
		}
		r.ents = append(r.ents, e)
		r.pos = append(r.pos, position{seg.path, off})
		if idx > seg.maxIndex {
			seg.maxIndex = idx
		}
	case recState:
		hs := &raftpb.HardState{}
		if err := proto.Unmarshal(data, hs); err != nil {
			return r.corrupt(seg.path, off, "hard state does not decode: %v", err)
		}
		if r.hs != nil && hs.GetTerm() < r.hs.GetTerm() {
			return r.corrupt(seg.path, off, "term going backwards: hard state term %d after %d", hs.GetTerm(), r.hs.GetTerm())
		}
		r.hs = hs
	case recSnapshot, recInstall:
		m := &raftpb.SnapshotMetadata{}
		if err := proto.Unmarshal(data, m); err != nil {
			return r.corrupt(seg.path, off, "snapshot record does not decode: %v", err)
		}
		if r.snap != nil && (m.GetIndex() < r.snap.GetIndex() || m.GetTerm() < r.snap.GetTerm()) {
			return r.corrupt(seg.path, off, "snapshot going backwards: index %d term %d after index %d term %d", m.GetIndex(), m.GetTerm(), r.snap.GetIndex(), r.snap.GetTerm())
		}
		r.snap = m
		if typ == recInstall {
			r.ents, r.pos = nil, nil
			// Entries before an install are void: earlier segments hold
			// nothing the log needs.
			seg.maxIndex = 0
			r.installed, r.installSeq = true, seg.seq
		}
	default:
		return r.corrupt(seg.path, off, "unknown record type %d", typ)
	}
	return nil
}

// finish checks the rebuilt log against the newest snapshot and returns it.
func (r *replay) finish() (*Recovered, error) {
	if r.snap == nil {
		return nil, &CorruptError{Reason: "no snapshot record in any segment"}
	}
	si := r.snap.GetIndex()
	ents, pos := r.ents, r.pos
	for len(ents) > 0 && ents[0].GetIndex() <= si {
		if ents[0].GetIndex() == si && ents[0].GetTerm() != r.snap.GetTerm() {
			return nil, &CorruptError{File: pos[0].file, Offset: pos[0].off, LastIndex: si,
				Reason: fmt.Sprintf("entry %d has term %d but the snapshot there has term %d", si, ents[0].GetTerm(), r.snap.GetTerm())}
		}
		ents, pos = ents[1:], pos[1:]
	}
	if len(ents) > 0 {
		if ents[0].GetIndex() != si+1 {
			return nil, &CorruptError{File: pos[0].file, Offset: pos[0].off, LastIndex: si,
				Reason: fmt.Sprintf("gap in the log: entry %d follows the snapshot at %d", ents[0].GetIndex(), si)}
		}
		if ents[0].GetTerm() < r.snap.GetTerm() {
			return nil, &CorruptError{File: pos[0].file, Offset: pos[0].off, LastIndex: si,
				Reason: fmt.Sprintf("term going backwards: entry %d has term %d after the snapshot's %d", ents[0].GetIndex(), ents[0].GetTerm(), r.snap.GetTerm())}
		}
	}
	hs := r.hs
	if hs == nil {
		hs = &raftpb.HardState{}
	}
	return &Recovered{Snapshot: r.snap, HardState: hs, Entries: ents}, nil
}

// lastSnapshotIndex is the index of the last snapshot record among the
// good records at the start of segment b.
func lastSnapshotIndex(b []byte) (uint64, bool) {
	var idx uint64
	found := false
	for off := int64(0); ; {
		typ, data, next, res := readRecord(b, off)
		if res != readOK {
			return idx, found
		}
		if typ == recSnapshot || typ == recInstall {
			m := &raftpb.SnapshotMetadata{}
			if proto.Unmarshal(data, m) == nil {
				idx, found = m.GetIndex(), true
			}
		}
		off = next
	}
}
