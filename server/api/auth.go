package api

import (
	"context"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/cairn-kv/cairn/apply"
	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/server"
)

// Authenticator is what the Auth service and the permission checks of
// every other service need from the member.
type Authenticator interface {
	// AuthStore is the replicated auth state the checks read.
	AuthStore() *auth.Store
	// AuthInfoFromToken resolves a token; ok false: invalid or expired.
	AuthInfoFromToken(ctx context.Context, token string) (*auth.Info, bool)
	// LeaseKeys lists a lease's keys (ok false: no such lease).
	LeaseKeys(id int64) ([][]byte, bool, error)

	AuthEnable(context.Context, *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error)
	AuthDisable(context.Context, *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error)
	AuthStatus(context.Context, *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error)
	Authenticate(context.Context, *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error)
	UserAdd(context.Context, *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error)
	UserDelete(context.Context, *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error)
	UserChangePassword(context.Context, *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error)
	UserGrantRole(context.Context, *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error)
	UserGet(context.Context, *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error)
	UserRevokeRole(context.Context, *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error)
	RoleAdd(context.Context, *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error)
	RoleGrantPermission(context.Context, *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error)
	RoleGet(context.Context, *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error)
	RoleRevokePermission(context.Context, *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error)
	RoleDelete(context.Context, *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error)
	UserList(context.Context, *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error)
	RoleList(context.Context, *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error)
}

// authn finds who calls and what they may do, as etcd's
// EtcdServer.AuthInfoFromCtx and its checks. A nil *authn (no
// Authenticator) lets everything through.
type authn struct {
	a Authenticator
	// clientCertAuth is --client-cert-auth: without a token, a verified
	// client certificate's CN is the user.
	clientCertAuth bool
}

