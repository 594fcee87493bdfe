package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// A snapshot stream is a sequence of blobs, each tagged by its first byte:
// one snapMessage (the raftpb.Message), snapData blobs of records (uvarint
// key length, key, uvarint value length, value) of about snapChunk bytes,
// and one snapEnd with the number of records, so a cut stream is noticed.
const (
	snapMessage byte = 'M'
	snapData    byte = 'D'
	snapEnd     byte = 'E'
	snapChunk        = 1 << 20
)

// SendSnapshot streams snapshot message m (its metadata filled in) and the
// state that each yields, in key order, to member m.To. It returns nil once
// the member has stored the snapshot.
func (t *Transport) SendSnapshot(ctx context.Context, m *raftpb.Message, each func(fn func(key, value []byte) error) error) error {
	t.mu.Lock()
	p, ok := t.peers[m.GetTo()]
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("transport: unknown peer %x", m.GetTo())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := p.conn.NewStream(t.outgoing(ctx), &serviceDesc.Streams[1], "/"+serviceName+"/Snapshot")
	if err != nil {
		return err
	}
	// A send fails with io.EOF when the member ended the stream: its
	// status says why.
	send := func(b []byte) error {
		err := s.SendMsg(&blob{b: b})
		if errors.Is(err, io.EOF) {
			if rerr := s.RecvMsg(&blob{}); rerr != nil {
				return rerr
			}
		}
		return err
	}
	head, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	if err := send(append([]byte{snapMessage}, head...)); err != nil {
		return err
	}
	newBuf := func() []byte {
		b := make([]byte, 1, snapChunk+snapChunk/8)
		b[0] = snapData
		return b
	}
	buf := newBuf()
	var n uint64
	err = each(func(k, v []byte) error {
		buf = binary.AppendUvarint(buf, uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
		n++
		if len(buf) >= snapChunk {
			if err := send(buf); err != nil {
				return err
			}
			buf = newBuf() // gRPC may still hold the sent bytes: never reuse them
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(buf) > 1 {
		if err := send(buf); err != nil {
			return err
		}
	}
	if err := send(binary.AppendUvarint([]byte{snapEnd}, n)); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(&blob{})
}

// recvSnapshot hands a streamed snapshot to the Snapshot handler.
func (t *Transport) recvSnapshot(s grpc.ServerStream) error {
	from, err := t.sender(s.Context())
	if err != nil {
		return err
	}
	var head blob
	if err := s.RecvMsg(&head); err != nil {
		return err
	}
	m := &raftpb.Message{}
	if len(head.b) == 0 || head.b[0] != snapMessage || proto.Unmarshal(head.b[1:], m) != nil || m.GetType() != raftpb.MsgSnap || m.Snapshot == nil || m.Snapshot.Metadata == nil {
		return status.Error(codes.InvalidArgument, "transport: a snapshot stream must start with its MsgSnap")
	}
	if m.GetFrom() != from || m.GetTo() != t.id {
		return status.Errorf(codes.InvalidArgument, "transport: a snapshot from %x to %x on a stream from %x to %x", m.GetFrom(), m.GetTo(), from, t.id)
	}
	if t.h.Snapshot == nil {
		return status.Error(codes.Unimplemented, "transport: snapshots are not accepted")
	}
	r := &snapReader{s: s}
	if err := t.h.Snapshot(m, r.next); err != nil {
		t.lg.Warn("snapshot from peer failed", "from", fmt.Sprintf("%x", m.GetFrom()), "index", m.Snapshot.Metadata.GetIndex(), "error", err)
		return status.Error(codes.Aborted, err.Error())
	}
	return s.SendMsg(&blob{})
}

// errBadSnapshotStream is returned for a malformed or cut snapshot stream.
var errBadSnapshotStream = errors.New("transport: malformed snapshot stream")

type snapReader struct {
	s    grpc.ServerStream
	buf  []byte
	n    uint64
	done bool
}

func (r *snapReader) next() (key, value []byte, err error) {
	for len(r.buf) == 0 {
		if r.done {
			return nil, nil, io.EOF
		}
		var b blob
		if err := r.s.RecvMsg(&b); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, nil, fmt.Errorf("%w: it ends without its end mark", errBadSnapshotStream)
			}
			return nil, nil, err
		}
		if len(b.b) == 0 {
			return nil, nil, errBadSnapshotStream
		}
		switch b.b[0] {
		case snapData:
			r.buf = b.b[1:]
		case snapEnd:
			n, l := binary.Uvarint(b.b[1:])
			if l <= 0 || n != r.n {
				return nil, nil, fmt.Errorf("%w: %d records received, the sender counted %d", errBadSnapshotStream, r.n, n)
			}
			r.done = true
		default:
			return nil, nil, fmt.Errorf("%w: unknown blob tag %q", errBadSnapshotStream, b.b[0])
		}
	}
	field := func() ([]byte, bool) {
		l, n := binary.Uvarint(r.buf)
		if n <= 0 || uint64(len(r.buf)-n) < l {
			return nil, false
		}
		f := r.buf[n : n+int(l)]
		r.buf = r.buf[n+int(l):]
		return f, true
	}
	k, ok1 := field()
	v, ok2 := field()
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("%w: truncated record", errBadSnapshotStream)
	}
	r.n++
	return k, v, nil
}
