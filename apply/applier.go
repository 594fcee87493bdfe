package apply

import (
	"context"
	"encoding/binary"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/storage"
)

var metaApplied = storage.MetaKey("applied")

// Result is the outcome of one applied request, for the client waiting on
// its ID.
type Result struct {
	ID   uint64
	Resp any // *pb.PutResponse, *pb.DeleteRangeResponse, *pb.TxnResponse, *pb.CompactionResponse
	Err  error
}

// Applier applies committed entries to the state machine.
type Applier struct {
	kv      *mvcc.Store
	lessor  Lessor
	applied uint64 // the applied index; owned by the apply loop
}

// New returns an Applier over kv and lessor whose state is at applied index
// applied.
func New(kv *mvcc.Store, lessor Lessor, applied uint64) *Applier {
	return &Applier{kv: kv, lessor: lessor, applied: applied}
}

// Applied is the state of the store after a group of entries.
type Applied struct {
	Index   uint64
	Term    uint64
	Results []Result
	// Batch is the committed mvcc batch; its Events feed watchers.
	Batch *mvcc.Batch
}

// Apply applies entries, in order, in one storage batch together with the
// applied index, and commits it (without fsync: the synced Raft log
// replays it after a crash). Entries at or below the stored applied index
// are skipped, so a replay never applies an entry twice.
func (a *Applier) Apply(entries []raftpb.Entry) (*Applied, error) {
	wb := a.kv.NewBatch()
	out := &Applied{Batch: wb}
	ctx := context.Background()
	for i := range entries {
		e := &entries[i]
		if e.Index <= a.applied {
			continue
		}
		out.Index, out.Term = e.Index, e.Term
		if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
			// Empty entries are appended by a new leader; conf changes
			// arrive with clustering and are applied to Raft by raftnode.
			continue
		}
		var req pb.InternalRaftRequest
		if err := req.Unmarshal(e.Data); err != nil {
			wb.Abort()
			return nil, fmt.Errorf("apply: entry %d: %w", e.Index, err)
		}
		res := a.applyRequest(ctx, wb, &req)
		if req.Header != nil {
			res.ID = req.Header.ID
		}
		out.Results = append(out.Results, res)
	}
	if out.Index == 0 {
		wb.Abort()
		return out, nil
	}
	v := binary.BigEndian.AppendUint64(nil, out.Index)
	v = binary.BigEndian.AppendUint64(v, out.Term)
	if err := wb.Pebble().Set(metaApplied, v, nil); err != nil {
		wb.Abort()
		return nil, err
	}
	if err := a.kv.Commit(wb); err != nil {
		return nil, fmt.Errorf("apply: commit: %w", err)
	}
	a.applied = out.Index
	return out, nil
}

func (a *Applier) applyRequest(ctx context.Context, wb *mvcc.Batch, req *pb.InternalRaftRequest) Result {
	switch {
	case req.Put != nil:
		tw := a.write(wb)
		defer tw.End()
		if err := checkPut(ctx, tw, a.lessor, req.Put); err != nil {
			return Result{Err: err}
		}
		resp, err := put(ctx, tw, req.Put)
		return Result{Resp: resp, Err: err}
	case req.DeleteRange != nil:
		tw := a.write(wb)
		defer tw.End()
		resp, err := deleteRange(ctx, tw, req.DeleteRange)
		return Result{Resp: resp, Err: err}
	case req.Txn != nil:
		tw := a.write(wb)
		defer tw.End()
		resp, err := Txn(ctx, tw, a.lessor, req.Txn)
		return Result{Resp: resp, Err: err}
	case req.LeaseGrant != nil:
		return a.leaseGrant(wb, req.LeaseGrant)
	case req.LeaseRevoke != nil:
		return a.leaseRevoke(ctx, wb, req.LeaseRevoke)
	case req.LeaseCheckpoint != nil:
		return a.leaseCheckpoint(wb, req.LeaseCheckpoint)
	case req.Compaction != nil:
		if err := wb.Compact(req.Compaction.Revision); err != nil {
			return Result{Err: err}
		}
		return Result{Resp: &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: wb.Rev()}}}
	}
	return Result{Err: fmt.Errorf("apply: unsupported request")}
}

// AppliedIndex reads the applied index and its term from storage (0, 0 for
// a fresh store).
func AppliedIndex(eng *storage.Engine) (index, term uint64, err error) {
	v, ok, err := storage.GetCopy(eng.DB, metaApplied)
	if err != nil || !ok {
		return 0, 0, err
	}
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("apply: corrupt applied index record")
	}
	return binary.BigEndian.Uint64(v[:8]), binary.BigEndian.Uint64(v[8:]), nil
}