// info is the caller of ctx, as etcd's AuthInfoFromCtx: nil while auth is
// disabled or when the call carries neither a token nor (with
// --client-cert-auth) a verified client certificate; auth.ErrInvalidAuthToken
// for a token that is unknown, expired or malformed. The token is gRPC
// metadata "token", else "authorization" (what the HTTP gateway forwards;
// a "Bearer " prefix is dropped). A token wins over a certificate.
func (x *authn) info(ctx context.Context) (*auth.Info, error) {
	if x == nil || !x.a.AuthStore().IsAuthEnabled() {
		return nil, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	ts, ok := md[rpctypes.TokenFieldNameGRPC]
	if !ok {
		ts, ok = md[rpctypes.TokenFieldNameSwagger]
	}
	if ok && len(ts) > 0 {
		ai, ok := x.a.AuthInfoFromToken(ctx, strings.TrimPrefix(ts[0], "Bearer "))
		if !ok {
			return nil, auth.ErrInvalidAuthToken
		}
		return ai, nil
	}
	if !x.clientCertAuth {
		return nil, nil
	}
	return x.fromTLS(ctx, md), nil
}

// fromTLS is etcd's AuthInfoFromTLS: the CN of the first verified chain's
// leaf, at the current auth revision; never for a call the HTTP gateway
// makes (its certificate is the server's own).
func (x *authn) fromTLS(ctx context.Context, md metadata.MD) *auth.Info {
	p, ok := peer.FromContext(ctx)
	if !ok || p == nil || p.AuthInfo == nil {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	for _, chain := range ti.State.VerifiedChains {
		if len(chain) < 1 {
			continue
		}
		if len(md["grpcgateway-accept"]) > 0 {
			return nil
		}
		return &auth.Info{Username: chain[0].Subject.CommonName, Revision: x.a.AuthStore().Revision()}
	}
	return nil
}

// withInfo returns ctx carrying the caller for the member's proposals
// (whose header then names it, for apply's checks).
func (x *authn) withInfo(ctx context.Context) (context.Context, error) {
	ai, err := x.info(ctx)
	if err != nil {
		return ctx, err
	}
	return server.WithAuthInfo(ctx, ai), nil
}

// requireAuthInfo is etcd's: while auth is enabled, a caller is required
// (auth.ErrUserEmpty without one).
func (x *authn) requireAuthInfo(ctx context.Context) error {
	if x == nil || !x.a.AuthStore().IsAuthEnabled() {
		return nil
	}
	ai, err := x.info(ctx)
	if err != nil {
		return err
	}
	if ai == nil {
		return auth.ErrUserEmpty
	}
	return nil
}

// isAdmin is etcd's AuthAdmin.isPermitted: the caller needs role root.
func (x *authn) isAdmin(ctx context.Context) error {
	if x == nil {
		return nil
	}
	ai, err := x.info(ctx)
	if err != nil {
		return err
	}
	return x.a.AuthStore().IsAdminPermitted(ai)
}

// doSerialize is etcd's: check the caller with chk, run get, and answer
// auth.ErrAuthOldRevision if the auth revision moved while get read (the
// caller's permissions may have changed under it).
func (x *authn) doSerialize(ctx context.Context, chk func(*auth.Info) error, get func() error) error {
	if x == nil {
		return get()
	}
	ai, err := x.info(ctx)
	if err != nil {
		return err
	}
	if ai == nil {
		ai = &auth.Info{}
	}
	if err := chk(ai); err != nil {
		return err
	}
	if err := get(); err != nil {
		return err
	}
	if ai.Revision != 0 && ai.Revision != x.a.AuthStore().Revision() {
		return auth.ErrAuthOldRevision
	}
	return nil
}

// checkLeaseKeys is etcd's checkLeaseRenew (put: write permission on
// every key of the lease) and checkLeaseTimeToLive/checkLeaseLeases
// (read permission): root may do anything; a caller is required.
func (x *authn) checkLeaseKeys(ctx context.Context, ids []int64, put bool) (rev uint64, err error) {
	if x == nil {
		return 0, nil
	}
	st := x.a.AuthStore()
	rev = st.Revision()
	if !st.IsAuthEnabled() {
		return rev, nil
	}
	ai, err := x.info(ctx)
	if err != nil {
		return rev, err
	}
	if ai == nil {
		return rev, auth.ErrUserEmpty
	}
	if st.IsAdminPermitted(ai) == nil {
		return rev, nil
	}
	for _, id := range ids {
		keys, _, err := x.a.LeaseKeys(id)
		if err != nil {
			return rev, err
		}
		for _, k := range keys {
			if put {
				err = st.IsPutPermitted(ai, k)
			} else {
				err = st.IsRangePermitted(ai, k, []byte{})
			}
			if err != nil {
				return rev, err
			}
		}
	}
	return rev, nil
}

// staleSince answers auth.ErrAuthOldRevision when auth is enabled and its
// revision is no longer rev.
func (x *authn) staleSince(rev uint64) error {
	if x == nil {
		return nil
	}
	st := x.a.AuthStore()
	if st.IsAuthEnabled() && st.Revision() != rev {
		return auth.ErrAuthOldRevision
	}
	return nil
}

// checkTxn checks a read-only txn's compares and ranges.
func (x *authn) checkTxn(r *pb.TxnRequest) func(*auth.Info) error {
	return func(ai *auth.Info) error { return apply.CheckTxnAuth(x.a.AuthStore(), ai, x.a.LeaseKeys, r) }
}

// forwardToken returns a context for calls on the member's own client
// that carries the caller's token, so the Lock and Election services act
// with the caller's permissions (etcd runs them on an in-process client
// that sees the caller's metadata).
func forwardToken(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, k := range []string{rpctypes.TokenFieldNameGRPC, rpctypes.TokenFieldNameSwagger} {
		if ts := md[k]; len(ts) > 0 {
			return metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, strings.TrimPrefix(ts[0], "Bearer "))
		}
	}
	return ctx
}

// authServer is etcd's Auth service. Every call but Authenticate goes
// with the caller's identity (an invalid token fails it); Raft and apply
// decide the rest, as in etcd.
type authServer struct {
	pb.UnimplementedAuthServer
	m   Authenticator
	hdr Headers
	x   *authn
}

func authCall[Req any, Resp interface{ GetHeader() *pb.ResponseHeader }](s *authServer, ctx context.Context, r Req, withID bool,
	call func(context.Context, Req) (Resp, error), setHeader func(Resp, *pb.ResponseHeader)) (Resp, error) {
	var zero Resp
	if withID {
		var err error
		if ctx, err = s.x.withInfo(ctx); err != nil {
			return zero, toGRPCError(err)
		}
	}
	resp, err := call(ctx, r)
	if err != nil {
		return zero, toGRPCError(err)
	}
	h := resp.GetHeader()
	fill(s.hdr, &h)
	setHeader(resp, h)
	return resp, nil
}

func (s *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return authCall(s, ctx, r, true, s.m.AuthEnable, func(p *pb.AuthEnableResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return authCall(s, ctx, r, true, s.m.AuthDisable, func(p *pb.AuthDisableResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return authCall(s, ctx, r, true, s.m.AuthStatus, func(p *pb.AuthStatusResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	return authCall(s, ctx, r, false, s.m.Authenticate, func(p *pb.AuthenticateResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	return authCall(s, ctx, r, true, s.m.UserAdd, func(p *pb.AuthUserAddResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return authCall(s, ctx, r, true, s.m.UserDelete, func(p *pb.AuthUserDeleteResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	return authCall(s, ctx, r, true, s.m.UserChangePassword, func(p *pb.AuthUserChangePasswordResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return authCall(s, ctx, r, true, s.m.UserGrantRole, func(p *pb.AuthUserGrantRoleResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return authCall(s, ctx, r, true, s.m.UserGet, func(p *pb.AuthUserGetResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return authCall(s, ctx, r, true, s.m.UserList, func(p *pb.AuthUserListResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return authCall(s, ctx, r, true, s.m.UserRevokeRole, func(p *pb.AuthUserRevokeRoleResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return authCall(s, ctx, r, true, s.m.RoleAdd, func(p *pb.AuthRoleAddResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return authCall(s, ctx, r, true, s.m.RoleGrantPermission, func(p *pb.AuthRoleGrantPermissionResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return authCall(s, ctx, r, true, s.m.RoleGet, func(p *pb.AuthRoleGetResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return authCall(s, ctx, r, true, s.m.RoleList, func(p *pb.AuthRoleListResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return authCall(s, ctx, r, true, s.m.RoleRevokePermission, func(p *pb.AuthRoleRevokePermissionResponse, h *pb.ResponseHeader) { p.Header = h })
}

func (s *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return authCall(s, ctx, r, true, s.m.RoleDelete, func(p *pb.AuthRoleDeleteResponse, h *pb.ResponseHeader) { p.Header = h })
}
