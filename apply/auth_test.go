package apply

import (
	"encoding/base64"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/auth"
)

type authTokens struct{}

func (authTokens) Enable()               {}
func (authTokens) Disable()              {}
func (authTokens) InvalidateUser(string) {}
func (authTokens) Assign(user string, rev uint64, prefix string, index uint64) (string, error) {
	return prefix + "." + user, nil
}

// as makes req come from user at auth revision rev.
func as(user string, rev uint64, req *pb.InternalRaftRequest) *pb.InternalRaftRequest {
	req.Header = &pb.RequestHeader{Username: user, AuthRevision: rev}
	return req
}

// TestApplyAuth: write requests are checked against the caller in their
// header, as etcd's authApplierV3; auth changes need role root.
func TestApplyAuth(t *testing.T) {
	a, _, eng := newApplierEngine(t)
	var err error
	if a.Auth, err = auth.Load(eng.DB, authTokens{}); err != nil {
		t.Fatal(err)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	pw := base64.StdEncoding.EncodeToString(h)
	index := uint64(0)
	apply1 := func(req *pb.InternalRaftRequest) Result {
		t.Helper()
		index++
		hdr := req.Header
		if hdr == nil {
			hdr = &pb.RequestHeader{}
		}
		hdr.ID = index
		req.Header = hdr
		data, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Apply([]*raftpb.Entry{{Index: proto.Uint64(index), Term: proto.Uint64(1), Type: raftpb.EntryNormal.Enum(), Data: data}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Results[0]
	}
	put := func(k string, lease int64) *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: lease}}
	}
	txn := func(cmp string, ops ...*pb.RequestOp) *pb.InternalRaftRequest {
		return &pb.InternalRaftRequest{Txn: &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte(cmp), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL}},
			Success: ops,
		}}
	}
	opPut := func(k string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k)}}}
	}
	opTxn := func(r *pb.InternalRaftRequest) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r.Txn}}
	}
	for i, tc := range []struct {
		req  *pb.InternalRaftRequest
		want error
	}{
		// Setup while auth is off: anyone may.
		{&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "root", HashedPassword: pw}}, nil},       // rev 2
		{&pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"}}, nil}, // 3
		{&pb.InternalRaftRequest{AuthUserAdd: &pb.AuthUserAddRequest{Name: "u", HashedPassword: pw}}, nil},          // 4
		{&pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "r"}}, nil},                              // 5
		{&pb.InternalRaftRequest{AuthRoleGrantPermission: &pb.AuthRoleGrantPermissionRequest{Name: "r",
			Perm: &authpb.Permission{Key: []byte("a/"), RangeEnd: []byte("a0"), PermType: authpb.Permission_READWRITE}}}, nil}, // 6
		{&pb.InternalRaftRequest{AuthUserGrantRole: &pb.AuthUserGrantRoleRequest{User: "u", Role: "r"}}, nil}, // 7
		{&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 9, TTL: 100}}, nil},
		{put("b", 9), nil},
		{&pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}, nil},
		// Auth on.
		{&pb.InternalRaftRequest{AuthEnable: &pb.AuthEnableRequest{}}, auth.ErrUserEmpty},
		{as("u", 7, &pb.InternalRaftRequest{AuthRoleAdd: &pb.AuthRoleAddRequest{Name: "x"}}), auth.ErrPermissionDenied},
		{as("nobody", 7, &pb.InternalRaftRequest{AuthUserList: &pb.AuthUserListRequest{}}), auth.ErrUserNotFound},
		{put("a/1", 0), auth.ErrUserEmpty},
		{as("u", 7, put("a/1", 0)), nil},
		{as("u", 6, put("a/1", 0)), auth.ErrAuthOldRevision},
		{as("u", 7, put("b", 0)), auth.ErrPermissionDenied},
		{as("u", 7, put("a/2", 9)), auth.ErrPermissionDenied}, // lease 9 holds b, which u may not write
		{as("root", 7, put("a/2", 9)), nil},
		{as("u", 7, &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a/"), RangeEnd: []byte("a0")}}), nil},
		{as("u", 7, &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a/"), RangeEnd: []byte("a1")}}), auth.ErrPermissionDenied},
		{as("u", 7, txn("a/x", opPut("a/y"))), nil},
		{as("u", 7, txn("b", opPut("a/y"))), auth.ErrPermissionDenied},                    // a compare outside
		{as("u", 7, txn("a/x", opTxn(txn("a/z", opPut("c"))))), auth.ErrPermissionDenied}, // a nested put outside
		{as("u", 7, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 9}}), auth.ErrPermissionDenied},
		{as("u", 7, &pb.InternalRaftRequest{AuthUserGet: &pb.AuthUserGetRequest{Name: "u"}}), nil},
		{as("u", 7, &pb.InternalRaftRequest{AuthUserGet: &pb.AuthUserGetRequest{Name: "root"}}), auth.ErrPermissionDenied},
		{as("u", 7, &pb.InternalRaftRequest{AuthRoleGet: &pb.AuthRoleGetRequest{Role: "r"}}), nil},
		{as("u", 7, &pb.InternalRaftRequest{AuthRoleGet: &pb.AuthRoleGetRequest{Role: "root"}}), auth.ErrPermissionDenied},
		{&pb.InternalRaftRequest{AuthStatus: &pb.AuthStatusRequest{}}, nil},
		{&pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: "u", SimpleToken: "p"}}, nil},
		{as("root", 7, &pb.InternalRaftRequest{AuthUserDelete: &pb.AuthUserDeleteRequest{Name: "root"}}), auth.ErrInvalidAuthMgmt},
		{as("root", 7, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 9}}), nil},
		{as("root", 7, &pb.InternalRaftRequest{AuthDisable: &pb.AuthDisableRequest{}}), nil},
		{put("b", 0), nil},
	} {
		res := apply1(tc.req)
		if res.Err != tc.want {
			t.Fatalf("#%d %v: got %v, want %v", i, tc.req, res.Err, tc.want)
		}
		switch r := res.Resp.(type) {
		case *pb.AuthenticateResponse:
			if r.Token != "p.u" {
				t.Errorf("token %q", r.Token)
			}
		case *pb.AuthStatusResponse:
			if !r.Enabled || r.AuthRevision != 7 {
				t.Errorf("status %v", r)
			}
		}
	}
}
