package apply

import (
	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/mvcc"
)

// LeaseKeys lists the keys attached to lease id; ok is false when the
// lease does not exist.
type LeaseKeys func(id int64) (keys [][]byte, ok bool, err error)

// authInfo is the caller a request header names (etcd's authApplierV3
// takes it from the header of every entry).
func authInfo(req *pb.InternalRaftRequest) *auth.Info {
	ai := &auth.Info{}
	if req.Header != nil {
		ai.Username, ai.Revision = req.Header.Username, req.Header.AuthRevision
	}
	return ai
}

// needAdminPermission is etcd's: the auth changes, and listing users and
// roles, need role root.
func needAdminPermission(r *pb.InternalRaftRequest) bool {
	return r.AuthEnable != nil || r.AuthDisable != nil || r.AuthUserAdd != nil ||
		r.AuthUserDelete != nil || r.AuthUserChangePassword != nil || r.AuthUserGrantRole != nil ||
		r.AuthUserRevokeRole != nil || r.AuthRoleAdd != nil || r.AuthRoleGrantPermission != nil ||
		r.AuthRoleRevokePermission != nil || r.AuthRoleDelete != nil || r.AuthUserList != nil ||
		r.AuthRoleList != nil
}

// checkWriteAuth checks the caller's permissions for a KV write or a
// lease revoke, as etcd's authApplierV3 does before applying it.
func (a *Applier) checkWriteAuth(b *pebble.Batch, req *pb.InternalRaftRequest, ai *auth.Info) error {
	keys := a.leaseKeysIn(b)
	switch {
	case req.Put != nil:
		return checkPutAuth(a.Auth, ai, keys, req.Put)
	case req.DeleteRange != nil:
		r := req.DeleteRange
		if err := a.Auth.IsDeleteRangePermitted(ai, r.Key, r.RangeEnd); err != nil {
			return err
		}
		if r.PrevKv {
			return a.Auth.IsRangePermitted(ai, r.Key, r.RangeEnd)
		}
	case req.Txn != nil:
		return CheckTxnAuth(a.Auth, ai, keys, req.Txn)
	case req.LeaseRevoke != nil:
		return checkLeasePuts(a.Auth, ai, keys, req.LeaseRevoke.ID)
	}
	return nil
}

func (a *Applier) leaseKeysIn(b *pebble.Batch) LeaseKeys {
	return func(id int64) ([][]byte, bool, error) {
		if !a.lessor.LeaseExists(id) {
			return nil, false, nil
		}
		keys, err := lease.Keys(b, id)
		return keys, err == nil, err
	}
}

func checkPutAuth(as *auth.Store, ai *auth.Info, keys LeaseKeys, r *pb.PutRequest) error {
	if err := as.IsPutPermitted(ai, r.Key); err != nil {
		return err
	}
	// A lease whose keys the caller may not write cannot be revoked by
	// it, so it may not attach more keys to it either (etcd).
	if err := checkLeasePuts(as, ai, keys, r.Lease); err != nil {
		return err
	}
	if r.PrevKv {
		return as.IsRangePermitted(ai, r.Key, nil)
	}
	return nil
}

// checkLeasePuts is etcd's: the caller must be root or able to write
// every key attached to lease id (if it exists).
func checkLeasePuts(as *auth.Store, ai *auth.Info, keys LeaseKeys, id int64) error {
	if id == lease.NoLease {
		return nil
	}
	// Root may write every key: no need to read the lease's keys.
	if as.IsAdminPermitted(ai) == nil {
		return nil
	}
	ks, ok, err := keys(id)
	if err != nil || !ok {
		return err
	}
	for _, k := range ks {
		if err := as.IsPutPermitted(ai, k); err != nil {
			return err
		}
	}
	return nil
}

// CheckTxnAuth checks a txn's compares and operations (nested txns too,
// both branches whatever the compares say) against the caller's
// permissions, as etcd's CheckTxnAuth. keys may be nil for a txn without
// puts.
func CheckTxnAuth(as *auth.Store, ai *auth.Info, keys LeaseKeys, r *pb.TxnRequest) error {
	for _, c := range r.Compare {
		if err := as.IsRangePermitted(ai, c.Key, c.RangeEnd); err != nil {
			return err
		}
	}
	if err := checkTxnOpsAuth(as, ai, keys, r.Success); err != nil {
		return err
	}
	return checkTxnOpsAuth(as, ai, keys, r.Failure)
}

func checkTxnOpsAuth(as *auth.Store, ai *auth.Info, keys LeaseKeys, ops []*pb.RequestOp) error {
	for _, op := range ops {
		switch v := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			if v.RequestRange == nil {
				continue
			}
			if err := as.IsRangePermitted(ai, v.RequestRange.Key, v.RequestRange.RangeEnd); err != nil {
				return err
			}
		case *pb.RequestOp_RequestPut:
			if v.RequestPut == nil {
				continue
			}
			if keys == nil {
				keys = func(int64) ([][]byte, bool, error) { return nil, false, nil }
			}
			if err := checkPutAuth(as, ai, keys, v.RequestPut); err != nil {
				return err
			}
		case *pb.RequestOp_RequestDeleteRange:
			d := v.RequestDeleteRange
			if d == nil {
				continue
			}
			if d.PrevKv {
				if err := as.IsRangePermitted(ai, d.Key, d.RangeEnd); err != nil {
					return err
				}
			}
			if err := as.IsDeleteRangePermitted(ai, d.Key, d.RangeEnd); err != nil {
				return err
			}
		case *pb.RequestOp_RequestTxn:
			if v.RequestTxn == nil {
				continue
			}
			if err := CheckTxnAuth(as, ai, keys, v.RequestTxn); err != nil {
				return err
			}
		}
	}
	return nil
}

