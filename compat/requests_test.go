package compat

// Short builders for etcdserverpb requests, so that sequences read like the
// operations they perform. Options not covered here are set with struct
// literals at the call site.

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	eq = pb.Compare_EQUAL
	ne = pb.Compare_NOT_EQUAL
	gt = pb.Compare_GREATER
	lt = pb.Compare_LESS
)

func put(k, v string) *pb.PutRequest { return &pb.PutRequest{Key: []byte(k), Value: []byte(v)} }

func get(k string) *pb.RangeRequest { return &pb.RangeRequest{Key: []byte(k)} }

// rng is the range [k, end); end "\x00" means every key >= k.
func rng(k, end string) *pb.RangeRequest {
	return &pb.RangeRequest{Key: []byte(k), RangeEnd: []byte(end)}
}

func prefix(k string) *pb.RangeRequest { return rng(k, prefixEnd(k)) }

// all is the range of every key.
func all() *pb.RangeRequest { return rng("\x00", "\x00") }

func del(k string) *pb.DeleteRangeRequest { return &pb.DeleteRangeRequest{Key: []byte(k)} }

func delRange(k, end string) *pb.DeleteRangeRequest {
	return &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte(end)}
}

func compact(rev int64) *pb.CompactionRequest { return &pb.CompactionRequest{Revision: rev} }

func prefixEnd(k string) string { return clientv3.GetPrefixRangeEnd(k) }

// txn builds a TxnRequest; each op is a request (see op).
func txn(cmps []*pb.Compare, success, failure []*pb.RequestOp) *pb.TxnRequest {
	return &pb.TxnRequest{Compare: cmps, Success: success, Failure: failure}
}

func cmps(c ...*pb.Compare) []*pb.Compare { return c }

func ops(reqs ...any) []*pb.RequestOp {
	out := make([]*pb.RequestOp, len(reqs))
	for i, r := range reqs {
		out[i] = op(r)
	}
	return out
}

// op wraps a request in a RequestOp; nil gives an empty RequestOp.
func op(req any) *pb.RequestOp {
	switch r := req.(type) {
	case nil:
		return &pb.RequestOp{}
	case *pb.RangeRequest:
		return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
	case *pb.PutRequest:
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: r}}
	case *pb.DeleteRangeRequest:
		return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: r}}
	case *pb.TxnRequest:
		return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
	default:
		panic(fmt.Sprintf("op: unexpected request type %T", req))
	}
}

func cmpValue(k string, r pb.Compare_CompareResult, v string) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_VALUE, Result: r, TargetUnion: &pb.Compare_Value{Value: []byte(v)}}
}

func cmpVersion(k string, r pb.Compare_CompareResult, n int64) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_VERSION, Result: r, TargetUnion: &pb.Compare_Version{Version: n}}
}

func cmpCreate(k string, r pb.Compare_CompareResult, rev int64) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_CREATE, Result: r, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: rev}}
}

func cmpMod(k string, r pb.Compare_CompareResult, rev int64) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_MOD, Result: r, TargetUnion: &pb.Compare_ModRevision{ModRevision: rev}}
}

func cmpLease(k string, r pb.Compare_CompareResult, id int64) *pb.Compare {
	return &pb.Compare{Key: []byte(k), Target: pb.Compare_LEASE, Result: r, TargetUnion: &pb.Compare_Lease{Lease: id}}
}

// over makes a compare apply to every key in [key, end).
func over(c *pb.Compare, end string) *pb.Compare {
	c.RangeEnd = []byte(end)
	return c
}
