package apply

import (
	"context"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/mvcc"
)

// Lessor is the lease state machine as apply uses it.
type Lessor interface {
	LeaseLookup
	Grant(b *pebble.Batch, id, ttl int64) (lease.Lease, error)
	Revoke(b *pebble.Batch, id int64) error
	Checkpoint(b *pebble.Batch, id, remaining int64) error
	Attach(b *pebble.Batch, id int64, key []byte) error
	Detach(b *pebble.Batch, id int64, key []byte) error
}

// leasedWrite is a write transaction that keeps lease attachments in step
// with the keys it writes: a put moves its key to the new lease, a delete
// detaches it, as etcd's mvcc does with its lessor.
type leasedWrite struct {
	*mvcc.TxnWrite
	b      *pebble.Batch
	lessor Lessor
}

func (w leasedWrite) Put(key, value []byte, id int64) (int64, int64, error) {
	rev, prev, err := w.TxnWrite.Put(key, value, id)
	if err != nil || prev == id {
		return rev, prev, err
	}
	if prev != lease.NoLease {
		if err := w.lessor.Detach(w.b, prev, key); err != nil {
			return 0, 0, err
		}
	}
	if id != lease.NoLease {
		if err := w.lessor.Attach(w.b, id, key); err != nil {
			return 0, 0, err
		}
	}
	return rev, prev, nil
}

func (w leasedWrite) DeleteRange(ctx context.Context, key, end []byte, withValues bool) ([]*mvccpb.KeyValue, int64, error) {
	deleted, rev, err := w.TxnWrite.DeleteRangeWith(ctx, key, end, withValues)
	if err != nil {
		return nil, 0, err
	}
	for i := range deleted {
		if deleted[i].Lease != lease.NoLease {
			if err := w.lessor.Detach(w.b, deleted[i].Lease, deleted[i].Key); err != nil {
				return nil, 0, err
			}
		}
	}
	return deleted, rev, nil
}

func (a *Applier) newWrite(wb *mvcc.Batch) leasedWrite {
	return leasedWrite{TxnWrite: wb.Write(), b: wb.Pebble(), lessor: a.lessor}
}

func (a *Applier) leaseGrant(wb *mvcc.Batch, r *pb.LeaseGrantRequest) Result {
	l, err := a.lessor.Grant(wb.Pebble(), r.ID, r.TTL)
	if err != nil {
		return Result{Err: err}
	}
	return Result{Resp: &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: wb.Rev()}, ID: l.ID, TTL: l.TTL}}
}

// leaseRevoke deletes the lease's keys in one revision, in key order, then
// the lease. It runs under a savepoint, as every write request: if it
// fails midway, nothing of it stays in the batch.
func (a *Applier) leaseRevoke(ctx context.Context, wb *mvcc.Batch, r *pb.LeaseRevokeRequest) Result {
	if !a.lessor.LeaseExists(r.ID) {
		return Result{Err: lease.ErrLeaseNotFound}
	}
	sp := wb.Savepoint()
	if err := a.revoke(ctx, wb, r.ID); err != nil {
		if rerr := wb.RollbackTo(sp); rerr != nil {
			return Result{Err: &StorageError{Op: "rollback", Err: rerr}}
		}
		return Result{Err: err}
	}
	return Result{Resp: &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: wb.Rev()}}}
}

func (a *Applier) revoke(ctx context.Context, wb *mvcc.Batch, id int64) error {
	keys, err := lease.Keys(wb.Pebble(), id)
	if err != nil {
		return err
	}
	tw := a.newWrite(wb)
	for _, k := range keys {
		if _, _, err := tw.DeleteRange(ctx, k, nil, false); err != nil {
			tw.End()
			return err
		}
	}
	tw.End()
	return a.lessor.Revoke(wb.Pebble(), id)
}

func (a *Applier) leaseCheckpoint(wb *mvcc.Batch, r *pb.LeaseCheckpointRequest) Result {
	for _, c := range r.Checkpoints {
		if err := a.lessor.Checkpoint(wb.Pebble(), c.ID, c.Remaining_TTL); err != nil {
			return Result{Err: err}
		}
	}
	return Result{Resp: &pb.LeaseCheckpointResponse{Header: &pb.ResponseHeader{Revision: wb.Rev()}}}
}
