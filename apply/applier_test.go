package apply

import (
	"context"
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/storage"
)

func newApplier(t *testing.T) (*Applier, *mvcc.Store) {
	t.Helper()
	a, kv, _ := newApplierEngine(t)
	return a, kv
}

// newApplierEngine is newApplier, also returning the storage engine.
func newApplierEngine(t *testing.T) (*Applier, *mvcc.Store, *storage.Engine) {
	t.Helper()
	eng, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := mvcc.Open(eng, nil)
	if err != nil {
		t.Fatal(err)
	}
	le, err := lease.Open(eng, lease.Config{MinTTL: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close(); eng.Close() })
	return New(kv, le, &membership.Cluster{}, 0), kv, eng
}

func entries(t *testing.T, first uint64, reqs ...*pb.InternalRaftRequest) []*raftpb.Entry {
	t.Helper()
	var out []*raftpb.Entry
	for i, r := range reqs {
		r.Header = &pb.RequestHeader{ID: uint64(i + 1)}
		data, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &raftpb.Entry{Index: proto.Uint64(first + uint64(i)), Term: proto.Uint64(1), Type: raftpb.EntryNormal.Enum(), Data: data})
	}
	return out
}

func putReq(k, v string) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}
}

func keys(t *testing.T, kv *mvcc.Store) string {
	rt := kv.Read()
	defer rt.End()
	rr, err := rt.Range(context.Background(), []byte{0}, []byte{}, mvcc.RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("rev=%d", rr.Rev)
	for _, kv := range rr.KVs {
		s += fmt.Sprintf(" %s=%s@%d", kv.Key, kv.Value, kv.ModRevision)
	}
	return s
}

// A txn that fails after it has written (its put with ignore_value finds
// the key its own delete removed) is undone whole, while the entries
// around it in the same batch stay applied.
func TestFailedTxnIsUndoneWhole(t *testing.T) {
	a, kv := newApplier(t)
	bad := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k"), IgnoreValue: true}}},
	}}}
	res, err := a.Apply(entries(t, 1, putReq("k", "v"), putReq("j", "v"), bad, putReq("z", "1")))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Results[2].Err; !errors.Is(got, ErrKeyNotFound) || got != ErrKeyNotFound {
		t.Fatalf("failed txn error = %v, want ErrKeyNotFound itself", got)
	}
	if got, want := keys(t, kv), "rev=4 j=v@3 k=v@2 z=1@4"; got != want {
		t.Fatalf("store after batch: %s, want %s", got, want)
	}
	if n := len(res.Batch.Events); n != 3 {
		t.Fatalf("batch events = %d, want 3 (the failed txn's are gone)", n)
	}
}

func TestLeaseRevokeDeletesKeysInOneRevision(t *testing.T) {
	a, kv := newApplier(t)
	grant := &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 10}}
	withLease := func(k string) *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: 7}}
	}
	// b is moved off the lease before the revoke; only a and c go.
	res, err := a.Apply(entries(t, 1, grant, withLease("c"), withLease("a"), withLease("b"), putReq("b", "mine"),
		&pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 7}}))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Results {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i, r.Err)
		}
	}
	if got, want := keys(t, kv), "rev=6 b=mine@5"; got != want {
		t.Fatalf("store after revoke: %s, want %s", got, want)
	}
	var dels []string
	for _, ev := range res.Batch.Events[4:] {
		dels = append(dels, fmt.Sprintf("%s %s@%d", ev.Type, ev.Kv.Key, ev.Kv.ModRevision))
	}
	if fmt.Sprint(dels) != "[DELETE a@6 DELETE c@6]" {
		t.Fatalf("revoke events = %v, want [DELETE a@6 DELETE c@6]", dels)
	}
	res, _ = a.Apply(entries(t, 7, withLease("x")))
	if !errors.Is(res.Results[0].Err, lease.ErrLeaseNotFound) {
		t.Fatalf("put with revoked lease: %v, want ErrLeaseNotFound", res.Results[0].Err)
	}
}
