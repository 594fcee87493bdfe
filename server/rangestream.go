package server

import (
	"bytes"
	"context"
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/apply"
)

// initialStreamChunk is the number of keys in a RangeStream's first chunk,
// as etcd's initialStreamChunkLimit (server/etcdserver/v3_server.go).
const initialStreamChunk = 10

// RangeStream serves a RangeRequest as etcd 3.7's KV.RangeStream: it pins
// one revision (the request's, or the current one when the stream starts)
// and sends the range in chunks, each read from its own snapshot at that
// revision, so no snapshot is held while send waits for the client (send
// blocks under gRPC flow control: that is the stream's back-pressure).
// Chunks before the last carry only kvs; the last carries the header
// (revision: the store revision when the stream started), count and more,
// so merging every chunk gives the unary Range's answer. A compaction past
// the pinned revision fails the next chunk with mvcc.ErrCompacted. Chunk
// sizes start at 10 keys and double or halve toward the encoded size
// maxBytes (--max-request-bytes), as etcd's adjustChunkLimit.
//
// Memory per stream is one chunk being read and the one send is
// encoding (send may clear the chunk's Kvs once it has encoded them:
// RangeStream does not use a chunk after sending it); the caller (server/api) must have refused sort orders and
// revision filters, which RangeStream does not serve, as etcd.
func (m *Member) RangeStream(ctx context.Context, r *pb.RangeRequest, send func(*pb.RangeResponse) error) error {
	if !r.Serializable {
		if err := m.linearizableReadNotify(ctx); err != nil {
			return err
		}
	}
	m.metrics.ranges.Inc()
	if r.CountOnly {
		rt := m.kv.Read()
		resp, err := apply.Range(ctx, rt, &pb.RangeRequest{Key: r.Key, RangeEnd: r.RangeEnd, Revision: r.Revision, CountOnly: true})
		rt.End()
		if err != nil {
			return err
		}
		return send(&pb.RangeResponse{Header: &pb.ResponseHeader{Revision: resp.Header.Revision}, Count: resp.Count})
	}
	totalLimit := r.Limit
	if totalLimit <= 0 {
		totalLimit = math.MaxInt64
	}
	limit := min(int64(initialStreamChunk), totalLimit)
	key, pinned, headerRev, count := r.Key, r.Revision, int64(0), int64(0)
	maxBytes := int(m.cfg.MaxRequestBytes)
	for {
		rt := m.kv.Read()
		kvs, more, storeRev, err := apply.RangeChunk(ctx, rt, r, key, pinned, limit)
		if err != nil {
			rt.End()
			return err
		}
		if headerRev == 0 {
			headerRev = storeRev
			if pinned <= 0 {
				pinned = headerRev
			}
		}
		count += int64(len(kvs))
		var next []byte
		if more {
			// As etcd: after the chunk's last key-value, which a
			// non-key sort target with sort order NONE sorted (etcd then
			// repeats or skips keys; Cairn answers the same).
			next = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
		}
		out := &pb.RangeResponse{Kvs: kvs}
		done := !more || count == totalLimit
		if done {
			out.Header = &pb.ResponseHeader{Revision: headerRev}
			out.More, out.Count = more, count
			if more {
				rest, err := apply.CountRange(ctx, rt, next, r.RangeEnd, pinned)
				if err != nil {
					rt.End()
					return err
				}
				out.Count += rest
			}
		}
		rt.End()
		size := proto.Size(out)
		if err := send(out); err != nil {
			return err
		}
		if done {
			return nil
		}
		key = next
		limit = min(adjustChunkLimit(limit, size, maxBytes), totalLimit-count)
	}
}

// adjustChunkLimit is etcd's: the next chunk doubles when the last encoded
// below half of targetBytes, halves when above twice, and is at least 1.
func adjustChunkLimit(last int64, lastBytes, targetBytes int) int64 {
	switch {
	case lastBytes < targetBytes/2:
		last *= 2
	case lastBytes > targetBytes*2:
		last /= 2
	}
	return max(last, 1)
}
