package compat

// RangeStream differential test, and sorted and filtered unary ranges with
// limits over more keys than an insertion sort handles.
//
// What it proves: clientv3 3.7's GetStream gives the same merged answer
// (clientv3.GetStreamToGetResponse: kvs, count, more, header revision) and
// the same error from Cairn as from etcd 3.7.4, for prefixes, limits,
// revisions, keys-only, count-only, sort orders (Unimplemented, or etcd's
// per-chunk sort when sort_order is NONE), revision filters, and past and
// future revisions; the raw chunks have the same number of keys each (so
// chunk sizes adapt alike), and only the last carries a header. A
// compaction while a stream is open fails it with the same error on both.
// Unary ranges sorted by every target, in both orders, with limits and
// filters, over 200 keys with many ties, give identical answers, including
// the order of tied keys (etcd's sort.Sort order).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// streamSetup writes, from revision 2: 300 keys s/%03d of 100 bytes, 60 of
// them in 6 transactions of 10 (ties in mod and create revision), some
// rewritten or deleted; 12 keys b/%02d of 400 KB (so chunks halve toward
// --max-request-bytes); and keys outside both prefixes.
func streamSetup() (steps []any, afterFirst int) {
	for i := 0; i < 240; i++ {
		steps = append(steps, put(fmt.Sprintf("s/%03d", i), strings.Repeat(string(rune('a'+i%7)), 100)))
	}
	afterFirst = 1 + 240 // the revision after the first 240 puts
	for t := 0; t < 6; t++ {
		var ops []*pb.RequestOp
		for i := 0; i < 10; i++ {
			k := fmt.Sprintf("s/%03d", 240+t*10+i)
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(strings.Repeat("t", 100))}}})
		}
		steps = append(steps, &pb.TxnRequest{Success: ops})
	}
	for i := 0; i < 300; i += 17 {
		steps = append(steps, put(fmt.Sprintf("s/%03d", i), "rewritten"))
	}
	for i := 5; i < 300; i += 41 {
		steps = append(steps, del(fmt.Sprintf("s/%03d", i)))
	}
	for i := 0; i < 12; i++ {
		steps = append(steps, put(fmt.Sprintf("b/%02d", i), strings.Repeat(string(rune('A'+i)), 400<<10)))
	}
	steps = append(steps, put("a", "before"), put("t", "after"))
	return steps, afterFirst
}

