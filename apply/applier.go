package apply

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/membership"
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
	// WrapCommit, if set, runs each batch commit (calling commit once and
	// returning its error), so the caller can time it as etcd's backend
	// commit; apply itself reads no clock. Set it before the first Apply.
	WrapCommit func(commit func() error) error
	// Alarms, if set, is the alarm state: requests it forbids fail, and
	// AlarmRequests change it. Set it before the first Apply.
	Alarms Alarms
	// MaxLearners bounds learners when a conf change is applied (etcd
	// --max-learners; 0: DefaultMaxLearners). It must be the same on every
	// member, or they could decide a change differently.
	MaxLearners int
	// Auth, if set, is the auth state: write requests are checked against
	// the caller their header names, and Auth service requests change or
	// read it. Set it before the first Apply.
	Auth *auth.Store

	kv      *mvcc.Store
	lessor  Lessor
	members Members
	applied uint64 // the applied index; owned by the apply loop
}

// Members is the membership state machine as apply uses it.
type Members interface {
	SetAttributes(b *pebble.Batch, id uint64, name string, clientURLs []string) error
	Validate(ch membership.Change, maxLearners int) error
	Apply(b *pebble.Batch, ch membership.Change) error
	List() []membership.Member
}

// New returns an Applier over kv, lessor and members whose state is at
// applied index applied.
func New(kv *mvcc.Store, lessor Lessor, members Members, applied uint64) *Applier {
	return &Applier{kv: kv, lessor: lessor, members: members, applied: applied}
}

// Applied is the state of the store after a group of entries.
type Applied struct {
	Index   uint64
	Term    uint64
	Results []Result
	// Batch is the committed mvcc batch; its Events feed watchers.
	Batch *mvcc.Batch
	// ConfChanges is the verdict on each conf change entry given (also
	// those skipped as already applied), in log order: the change Raft is
	// to apply, or a no-op (see raftnode.Apply).
	ConfChanges []*raftpb.ConfChangeV2
}

// Apply applies entries, in order, in one storage batch together with the
// applied index, and commits it (without fsync: the synced Raft log
// replays it after a crash). Entries at or below the stored applied index
// are skipped, so a replay never applies an entry twice.
func (a *Applier) Apply(entries []*raftpb.Entry) (*Applied, error) {
	wb := a.kv.NewBatch()
	out := &Applied{Batch: wb}
	ctx := context.Background()
	for _, e := range entries {
		isConf := e.GetType() == raftpb.EntryConfChangeV2 || e.GetType() == raftpb.EntryConfChange
		if e.GetIndex() <= a.applied {
			if isConf {
				// Decided before: hand Raft the same verdict again.
				cc, ok, err := ConfVerdict(wb.Pebble(), e.GetIndex())
				if err != nil {
					wb.Abort()
					return nil, err
				}
				if !ok {
					cc = noopConfChange()
				}
				out.ConfChanges = append(out.ConfChanges, cc)
			}
			continue
		}
		out.Index, out.Term = e.GetIndex(), e.GetTerm()
		if isConf {
			res, ok, verdict, err := a.applyConfChange(wb.Pebble(), e)
			if err != nil {
				wb.Abort()
				return nil, err
			}
			out.ConfChanges = append(out.ConfChanges, verdict)
			if ok {
				out.Results = append(out.Results, res)
			}
			continue
		}
		if e.GetType() != raftpb.EntryNormal || len(e.Data) == 0 {
			continue // a new leader's empty entry
		}
		req := &pb.InternalRaftRequest{}
		if err := proto.Unmarshal(e.Data, req); err != nil {
			wb.Abort()
			return nil, fmt.Errorf("apply: entry %d: %w", e.GetIndex(), err)
		}
		res := a.applyRequest(ctx, wb, req, e.GetIndex())
		if err := asStorageError(requestName(req), res.Err); err != nil {
			wb.Abort()
			return nil, fmt.Errorf("apply: entry %d: %w", e.GetIndex(), err)
		}
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
	if err := a.commit(wb); err != nil {
		return nil, fmt.Errorf("apply: commit: %w", err)
	}
	a.applied = out.Index
	return out, nil
}

func (a *Applier) commit(wb *mvcc.Batch) error {
	if a.WrapCommit == nil {
		return a.kv.Commit(wb)
	}
	return a.WrapCommit(func() error { return a.kv.Commit(wb) })
}

func (a *Applier) applyRequest(ctx context.Context, wb *mvcc.Batch, req *pb.InternalRaftRequest, index uint64) Result {
	if err := a.checkAlarms(req); err != nil {
		return Result{Err: err}
	}
	if a.Auth != nil {
		ai := authInfo(req)
		if isAuthRequest(req) {
			return a.applyAuth(wb, req, ai, index)
		}
		// With auth disabled every check passes: skip them, so that a put
		// on a lease does not read the lease's keys in the apply loop.
		if a.Auth.IsAuthEnabled() {
			if err := a.checkWriteAuth(wb.Pebble(), req, ai); err != nil {
				return Result{Err: err}
			}
		}
	}
	switch {
	case req.Alarm != nil:
		return a.applyAlarm(wb, req.Alarm)
	case req.Put != nil:
		return a.write(wb, func(tw leasedWrite) (any, error) {
			if err := checkPut(ctx, tw, a.lessor, req.Put); err != nil {
				return nil, err
			}
			return put(ctx, tw, req.Put)
		})
	case req.DeleteRange != nil:
		return a.write(wb, func(tw leasedWrite) (any, error) { return deleteRange(ctx, tw, req.DeleteRange) })
	case req.Txn != nil:
		return a.write(wb, func(tw leasedWrite) (any, error) { return Txn(ctx, tw, a.lessor, req.Txn) })
	case req.Compaction != nil:
		if err := wb.Compact(req.Compaction.Revision); err != nil {
			return Result{Err: err}
		}
		return Result{Resp: &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: wb.Rev()}}}
	case req.LeaseGrant != nil:
		return a.leaseGrant(wb, req.LeaseGrant)
	case req.LeaseRevoke != nil:
		return a.leaseRevoke(ctx, wb, req.LeaseRevoke)
	case req.LeaseCheckpoint != nil:
		return a.leaseCheckpoint(wb, req.LeaseCheckpoint)
	case req.ClusterMemberAttrSet != nil:
		r := req.ClusterMemberAttrSet
		var name string
		var urls []string
		if r.MemberAttributes != nil {
			name, urls = r.MemberAttributes.Name, r.MemberAttributes.ClientUrls
		}
		if err := a.members.SetAttributes(wb.Pebble(), r.Member_ID, name, urls); err != nil {
			return Result{Err: err}
		}
		return Result{Resp: &pb.MemberListResponse{}}
	}
	return Result{Err: errUnsupported}
}

