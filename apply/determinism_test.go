package apply

import (
	"context"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/storage"
)

func openApplier(t *testing.T, lessorFor func(*lease.Lessor) Lessor) (*Applier, *mvcc.Store, *storage.Engine) {
	t.Helper()
	eng, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := mvcc.Open(eng, nil)
	if err != nil {
		t.Fatal(err)
	}
	le, err := lease.Open(eng, lease.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close(); eng.Close() })
	var l Lessor = le
	if lessorFor != nil {
		l = lessorFor(le)
	}
	return New(kv, l, &membership.Cluster{}, 0), kv, eng
}

// A txn whose compare cannot read the store (here: a corrupt record) stops
// apply with a StorageError; it is not taken as "compare false", which
// would run the failure branch on this member only. Nothing of the batch
// is committed.
func TestTxnCompareStorageErrorStopsApply(t *testing.T) {
	a, kv, eng := openApplier(t, nil)
	if _, err := a.Apply(entries(t, 1, putReq("k", "v"))); err != nil {
		t.Fatal(err)
	}
	latest := storage.AppendEscaped([]byte{storage.KeyspaceLatest}, []byte("k"))
	if err := eng.DB.Set(latest, []byte("\xff\xffnot a record"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	txn := &pb.InternalRaftRequest{Txn: &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("k"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_Value{Value: []byte("v")}}},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("failure-branch"), Value: []byte("x")}}}},
	}}
	_, err := a.Apply(entries(t, 2, putReq("before", "1"), txn))
	var se *StorageError
	if !errors.As(err, &se) || se.Op != "txn compare" {
		t.Fatalf("Apply with a corrupt compare target: got %v, want a StorageError in the txn compare", err)
	}
	if idx, _, _ := AppliedIndex(eng); idx != 1 {
		t.Fatalf("applied index %d after the failed batch, want 1", idx)
	}
	if kv.Rev() != 2 {
		t.Fatalf("revision %d after the failed batch, want 2", kv.Rev())
	}
}

// failingRevoke is the real lessor whose Revoke fails, as a disk would.
type failingRevoke struct{ *lease.Lessor }

var errDisk = errors.New("injected disk failure")

func (failingRevoke) Revoke(*pebble.Batch, int64) error { return errDisk }

// A lease revoke that fails after deleting some of its keys leaves nothing
// in the batch (it runs under a savepoint, as other writes), and the
// failure, not being a request error, stops apply.
func TestLeaseRevokeIsAllOrNothing(t *testing.T) {
	a, kv, _ := openApplier(t, func(l *lease.Lessor) Lessor { return failingRevoke{l} })
	withLease := func(k string) *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: 7}}
	}
	if _, err := a.Apply(entries(t, 1, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 10}}, withLease("a"), withLease("b"))); err != nil {
		t.Fatal(err)
	}
	wb := kv.NewBatch()
	defer wb.Abort()
	rev := wb.Rev()
	res := a.leaseRevoke(context.Background(), wb, &pb.LeaseRevokeRequest{ID: 7})
	if !errors.Is(res.Err, errDisk) {
		t.Fatalf("revoke: got %v, want %v", res.Err, errDisk)
	}
	if len(wb.Events) != 0 || wb.Rev() != rev {
		t.Fatalf("the failed revoke left %d events and revision %d in the batch, want 0 and %d", len(wb.Events), wb.Rev(), rev)
	}
	if got, want := keys(t, kv), "rev=3 a=v@2 b=v@3"; got != want {
		t.Fatalf("store: %s, want %s", got, want)
	}
	_, err := a.Apply(entries(t, 4, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 7}}))
	var se *StorageError
	if !errors.As(err, &se) || !errors.Is(err, errDisk) {
		t.Fatalf("Apply of the revoke: got %v, want a StorageError wrapping %v", err, errDisk)
	}
}

// Apply stores the TTL a grant carries, whatever the member's election
// timeout: the minimum TTL is decided when the grant is proposed.
func TestLeaseGrantStoresTheEntryTTL(t *testing.T) {
	a, _, _ := openApplier(t, nil)
	res, err := a.Apply(entries(t, 1, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Results[0].Resp.(*pb.LeaseGrantResponse).TTL; got != 1 {
		t.Fatalf("granted TTL %d, want the entry's 1", got)
	}
}