func TestRangeStreamDiff(t *testing.T) {
	cairnEps, etcdEps := cluster.StartBoth(t)
	c := &checker{t: t, p: &pair{etcd: pb.NewKVClient(dial(t, etcdEps[0])), cairn: pb.NewKVClient(dial(t, cairnEps[0]))}}
	c.p.etcdCrashed, c.p.etcdCrash = cluster.EtcdCrash(etcdEps[0])
	steps, early := streamSetup()
	for _, s := range steps {
		c.do(s)
	}
	etcdC, cairnC := streamClient(t, etcdEps[0]), streamClient(t, cairnEps[0])
	etcdKV, cairnKV := c.p.etcd, c.p.cairn
	rr := func(key, end string, f func(r *pb.RangeRequest)) *pb.RangeRequest {
		r := &pb.RangeRequest{Key: []byte(key)}
		if end != "" {
			r.RangeEnd = []byte(end)
		}
		if f != nil {
			f(r)
		}
		return r
	}
	all := "\x00"
	cases := []*pb.RangeRequest{
		rr("s/", "s0", nil),
		rr("b/", "b0", nil),
		rr(all, all, nil),
		rr("s/100", "s/200", nil),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Limit = 1 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Limit = 10 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Limit = 11 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Limit = 75 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Limit = 5000 }),
		rr("b/", "b0", func(r *pb.RangeRequest) { r.Limit = 7 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Revision = int64(early) }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Revision, r.Limit = int64(early), 33 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Revision = 2 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.KeysOnly = true }),
		rr(all, all, func(r *pb.RangeRequest) { r.KeysOnly, r.Limit = true, 100 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.CountOnly = true }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.CountOnly, r.Limit = true, 3 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.CountOnly, r.Revision = true, int64(early) }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Serializable = true }),
		rr("s/007", "", nil),
		rr("s/005", "", nil), // deleted
		rr("zz", "", nil),
		rr("x", "y", nil),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.SortTarget = pb.RangeRequest_KEY; r.SortOrder = pb.RangeRequest_ASCEND }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.SortTarget = pb.RangeRequest_KEY; r.SortOrder = pb.RangeRequest_DESCEND }),
		rr("s/", "s0", func(r *pb.RangeRequest) {
			r.SortTarget, r.SortOrder, r.Limit = pb.RangeRequest_MOD, pb.RangeRequest_DESCEND, 5
		}),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.SortTarget, r.SortOrder = pb.RangeRequest_VALUE, pb.RangeRequest_ASCEND }),
		// sort_order NONE with another target: etcd sorts each chunk.
		rr("s/", "s0", func(r *pb.RangeRequest) { r.SortTarget, r.Limit = pb.RangeRequest_MOD, 25 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.SortTarget, r.KeysOnly = pb.RangeRequest_VERSION, true }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.SortTarget, r.KeysOnly = pb.RangeRequest_VALUE, true }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.MinModRevision = 100 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.MaxCreateRevision = 100 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.Revision = 1 << 40 }),
		rr("s/", "s0", func(r *pb.RangeRequest) { r.SortOrder = 7 }),
		rr("", "", nil),
	}
	for i, r := range cases {
		e, eerr := getStream(etcdC, r)
		k, kerr := getStream(cairnC, r)
		if d := diffMerged(e, eerr, k, kerr); d != "" {
			t.Errorf("case %d GetStream(%s): %s", i, describe(r), d)
		}
		// The raw chunks: same number of keys in each.
		es, eerr := chunkSizes(etcdKV, r)
		ks, kerr := chunkSizes(cairnKV, r)
		if fmt.Sprint(es) != fmt.Sprint(ks) || (eerr == nil) != (kerr == nil) {
			t.Errorf("case %d RangeStream(%s) chunks: etcd %v %v, cairn %v %v", i, describe(r), es, eerr, ks, kerr)
		}
	}

	// A compaction past the pinned revision, while the stream is open.
	var errs [2]error
	for side, ep := range []string{etcdEps[0], cairnEps[0]} {
		errs[side] = compactMidStream(t, ep)
	}
	if errs[0] == nil || status.Convert(errs[0]).Message() != status.Convert(errs[1]).Message() || status.Code(errs[0]) != status.Code(errs[1]) {
		t.Errorf("compaction during a stream: etcd %v, cairn %v; want the same ErrCompacted", errs[0], errs[1])
	}
	// Then a stream at the compacted revision.
	old := &pb.RangeRequest{Key: []byte("s/"), RangeEnd: []byte("s0"), Revision: 2}
	e, eerr := getStream(etcdC, old)
	k, kerr := getStream(cairnC, old)
	if d := diffMerged(e, eerr, k, kerr); d != "" || eerr == nil {
		t.Errorf("GetStream at a compacted revision: %s (etcd error %v)", d, eerr)
	}
}

func streamClient(t *testing.T, ep string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		MaxCallRecvMsgSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// getStream sends r through clientv3's GetStream and merges the chunks.
func getStream(c *clientv3.Client, r *pb.RangeRequest) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ch, err := c.GetStream(ctx, string(r.Key), requestOpts(r)...)
	if err != nil {
		return nil, err
	}
	return clientv3.GetStreamToGetResponse(ch)
}

func diffMerged(e *clientv3.GetResponse, eerr error, k *clientv3.GetResponse, kerr error) string {
	if eerr != nil || kerr != nil {
		if eerr != nil && kerr != nil && status.Code(eerr) == status.Code(kerr) && status.Convert(eerr).Message() == status.Convert(kerr).Message() {
			return ""
		}
		return fmt.Sprintf("etcd error %v, cairn error %v", eerr, kerr)
	}
	normalizeHeader(e.Header)
	normalizeHeader(k.Header)
	return diffOutcomes(outcome{resp: (*pb.RangeResponse)(e)}, outcome{resp: (*pb.RangeResponse)(k)})
}

// requestOpts are the clientv3 options that make r.
func requestOpts(r *pb.RangeRequest) []clientv3.OpOption {
	opts := []clientv3.OpOption{clientv3.WithLimit(r.Limit), clientv3.WithRev(r.Revision),
		clientv3.WithMinModRev(r.MinModRevision), clientv3.WithMaxModRev(r.MaxModRevision),
		clientv3.WithMinCreateRev(r.MinCreateRevision), clientv3.WithMaxCreateRev(r.MaxCreateRevision)}
	if len(r.RangeEnd) > 0 {
		opts = append(opts, clientv3.WithRange(string(r.RangeEnd)))
	}
	if r.Serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	if r.KeysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if r.CountOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if r.SortOrder != pb.RangeRequest_NONE || r.SortTarget != pb.RangeRequest_KEY {
		opts = append(opts, clientv3.WithSort(clientv3.SortTarget(r.SortTarget), clientv3.SortOrder(r.SortOrder)))
	}
	return opts
}