// requestName names req's kind, for errors.
func requestName(req *pb.InternalRaftRequest) string {
	switch {
	case req.Alarm != nil:
		return "alarm"
	case req.Put != nil:
		return "put"
	case req.DeleteRange != nil:
		return "delete range"
	case req.Txn != nil:
		return "txn"
	case req.Compaction != nil:
		return "compaction"
	case req.LeaseGrant != nil:
		return "lease grant"
	case req.LeaseRevoke != nil:
		return "lease revoke"
	case req.LeaseCheckpoint != nil:
		return "lease checkpoint"
	case req.ClusterMemberAttrSet != nil:
		return "member attributes"
	case isAuthRequest(req):
		return "auth"
	}
	return "request"
}

// write runs one write transaction. If it fails after writing (a txn whose
// put with ignore_value meets a key its own earlier delete removed: etcd
// panics there), everything it wrote is undone and the client gets the
// plain error, so a request either applies whole or not at all.
func (a *Applier) write(wb *mvcc.Batch, fn func(leasedWrite) (any, error)) Result {
	sp := wb.Savepoint()
	tw := a.newWrite(wb)
	resp, err := fn(tw)
	if err != nil {
		if tw.Changes() > 0 {
			if rerr := wb.RollbackTo(sp); rerr != nil {
				return Result{Err: &StorageError{Op: "rollback", Err: rerr}}
			}
			if errors.Is(err, ErrKeyNotFound) {
				err = ErrKeyNotFound
			}
		}
		return Result{Err: err}
	}
	tw.End()
	return Result{Resp: resp}
}

// Restore sets the applied index after a snapshot replaced the state.
func (a *Applier) Restore(applied uint64) { a.applied = applied }

// AppliedIndex reads the applied index and its term from storage (0, 0 for
// a fresh store).
func AppliedIndex(eng *storage.Engine) (index, term uint64, err error) {
	return AppliedIndexOf(eng.DB)
}

// AppliedIndexOf reads the applied index and its term from r (a Pebble
// snapshot, say).
func AppliedIndexOf(r pebble.Reader) (index, term uint64, err error) {
	v, ok, err := storage.GetCopy(r, metaApplied)
	if err != nil || !ok {
		return 0, 0, err
	}
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("apply: corrupt applied index record")
	}
	return binary.BigEndian.Uint64(v[:8]), binary.BigEndian.Uint64(v[8:]), nil
}