// isAuthRequest tells whether req is one of the Auth service's.
func isAuthRequest(r *pb.InternalRaftRequest) bool {
	return needAdminPermission(r) || r.AuthStatus != nil || r.Authenticate != nil ||
		r.AuthUserGet != nil || r.AuthRoleGet != nil
}

// applyAuth applies an Auth service request (entry at Raft index index).
// Every response header carries the store revision; the API layer fills
// the rest.
func (a *Applier) applyAuth(wb *mvcc.Batch, req *pb.InternalRaftRequest, ai *auth.Info, index uint64) Result {
	as := a.Auth
	b := wb.Pebble()
	hdr := func() *pb.ResponseHeader { return &pb.ResponseHeader{Revision: wb.Rev()} }
	res := func(resp any, err error) Result {
		if err != nil {
			return Result{Err: err}
		}
		return Result{Resp: resp}
	}
	switch {
	case req.AuthStatus != nil:
		enabled, rev := as.Status()
		return res(&pb.AuthStatusResponse{Header: hdr(), Enabled: enabled, AuthRevision: rev}, nil)
	case req.Authenticate != nil:
		tok, err := as.Authenticate(req.Authenticate.Name, req.Authenticate.SimpleToken, index)
		return res(&pb.AuthenticateResponse{Header: hdr(), Token: tok}, err)
	case req.AuthUserGet != nil:
		// A user may read itself, else it needs role root (etcd).
		if err := as.IsAdminPermitted(ai); err != nil && req.AuthUserGet.Name != ai.Username {
			return Result{Err: err}
		}
		roles, err := as.UserGet(req.AuthUserGet.Name)
		return res(&pb.AuthUserGetResponse{Header: hdr(), Roles: roles}, err)
	case req.AuthRoleGet != nil:
		// A user may read its own roles, else it needs role root (etcd).
		if err := as.IsAdminPermitted(ai); err != nil && !as.HasRole(ai.Username, req.AuthRoleGet.Role) {
			return Result{Err: err}
		}
		perms, err := as.RoleGet(req.AuthRoleGet.Role)
		return res(&pb.AuthRoleGetResponse{Header: hdr(), Perm: perms}, err)
	}
	if err := as.IsAdminPermitted(ai); err != nil {
		return Result{Err: err}
	}
	switch {
	case req.AuthEnable != nil:
		return res(&pb.AuthEnableResponse{Header: hdr()}, as.AuthEnable(b))
	case req.AuthDisable != nil:
		return res(&pb.AuthDisableResponse{Header: hdr()}, as.AuthDisable(b))
	case req.AuthUserAdd != nil:
		return res(&pb.AuthUserAddResponse{Header: hdr()}, as.UserAdd(b, req.AuthUserAdd))
	case req.AuthUserDelete != nil:
		return res(&pb.AuthUserDeleteResponse{Header: hdr()}, as.UserDelete(b, req.AuthUserDelete))
	case req.AuthUserChangePassword != nil:
		return res(&pb.AuthUserChangePasswordResponse{Header: hdr()}, as.UserChangePassword(b, req.AuthUserChangePassword))
	case req.AuthUserGrantRole != nil:
		return res(&pb.AuthUserGrantRoleResponse{Header: hdr()}, as.UserGrantRole(b, req.AuthUserGrantRole))
	case req.AuthUserRevokeRole != nil:
		return res(&pb.AuthUserRevokeRoleResponse{Header: hdr()}, as.UserRevokeRole(b, req.AuthUserRevokeRole))
	case req.AuthRoleAdd != nil:
		return res(&pb.AuthRoleAddResponse{Header: hdr()}, as.RoleAdd(b, req.AuthRoleAdd))
	case req.AuthRoleGrantPermission != nil:
		return res(&pb.AuthRoleGrantPermissionResponse{Header: hdr()}, as.RoleGrantPermission(b, req.AuthRoleGrantPermission))
	case req.AuthRoleRevokePermission != nil:
		return res(&pb.AuthRoleRevokePermissionResponse{Header: hdr()}, as.RoleRevokePermission(b, req.AuthRoleRevokePermission))
	case req.AuthRoleDelete != nil:
		return res(&pb.AuthRoleDeleteResponse{Header: hdr()}, as.RoleDelete(b, req.AuthRoleDelete))
	case req.AuthUserList != nil:
		return res(&pb.AuthUserListResponse{Header: hdr(), Users: as.UserList()}, nil)
	case req.AuthRoleList != nil:
		return res(&pb.AuthRoleListResponse{Header: hdr(), Roles: as.RoleList()}, nil)
	}
	return Result{Err: errUnsupported}
}