// chunkSizes reads a raw RangeStream and returns the number of keys of each
// chunk, checking that only the last carries a header.
func chunkSizes(kv pb.KVClient, r *pb.RangeRequest) ([]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	st, err := kv.RangeStream(ctx, r)
	if err != nil {
		return nil, err
	}
	var sizes []int
	header := false
	for {
		resp, err := st.Recv()
		if err == io.EOF {
			return sizes, nil
		}
		if err != nil {
			return sizes, err
		}
		if header {
			return sizes, errors.New("a chunk after the one with the header")
		}
		header = resp.RangeResponse.Header != nil
		sizes = append(sizes, len(resp.RangeResponse.Kvs))
	}
}

// compactMidStream opens a stream of b/ (12 x 400 KB) with 64 KiB flow
// control windows, reads the first chunk, writes and compacts past the
// pinned revision, then reads on and returns the error the stream ends
// with (nil if it completes).
func compactMidStream(t *testing.T, ep string) error {
	conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kv := pb.NewKVClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	// 16 MiB under cs/: far more than the 64 KiB flow-control window and
	// the few chunks a server may hold, so neither server can finish the
	// stream before the compaction lands (with the 300 small s/ keys it
	// sometimes could, and the test flaked).
	big := strings.Repeat("c", 256<<10)
	for i := range 64 {
		if _, err := kv.Put(ctx, &pb.PutRequest{Key: fmt.Appendf(nil, "cs/%02d", i), Value: []byte(big)}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := kv.RangeStream(ctx, &pb.RangeRequest{Key: []byte("cs/"), RangeEnd: []byte("cs0")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	put, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("mid"), Value: []byte(strings.Repeat("m", 1<<20))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Compact(ctx, &pb.CompactionRequest{Revision: put.Header.Revision}); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if resp.RangeResponse.Header != nil {
			return fmt.Errorf("stream completed: %d keys in the last chunk", len(resp.RangeResponse.Kvs))
		}
	}
}

// TestSortedRangeDiff: unary ranges sorted by every target and order, with
// limits and filters, over 200 keys written in transactions of 1 to 9
// keys (ties in mod and create revision), rewritten 0 to 3 times (ties in
// version) with 5 distinct values (ties in value).
func TestSortedRangeDiff(t *testing.T) {
	c := newChecker(t)
	n := 0
	for tx := 0; n < 200; tx++ {
		var ops []*pb.RequestOp
		for i := 0; i <= tx%9 && n < 200; i++ {
			k := fmt.Sprintf("r/%03d", (n*37)%200)
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(fmt.Sprint(n % 5))}}})
			n++
		}
		c.do(&pb.TxnRequest{Success: ops})
	}
	for i := 0; i < 200; i += 3 {
		for j := 0; j < i%4; j++ {
			c.do(put(fmt.Sprintf("r/%03d", i), fmt.Sprint((i+j)%5)))
		}
	}
	for _, target := range sortTargets {
		for _, order := range sortOrders {
			for _, limit := range []int64{0, 1, 5, 13, 64, 199, 200} {
				c.do(&pb.RangeRequest{Key: []byte("r/"), RangeEnd: []byte("r0"), SortTarget: target, SortOrder: order, Limit: limit})
			}
			c.do(&pb.RangeRequest{Key: []byte("r/"), RangeEnd: []byte("r0"), SortTarget: target, SortOrder: order, Limit: 7, KeysOnly: true})
			c.do(&pb.RangeRequest{Key: []byte("r/"), RangeEnd: []byte("r0"), SortTarget: target, SortOrder: order, Limit: 9, MinModRevision: 20, MaxCreateRevision: 60})
			c.do(&pb.RangeRequest{Key: []byte("r/"), RangeEnd: []byte("r0"), SortTarget: target, SortOrder: order, Limit: 30, Revision: 40})
			c.do(&pb.RangeRequest{Key: []byte("r/"), RangeEnd: []byte("r0"), SortTarget: target, SortOrder: order, MaxModRevision: 50})
		}
	}
	for _, limit := range []int64{0, 3, 50} {
		c.do(&pb.RangeRequest{Key: []byte("r/"), RangeEnd: []byte("r0"), MinCreateRevision: 10, MaxModRevision: 70, Limit: limit})
		c.do(&pb.RangeRequest{Key: []byte("r/"), RangeEnd: []byte("r0"), MinModRevision: 30, Limit: limit, KeysOnly: true})
		c.do(&pb.RangeRequest{Key: []byte("r/"), RangeEnd: []byte("r0"), MinModRevision: 30, Limit: limit, CountOnly: true})
	}
}
