package apply

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/mvcc"
)

// etcdRange is etcd 3.7's executeRange (server/etcdserver/txn/range.go)
// written over a full copy of the range: load every key (up to limit+1 in
// the default order), filter, sort.Sort, cut, drop values for keys_only.
// Range must give the same answer without the full copy.
func etcdRange(t *testing.T, rv ReadView, r *pb.RangeRequest) *pb.RangeResponse {
	limit := r.Limit
	if !isDefaultOrdering(r.SortTarget, r.SortOrder) || hasRevisionFilters(r) {
		limit = 0
	}
	if limit > 0 {
		limit++
	}
	rr, err := rv.Range(context.Background(), r.Key, gteRange(r.RangeEnd), mvcc.RangeOptions{Limit: limit, Rev: r.Revision, Count: r.CountOnly})
	if err != nil {
		t.Fatal(err)
	}
	var kvs []*mvccpb.KeyValue
	for _, kv := range rr.KVs {
		if (r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision) ||
			(r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision) ||
			(r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision) ||
			(r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision) {
			continue
		}
		if r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE {
			kv.Lease = 0 // etcd 3.7's FastKeysOnly reads the index, which has no lease
		}
		kvs = append(kvs, kv)
	}
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	sortKVs(kvs, order, r.SortTarget)
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rr.Rev}, Count: int64(rr.Count)}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, resp.More = kvs[:r.Limit], true
	}
	for _, kv := range kvs {
		if r.KeysOnly {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	if resp.Kvs == nil {
		resp.Kvs = []*mvccpb.KeyValue{}
	}
	return resp
}

// TestRangeMatchesEtcd compares Range with etcd's algorithm on random
// requests over a store with ties in every sort target: the answers must
// be identical, including the order of tied keys, which etcd leaves to
// sort.Sort.
//
// It runs once per width of exactTop's proxies (4, 8 and 12 bytes).
func TestRangeMatchesEtcd(t *testing.T) {
	defer func(w [2]uint) { packedWidths = w }(packedWidths)
	for _, w := range [][2]uint{{32, 64}, {0, 64}, {0, 0}} {
		packedWidths = w
		t.Run(fmt.Sprintf("packed=%d,%d", w[0], w[1]), testRangeMatchesEtcd)
	}
}

func testRangeMatchesEtcd(t *testing.T) {
	a, kv := newApplier(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var reqs []*pb.InternalRaftRequest
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("k%02d", rng.IntN(40))
		if rng.IntN(8) == 0 {
			reqs = append(reqs, &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(k)}})
			continue
		}
		var ops []*pb.RequestOp
		for j := 0; j <= rng.IntN(3); j++ { // several keys in one revision: ties in mod and create
			k := fmt.Sprintf("k%02d", rng.IntN(40))
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(fmt.Sprint(rng.IntN(5)))}}})
			if len(ops) > 1 && string(ops[0].GetRequestPut().Key) == k {
				ops = ops[:1]
			}
		}
		reqs = append(reqs, &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: ops}})
	}
	if _, err := a.Apply(entries(t, 1, reqs...)); err != nil {
		t.Fatal(err)
	}
	rt := kv.Read()
	defer rt.End()
	cur := rt.Rev()
	for i := 0; i < 3000; i++ {
		r := &pb.RangeRequest{Key: []byte(fmt.Sprintf("k%02d", rng.IntN(40)))}
		switch rng.IntN(4) {
		case 0:
		case 1:
			r.RangeEnd = []byte{0}
		default:
			r.RangeEnd = []byte(fmt.Sprintf("k%02d", rng.IntN(41)))
		}
		if rng.IntN(2) == 0 {
			r.Limit = int64(rng.IntN(20))
		}
		if rng.IntN(3) == 0 {
			r.Revision = cur - int64(rng.IntN(int(cur)-1))
		}
		r.SortOrder = pb.RangeRequest_SortOrder(rng.IntN(3))
		r.SortTarget = pb.RangeRequest_SortTarget(rng.IntN(5))
		r.KeysOnly = rng.IntN(4) == 0
		r.CountOnly = rng.IntN(10) == 0
		if rng.IntN(3) == 0 {
			r.MinModRevision = int64(rng.IntN(int(cur)))
		}
		if rng.IntN(3) == 0 {
			r.MaxCreateRevision = int64(rng.IntN(int(cur)))
		}
		if rng.IntN(5) == 0 {
			r.MaxModRevision = int64(rng.IntN(int(cur)))
			r.MinCreateRevision = int64(rng.IntN(int(cur)))
		}
		got, err := Range(context.Background(), rt, r)
		if err != nil {
			t.Fatal(err)
		}
		want := etcdRange(t, rt, r)
		if !proto.Equal(got, want) {
			t.Fatalf("Range(%v)\n got  %v\n want %v", r, got, want)
		}
	}
}

// TestRangeTopKeepsBest checks the heap directly: limit 3 of 50 keys sorted
// by mod revision descending, ascending and by value.
func TestRangeTopKeepsBest(t *testing.T) {
	a, kv := newApplier(t)
	var reqs []*pb.InternalRaftRequest
	for i := 0; i < 50; i++ {
		reqs = append(reqs, putReq(fmt.Sprintf("k%02d", (i*7)%50), fmt.Sprintf("v%02d", (i*13)%50)))
	}
	if _, err := a.Apply(entries(t, 1, reqs...)); err != nil {
		t.Fatal(err)
	}
	rt := kv.Read()
	defer rt.End()
	for _, tc := range []struct {
		order  pb.RangeRequest_SortOrder
		target pb.RangeRequest_SortTarget
		want   []string
	}{
		{pb.RangeRequest_DESCEND, pb.RangeRequest_MOD, []string{"k43=v37@51", "k36=v24@50", "k29=v11@49"}},
		{pb.RangeRequest_ASCEND, pb.RangeRequest_MOD, []string{"k00=v00@2", "k07=v13@3", "k14=v26@4"}},
		{pb.RangeRequest_DESCEND, pb.RangeRequest_VALUE, []string{"k11=v49@25", "k22=v48@48", "k33=v47@21"}},
	} {
		resp, err := Range(context.Background(), rt, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Limit: 3, SortOrder: tc.order, SortTarget: tc.target})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, kv := range resp.Kvs {
			got = append(got, fmt.Sprintf("%s=%s@%d", kv.Key, kv.Value, kv.ModRevision))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || !resp.More || resp.Count != 50 {
			t.Errorf("%v by %v: got %v more=%v count=%d, want %v more=true count=50", tc.order, tc.target, got, resp.More, resp.Count, tc.want)
		}
	}
}
