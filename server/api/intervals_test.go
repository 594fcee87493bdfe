package api

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func opPut(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k)}}}
}

func opDel(k, end string) *pb.RequestOp {
	r := &pb.DeleteRangeRequest{Key: []byte(k)}
	if end != "" {
		r.RangeEnd = []byte(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: r}}
}

func opTxn(then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: then, Failure: els}}}
}

func TestCheckIntervals(t *testing.T) {
	tests := []struct {
		name string
		ops  []*pb.RequestOp
		dup  bool
	}{
		{"distinct puts", []*pb.RequestOp{opPut("a"), opPut("b")}, false},
		{"same put twice", []*pb.RequestOp{opPut("a"), opPut("a")}, true},
		{"put inside deleted range", []*pb.RequestOp{opDel("a", "c"), opPut("b")}, true},
		{"put at deleted range end", []*pb.RequestOp{opDel("a", "c"), opPut("c")}, false},
		{"put of deleted key", []*pb.RequestOp{opDel("a", ""), opPut("a")}, true},
		{"overlapping deletes", []*pb.RequestOp{opDel("a", "c"), opDel("b", "d")}, false},
		{"delete to end never conflicts (as etcd)", []*pb.RequestOp{opDel("a", "\x00"), opPut("b")}, false},
		{"nested then/else may share a key", []*pb.RequestOp{opTxn([]*pb.RequestOp{opPut("a")}, []*pb.RequestOp{opPut("a")})}, false},
		{"nested put repeats outer put", []*pb.RequestOp{opPut("a"), opTxn([]*pb.RequestOp{opPut("a")}, nil)}, true},
		{"nested put inside outer delete", []*pb.RequestOp{opDel("a", "z"), opTxn(nil, []*pb.RequestOp{opPut("k")})}, true},
		{"outer put inside nested delete", []*pb.RequestOp{opTxn([]*pb.RequestOp{opDel("a", "z")}, nil), opPut("k")}, true},
		{"two nested txns put one key", []*pb.RequestOp{opTxn([]*pb.RequestOp{opPut("a")}, nil), opTxn([]*pb.RequestOp{opPut("a")}, nil)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := checkIntervals(tt.ops)
			if got := err == rpctypes.ErrGRPCDuplicateKey; got != tt.dup {
				t.Fatalf("checkIntervals: got error %v, want duplicate=%v", err, tt.dup)
			}
		})
	}
}

func TestCheckTxnRequest(t *testing.T) {
	many := make([]*pb.RequestOp, 129)
	for i := range many {
		many[i] = opPut("k")
	}
	tests := []struct {
		name string
		r    *pb.TxnRequest
		want error
	}{
		{"ok", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a")}}, nil},
		{"too many ops", &pb.TxnRequest{Success: many}, rpctypes.ErrGRPCTooManyOps},
		{"empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, rpctypes.ErrGRPCEmptyKey},
		{"empty put key", &pb.TxnRequest{Failure: []*pb.RequestOp{opPut("")}}, rpctypes.ErrGRPCEmptyKey},
		{"op with no request", &pb.TxnRequest{Success: []*pb.RequestOp{{}}}, rpctypes.ErrGRPCKeyNotFound},
		{"nil nested range", &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{}}}}, rpctypes.ErrGRPCEmptyKey},
	}
	for _, tt := range tests {
		if got := checkTxnRequest(tt.r, 128); got != tt.want {
			t.Errorf("%s: checkTxnRequest = %v, want %v", tt.name, got, tt.want)
		}
	}
}
