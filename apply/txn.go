package apply

import (
	"bytes"
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/mvcc"
)

// IsTxnReadOnly reports whether a txn has only range operations (at its top
// level, as etcd decides it), so it can be served without Raft.
func IsTxnReadOnly(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if op.GetRequestRange() == nil {
				return false
			}
		}
	}
	return true
}

// IsTxnSerializable reports whether every operation of a read-only txn
// asks for a serializable read.
func IsTxnSerializable(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr == nil || !rr.Serializable {
				return false
			}
		}
	}
	return true
}

// Txn evaluates every compare (of the txn and the nested txns on the taken
// branches) against the state before any write, checks the chosen
// operations, then executes them in order, as etcd does.
func Txn(ctx context.Context, tw WriteView, leases LeaseLookup, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	path, err := compareToPath(ctx, tw, r)
	if err != nil {
		return nil, err
	}
	if _, err := checkTxn(ctx, tw, leases, r, path); err != nil {
		return nil, err
	}
	resp, _ := newTxnResp(r, path)
	if _, err := executeTxn(ctx, tw, r, path, resp); err != nil {
		return nil, err
	}
	rev := tw.Rev()
	if tw.Changes() > 0 {
		rev++
	}
	resp.Header.Revision = rev
	return resp, nil
}

// ReadOnlyTxn serves a txn with only range operations from a read view.
func ReadOnlyTxn(ctx context.Context, rv ReadView, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	return Txn(ctx, readOnly{rv}, noLeases{}, r)
}

// readOnly is a WriteView over a ReadView for txns that never write.
type readOnly struct{ ReadView }

func (readOnly) Put([]byte, []byte, int64) (int64, int64, error) {
	return 0, 0, fmt.Errorf("apply: write in a read-only txn")
}
func (readOnly) DeleteRange(context.Context, []byte, []byte, bool) ([]*mvccpb.KeyValue, int64, error) {
	return nil, 0, fmt.Errorf("apply: write in a read-only txn")
}
func (readOnly) Changes() int { return 0 }

func branch(r *pb.TxnRequest, succeeded bool) []*pb.RequestOp {
	if succeeded {
		return r.Success
	}
	return r.Failure
}

// compareToPath lists, depth first, whether each txn on the taken path
// succeeded. A compare that cannot read the store fails the txn with a
// storage error: taking the failure branch instead would make the outcome
// depend on the member's disk, not on the log.
func compareToPath(ctx context.Context, rv ReadView, r *pb.TxnRequest) ([]bool, error) {
	ok, err := applyCompares(ctx, rv, r.Compare)
	if err != nil {
		return nil, err
	}
	path := []bool{ok}
	for _, op := range branch(r, ok) {
		if t := op.GetRequestTxn(); t != nil {
			sub, err := compareToPath(ctx, rv, t)
			if err != nil {
				return nil, err
			}
			path = append(path, sub...)
		}
	}
	return path, nil
}

func applyCompares(ctx context.Context, rv ReadView, cmps []*pb.Compare) (bool, error) {
	for _, c := range cmps {
		ok, err := applyCompare(ctx, rv, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// applyCompare holds when every key in the compare's range satisfies it. A
// missing key compares as the zero KeyValue, except that a value compare on
// a missing key always fails.
func applyCompare(ctx context.Context, rv ReadView, c *pb.Compare) (bool, error) {
	rr, err := rv.Range(ctx, c.Key, gteRange(c.RangeEnd), mvcc.RangeOptions{})
	if err != nil {
		return false, &StorageError{Op: "txn compare", Err: err}
	}
	if len(rr.KVs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false, nil
		}
		return compareKV(c, &mvccpb.KeyValue{}), nil
	}
	for i := range rr.KVs {
		if !compareKV(c, rr.KVs[i]) {
			return false, nil
		}
	}
	return true, nil
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var result int
	switch c.Target {
	case pb.Compare_VALUE:
		result = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		result = compareInt64(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		result = compareInt64(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		result = compareInt64(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		result = compareInt64(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return true
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkTxn runs, before anything is written, the checks that could fail an
// operation on the taken path; it returns how many nested txns it consumed.
func checkTxn(ctx context.Context, rv ReadView, leases LeaseLookup, r *pb.TxnRequest, path []bool) (int, error) {
	count := 0
	for _, op := range branch(r, path[0]) {
		var err error
		switch v := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			err = checkRange(rv, v.RequestRange)
		case *pb.RequestOp_RequestPut:
			err = checkPut(ctx, rv, leases, v.RequestPut)
		case *pb.RequestOp_RequestTxn:
			var n int
			n, err = checkTxn(ctx, rv, leases, v.RequestTxn, path[1:])
			count += n + 1
			path = path[n+1:]
		}
		if err != nil {
			return 0, err
		}
	}
	return count, nil
}

func checkRange(rv ReadView, r *pb.RangeRequest) error {
	switch {
	case r.Revision == 0:
		return nil
	case r.Revision > rv.Rev():
		return mvcc.ErrFutureRev
	case r.Revision < rv.FirstRev():
		return mvcc.ErrCompacted
	}
	return nil
}

// newTxnResp builds the response skeleton for the taken path.
func newTxnResp(r *pb.TxnRequest, path []bool) (*pb.TxnResponse, int) {
	ops := branch(r, path[0])
	resp := &pb.TxnResponse{Succeeded: path[0], Header: &pb.ResponseHeader{}, Responses: make([]*pb.ResponseOp, len(ops))}
	count := 0
	for i, op := range ops {
		switch v := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{}}
		case *pb.RequestOp_RequestPut:
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{}}
		case *pb.RequestOp_RequestDeleteRange:
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{}}
		case *pb.RequestOp_RequestTxn:
			sub, n := newTxnResp(v.RequestTxn, path[1:])
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: sub}}
			path = path[1+n:]
			count += n + 1
		}
	}
	return resp, count
}

func executeTxn(ctx context.Context, tw WriteView, r *pb.TxnRequest, path []bool, resp *pb.TxnResponse) (int, error) {
	count := 0
	for i, op := range branch(r, path[0]) {
		out := resp.Responses[i].Response
		switch v := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := Range(ctx, tw, v.RequestRange)
			if err != nil {
				return 0, fmt.Errorf("applyTxn: failed Range: %w", err)
			}
			out.(*pb.ResponseOp_ResponseRange).ResponseRange = rr
		case *pb.RequestOp_RequestPut:
			pr, err := put(ctx, tw, v.RequestPut)
			if err != nil {
				return 0, fmt.Errorf("applyTxn: failed Put: %w", err)
			}
			out.(*pb.ResponseOp_ResponsePut).ResponsePut = pr
		case *pb.RequestOp_RequestDeleteRange:
			dr, err := deleteRange(ctx, tw, v.RequestDeleteRange)
			if err != nil {
				return 0, fmt.Errorf("applyTxn: failed DeleteRange: %w", err)
			}
			out.(*pb.ResponseOp_ResponseDeleteRange).ResponseDeleteRange = dr
		case *pb.RequestOp_RequestTxn:
			n, err := executeTxn(ctx, tw, v.RequestTxn, path[1:], out.(*pb.ResponseOp_ResponseTxn).ResponseTxn)
			if err != nil {
				return 0, err
			}
			count += n + 1
			path = path[n+1:]
		}
	}
	return count, nil
}
