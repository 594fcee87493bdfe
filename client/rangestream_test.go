package client_test

// Tests of the server's KV.RangeStream through etcd's generated client, on
// a real Cairn (cairntest); the differential tests against etcd are in
// compat/rangestream_diff_test.go.

import (
	"errors"
	"fmt"
	"io"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/client/cairntest"
)

// kvClient dials srv with 64 KiB flow-control windows (no BDP growth), so
// the server can run at most a window ahead of what the test reads.
func kvClient(t *testing.T, srv *cairntest.Server) pb.KVClient {
	t.Helper()
	cc, err := grpc.NewClient(srv.Endpoints()[0], grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pb.NewKVClient(cc)
}

// streamAll reads a whole RangeStream, checking that only the last chunk
// carries header, count and more, and merges the chunks.
func streamAll(t *testing.T, kv pb.KVClient, r *pb.RangeRequest) (*pb.RangeResponse, []int, error) {
	t.Helper()
	st, err := kv.RangeStream(testContext(t), r)
	if err != nil {
		return nil, nil, err
	}
	merged := &pb.RangeResponse{}
	var sizes []int
	for {
		resp, err := st.Recv()
		if err == io.EOF {
			if merged.Header == nil {
				t.Fatal("stream ended without a header")
			}
			return merged, sizes, nil
		}
		if err != nil {
			return nil, sizes, err
		}
		if merged.Header != nil {
			t.Fatalf("chunk after the one with the header: %v", resp)
		}
		rr := resp.RangeResponse
		sizes = append(sizes, len(rr.Kvs))
		if rr.Header == nil && (rr.Count != 0 || rr.More) {
			t.Fatalf("intermediate chunk with count %d more %v", rr.Count, rr.More)
		}
		proto.Merge(merged, rr)
	}
}

func TestRangeStreamMatchesRange(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	c := srv.EtcdClient(t)
	putMany(t, ctx, c, "s/", 450, 300)
	first, err := c.Put(ctx, "s/0007", "again")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "s/0100"); err != nil {
		t.Fatal(err)
	}
	kv := kvClient(t, srv)
	old := first.Header.Revision - 1
	for _, r := range []*pb.RangeRequest{
		{Key: []byte("s/"), RangeEnd: []byte("s0")},
		{Key: []byte("s/"), RangeEnd: []byte("s0"), Revision: old},
		{Key: []byte("s/"), RangeEnd: []byte("s0"), Limit: 37},
		{Key: []byte("s/"), RangeEnd: []byte("s0"), Limit: 10},
		{Key: []byte("s/"), RangeEnd: []byte("s0"), Limit: 1000},
		{Key: []byte("s/0200"), RangeEnd: []byte{0}, KeysOnly: true},
		{Key: []byte("s/"), RangeEnd: []byte("s0"), CountOnly: true, Limit: 3},
		{Key: []byte("s/0007")},
		{Key: []byte("s/0100")},
		{Key: []byte("t"), RangeEnd: []byte("u")},
		{Key: []byte{0}, RangeEnd: []byte{0}, Serializable: true},
		{Key: []byte("s/"), RangeEnd: []byte("s0"), SortOrder: pb.RangeRequest_ASCEND},
		{Key: []byte("s/"), RangeEnd: []byte("s0"), SortTarget: pb.RangeRequest_KEY, SortOrder: pb.RangeRequest_NONE, Limit: 55},
	} {
		want, err := kv.Range(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		got, sizes, err := streamAll(t, kv, r)
		if err != nil {
			t.Fatalf("RangeStream(%v): %v", r, err)
		}
		want.Header.RaftTerm, got.Header.RaftTerm = 0, 0
		if !proto.Equal(got, want) {
			t.Fatalf("RangeStream(%v) merged to %d keys count %d more %v rev %d; Range: %d keys count %d more %v rev %d",
				r, len(got.Kvs), got.Count, got.More, got.Header.Revision, len(want.Kvs), want.Count, want.More, want.Header.Revision)
		}
		if len(sizes) > 1 && sizes[0] != 10 {
			t.Errorf("RangeStream(%v) chunks %v, want a first chunk of 10", r, sizes)
		}
	}
	// 450 keys of 300 bytes stay far below --max-request-bytes: each chunk
	// doubles the last.
	_, sizes, err := streamAll(t, kv, &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0")})
	if err != nil || fmt.Sprint(sizes) != "[10 20 40 80 160 139]" {
		t.Fatalf("chunks %v, %v; want [10 20 40 80 160 139]", sizes, err)
	}

	for _, r := range []*pb.RangeRequest{
		{Key: []byte("s/"), RangeEnd: []byte("s0"), SortOrder: pb.RangeRequest_DESCEND},
		{Key: []byte("s/"), RangeEnd: []byte("s0"), SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_MOD},
		{Key: []byte("s/"), RangeEnd: []byte("s0"), MinModRevision: 3},
	} {
		if _, _, err := streamAll(t, kv, r); status.Code(err) != codes.Unimplemented {
			t.Errorf("RangeStream(%v) = %v, want Unimplemented", r, err)
		}
	}
	for r, want := range map[*pb.RangeRequest]error{
		{Key: []byte("s/"), Revision: 1 << 40}: rpctypes.ErrGRPCFutureRev,
		{}:                                     rpctypes.ErrGRPCEmptyKey,
	} {
		if _, _, err := streamAll(t, kv, r); !errors.Is(err, want) {
			t.Errorf("RangeStream(%v) = %v, want %v", r, err, want)
		}
	}
}

// A compaction past the pinned revision fails the stream at its next
// chunk with ErrCompacted, after the chunks read before it.
func TestRangeStreamCompactedMidway(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	c := srv.EtcdClient(t)
	putMany(t, ctx, c, "s/", 300, 10<<10)
	kv := kvClient(t, srv)
	st, err := kv.RangeStream(ctx, &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0")})
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil || len(first.RangeResponse.Kvs) != 10 {
		t.Fatalf("first chunk: %v, %v", first, err)
	}
	// The client reads nothing more: flow control keeps the server within
	// a chunk or two of here while the store moves on and compacts.
	put, err := c.Put(ctx, "s/new", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(ctx, put.Header.Revision); err != nil {
		t.Fatal(err)
	}
	n := 10
	for {
		resp, err := st.Recv()
		if err != nil {
			if !errors.Is(err, rpctypes.ErrGRPCCompacted) || n >= 300 {
				t.Fatalf("after %d keys: %v, want ErrCompacted before the end", n, err)
			}
			return
		}
		n += len(resp.RangeResponse.Kvs)
	}
}
