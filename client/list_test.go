package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
)

// putMany writes n keys prefix%04d with values of size bytes, 50 per txn.
func putMany(t *testing.T, ctx context.Context, c *clientv3.Client, prefix string, n, size int) {
	t.Helper()
	for i := 0; i < n; i += 50 {
		var ops []clientv3.Op
		for j := i; j < min(i+50, n); j++ {
			v := strings.Repeat(string(rune('a'+j%26)), size)
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%04d", prefix, j), v))
		}
		if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	c := srv.Client(t)
	putMany(t, ctx, c.Etcd(), "/big/", 700, 100)
	for _, k := range []string{"/bif", "/big", "/bih/x"} {
		if _, err := c.Put(ctx, k, "outside"); err != nil {
			t.Fatal(err)
		}
	}
	want, err := c.GetPrefix(ctx, "/big/")
	if err != nil {
		t.Fatal(err)
	}
	var got []client.KeyValue
	rev, err := c.List(ctx, "/big/", func(kv client.KeyValue) error {
		got = append(got, kv)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rev != want.Revision || fmt.Sprint(got) != fmt.Sprint(want.KVs) {
		t.Fatalf("List: revision %d, %d keys; want revision %d, %d keys (GetPrefix)", rev, len(got), want.Revision, len(want.KVs))
	}

	// At an older revision, after a change: the old values.
	if _, err := c.Put(ctx, "/big/0003", "changed"); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	if r, err := c.List(ctx, "/big/", func(kv client.KeyValue) error { got = append(got, kv); return nil }, client.ListAtRevision(rev)); err != nil || r != rev {
		t.Fatalf("List at %d: revision %d, %v", rev, r, err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want.KVs) {
		t.Fatal("List at an old revision differs from GetPrefix then")
	}

	// Keys only, through the iterator, stopping early.
	n := 0
	for kv, err := range c.ListSeq(ctx, "/big/", client.ListKeysOnly(), client.ListAtRevision(rev)) {
		if err != nil {
			t.Fatal(err)
		}
		if kv.Value != "" || kv.Key != want.KVs[n].Key || kv.ModRevision != want.KVs[n].ModRevision {
			t.Fatalf("keys-only key %d = %+v, want %s without value", n, kv, want.KVs[n].Key)
		}
		if n++; n == 123 {
			break
		}
	}
	if n != 123 {
		t.Fatalf("iterated %d keys, want 123", n)
	}

	// The callback's error stops the read and comes back as it is.
	stop := errors.New("enough")
	n = 0
	if _, err := c.List(ctx, "", func(client.KeyValue) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	}); err != stop || n != 5 {
		t.Fatalf("List stopped by callback: %v after %d keys, want %v after 5", err, n, stop)
	}

	// A compacted revision: rpctypes.ErrCompacted, through the iterator.
	cur, err := c.Put(ctx, "/x", "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Etcd().Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	for _, err := range c.ListSeq(ctx, "/big/", client.ListAtRevision(rev)) {
		if !errors.Is(err, rpctypes.ErrCompacted) {
			t.Fatalf("List at a compacted revision: %v, want ErrCompacted", err)
		}
	}
}

// rangeOnlyKV is a KV service that serves Range from a sorted list and
// answers every other call, RangeStream included, Unimplemented: a server
// from before etcd 3.7 as List sees it.
type rangeOnlyKV struct {
	pb.UnimplementedKVServer
	kvs []*mvccpb.KeyValue // sorted by key
	rev int64

	mu     sync.Mutex
	ranges []*pb.RangeRequest
}

func (s *rangeOnlyKV) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r)
	s.mu.Unlock()
	if r.Revision != 0 && r.Revision != s.rev {
		return nil, rpctypes.ErrGRPCCompacted
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: s.rev}}
	for _, kv := range s.kvs {
		if bytes.Compare(kv.Key, r.Key) < 0 || (len(r.RangeEnd) > 0 && !bytes.Equal(r.RangeEnd, []byte{0}) && bytes.Compare(kv.Key, r.RangeEnd) >= 0) {
			continue
		}
		resp.Count++
		if r.Limit > 0 && int64(len(resp.Kvs)) == r.Limit {
			resp.More = true
			continue
		}
		out := &mvccpb.KeyValue{Key: kv.Key, Value: kv.Value, ModRevision: kv.ModRevision, CreateRevision: kv.CreateRevision, Version: 1}
		if r.KeysOnly {
			out.Value = nil
		}
		resp.Kvs = append(resp.Kvs, out)
	}
	return resp, nil
}

// On a server without RangeStream, List reads pages of Range, all at the
// first page's revision, and gives the same keys.
func TestListFallsBackToPages(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	kv := &rangeOnlyKV{rev: 42}
	for i := 0; i < 10; i++ {
		kv.kvs = append(kv.kvs, &mvccpb.KeyValue{Key: []byte(fmt.Sprintf("p/%02d", i)), Value: []byte(fmt.Sprint(i)), ModRevision: int64(i + 2), CreateRevision: int64(i + 2)})
	}
	kv.kvs = append(kv.kvs, &mvccpb.KeyValue{Key: []byte("q"), Value: []byte("outside")})
	sort.Slice(kv.kvs, func(i, j int) bool { return bytes.Compare(kv.kvs[i].Key, kv.kvs[j].Key) < 0 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterKVServer(gs, kv)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	c, err := client.New(client.Config{Endpoints: []string{ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var got []string
	for kv, err := range c.ListSeq(ctx, "p/", client.ListPageSize(3)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, kv.Key+"="+kv.Value)
	}
	want := "[p/00=0 p/01=1 p/02=2 p/03=3 p/04=4 p/05=5 p/06=6 p/07=7 p/08=8 p/09=9]"
	if fmt.Sprint(got) != want {
		t.Fatalf("ListSeq over pages = %v, want %s", got, want)
	}
	rev, err := c.List(ctx, "p/", func(client.KeyValue) error { return nil }, client.ListPageSize(4))
	if err != nil || rev != 42 {
		t.Fatalf("List over pages: revision %d, %v; want 42", rev, err)
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	// 4 pages of 3, then 3 of 4; every page after the first at revision 42.
	if len(kv.ranges) != 7 {
		t.Fatalf("%d Range calls, want 7", len(kv.ranges))
	}
	for i, r := range kv.ranges {
		first := i == 0 || i == 4
		if (r.Revision == 0) != first {
			t.Errorf("Range %d at revision %d", i, r.Revision)
		}
	}
}
