package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/apply"
	"github.com/cairn-kv/cairn/version"
)

// Range serves a RangeRequest: serializable reads from local state, others
// after a linearizable read index.
func (m *Member) Range(ctx context.Context, r *pb.RangeRequest) (resp *pb.RangeResponse, err error) {
	defer func(start time.Time) { m.metrics.observeRequest("Range", start, err) }(time.Now())
	if err := m.alive(); err != nil {
		return nil, err
	}
	if !r.Serializable {
		if err := m.linearizableReadNotify(ctx); err != nil {
			return nil, err
		}
	}
	rt := m.kv.Read()
	defer rt.End()
	m.metrics.ranges.Inc()
	return apply.Range(ctx, rt, r)
}

// Put replicates a PutRequest.
func (m *Member) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := m.checkQuota(); err != nil {
		return nil, err
	}
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.PutResponse), nil
}

// DeleteRange replicates a DeleteRangeRequest.
func (m *Member) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.DeleteRangeResponse), nil
}

// Txn serves a read-only txn locally (after a read index unless every read
// is serializable) and replicates any other.
func (m *Member) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if apply.IsTxnReadOnly(r) {
		if err := m.alive(); err != nil {
			return nil, err
		}
		if !apply.IsTxnSerializable(r) {
			if err := m.linearizableReadNotify(ctx); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		rt := m.kv.Read()
		defer rt.End()
		resp, err := apply.ReadOnlyTxn(ctx, rt, r)
		m.metrics.observeRequest("ReadonlyTxn", start, err)
		if err == nil {
			m.metrics.observeReadTxn(resp)
		}
		return resp, err
	}
	if err := m.checkQuota(); err != nil {
		return nil, err
	}
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.TxnResponse), nil
}

// Compact replicates a compaction; with r.Physical it also waits until old
// versions are removed from storage.
func (m *Member) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	if r.Physical {
		if err := m.kv.WaitCompacted(ctx, r.Revision); err != nil {
			return nil, m.ctxErr(ctx, err)
		}
	}
	return resp.(*pb.CompactionResponse), nil
}

// checkQuota refuses writes once the state's size (dbSize, as etcd's quota
// uses its backend's Size) exceeds --quota-backend-bytes,
// or the data dir's file system has less free space than the reserve, and
// raises the NOSPACE alarm, as etcd's quota check does.
func (m *Member) checkQuota() error {
	if m.eng.Size() > m.cfg.QuotaBackendBytes || m.diskLow() {
		m.raiseNoSpace()
		return ErrNoSpace
	}
	return nil
}

// Status is this member's maintenance status, as etcd's StatusResponse.
func (m *Member) Status() *pb.StatusResponse {
	st := m.node.Status()
	size, inUse := m.eng.Sizes()
	return &pb.StatusResponse{
		Header:           m.Header(0),
		Version:          version.APIVersion,
		DbSize:           size,
		DbSizeInUse:      inUse,
		Leader:           st.Lead,
		RaftIndex:        st.Commit,
		RaftTerm:         st.Term,
		RaftAppliedIndex: m.applied.Get(),
		StorageVersion:   version.ClusterVersion,
		DbSizeQuota:      m.cfg.QuotaBackendBytes,
		IsLearner:        m.IsLearner(),
		DowngradeInfo:    &pb.DowngradeInfo{}, // etcd always sends it, empty when no downgrade runs
		Errors:           m.statusErrors(st.Lead),
	}
}

// HashKV hashes this member's versions up to r.Revision (0: the current
// revision) from local state, as etcd's Maintenance.HashKV, so members can
// be compared (etcdctl endpoint hashkv --cluster); see mvcc.Store.HashKV.
// The header's revision is the current one; mvcc.ErrFutureRev and
// mvcc.ErrCompacted as for Range.
func (m *Member) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	rev := m.kv.Rev()
	h, err := m.kv.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, err
	}
	return &pb.HashKVResponse{
		Header:          m.Header(max(rev, h.Revision)),
		Hash:            h.Hash,
		CompactRevision: h.CompactRevision,
		HashRevision:    h.Revision,
	}, nil
}
