package server

import (
	"context"
	"encoding/base64"
	"runtime"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"golang.org/x/crypto/bcrypt"

	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/pkg/authtoken"
)

// bcryptRestFactor is how long a bcrypt slot stays taken after a failed
// password comparison, as a multiple of the time it took: bcrypt is
// expensive by design, and a flood of Authenticate calls with wrong
// passwords must not take the CPU from other clients' requests. With
// factor 3, failing comparisons use at most a quarter of each slot's
// core; successful ones and hashing do not rest.
const bcryptRestFactor = 3

// maxBcryptWaiters bounds the calls waiting for a bcrypt slot; more fail
// at once with ErrTooManyRequests, so a flood of logins holds bounded
// memory.
const maxBcryptWaiters = 4096

type authCtxKey struct{}

// WithAuthInfo returns ctx carrying the caller ai (nil: none). Proposals
// made under it name the caller in their header (etcd's RequestHeader
// Username and AuthRevision), and apply checks their permissions.
func WithAuthInfo(ctx context.Context, ai *auth.Info) context.Context {
	if ai == nil {
		return ctx
	}
	return context.WithValue(ctx, authCtxKey{}, ai)
}

func authInfoFrom(ctx context.Context) *auth.Info {
	ai, _ := ctx.Value(authCtxKey{}).(*auth.Info)
	return ai
}

// asRoot is ctx for the member's own proposals that etcd makes as root
// (lease expiry revokes: etcd's authStore.WithRoot).
func (m *Member) asRoot(ctx context.Context) context.Context {
	return WithAuthInfo(ctx, &auth.Info{Username: auth.RootUser, Revision: m.auth.Revision()})
}

// openAuth loads the auth state and makes the token provider the config
// names (etcd's --auth-token, --auth-token-ttl); errors are
// authtoken.New's.
func (m *Member) openAuth() error {
	tokens, err := authtoken.New(m.cfg.AuthToken, m.cfg.AuthTokenTTL, m.lg,
		authtoken.WithIndexWaiter(func(ctx context.Context, i uint64) bool { return m.applied.Wait(ctx.Done(), i) }))
	if err != nil {
		return err
	}
	m.tokens = tokens
	m.auth, err = auth.Load(m.eng.DB, tokens)
	if err != nil {
		return err
	}
	slots := max(1, runtime.GOMAXPROCS(0)/4)
	m.bcryptSem = make(chan struct{}, slots)
	return nil
}

// AuthStore is the member's auth state, for the API layer's checks.
func (m *Member) AuthStore() *auth.Store { return m.auth }

// AuthInfoFromToken resolves a client's token (etcd's authInfoFromToken):
// ok is false for an unknown, expired or malformed token, or when ctx ends
// while a simple token's Raft index is not applied here yet.
func (m *Member) AuthInfoFromToken(ctx context.Context, token string) (*auth.Info, bool) {
	ai, ok := m.tokens.Info(ctx, token, m.auth.Revision())
	if !ok {
		return nil, false
	}
	return &auth.Info{Username: ai.Username, Revision: ai.Revision}, true
}

// LeaseKeys lists the keys attached to lease id (ok false: no such lease),
// for the permission checks of lease calls.
func (m *Member) LeaseKeys(id int64) ([][]byte, bool, error) {
	if !m.lessor.LeaseExists(id) {
		return nil, false, nil
	}
	keys, err := lease.Keys(m.eng.DB, id)
	return keys, err == nil, err
}

// bcryptSlot runs fn (a bcrypt hash or comparison) in one of the member's
// few bcrypt slots, waiting for one as long as ctx allows (ErrTooManyRequests
// when maxBcryptWaiters calls wait already); when fn
// reports a failure, the slot rests bcryptRestFactor times fn's duration
// before the next use.
func (m *Member) bcryptSlot(ctx context.Context, fn func() (failed bool)) error {
	if m.bcryptWaiters.Add(1) > maxBcryptWaiters {
		m.bcryptWaiters.Add(-1)
		return ErrTooManyRequests
	}
	defer m.bcryptWaiters.Add(-1)
	select {
	case m.bcryptSem <- struct{}{}:
	case <-ctx.Done():
		return m.ctxErr(ctx, ctx.Err())
	case <-m.stopping:
		return ErrStopped
	}
	start := time.Now()
	if !fn() {
		<-m.bcryptSem
		return nil
	}
	rest := time.Since(start) * bcryptRestFactor
	go func() {
		t := time.NewTimer(rest)
		defer t.Stop()
		select {
		case <-t.C:
		case <-m.stopping:
		}
		<-m.bcryptSem
	}()
	return nil
}

func (m *Member) hashPassword(ctx context.Context, password string) (string, error) {
	var h []byte
	var err error
	if serr := m.bcryptSlot(ctx, func() bool {
		h, err = bcrypt.GenerateFromPassword([]byte(password), m.cfg.bcryptCost())
		return false
	}); serr != nil {
		return "", serr
	}
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

// AuthEnable replicates enabling auth (etcd's rules in auth.Store).
func (m *Member) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{AuthEnable: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthEnableResponse), nil
}

// AuthDisable replicates disabling auth.
func (m *Member) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{AuthDisable: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthDisableResponse), nil
}

// AuthStatus answers through Raft, as etcd 3.7, so it is linearizable.
func (m *Member) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{AuthStatus: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthStatusResponse), nil
}

// Authenticate checks the password here, in a bcrypt slot, and then
// proposes the token's issue without the password, as etcd's: the entry
// is applied on every member, so a simple token is known everywhere. If
// the auth revision moved while the password was checked, it checks
// again. Errors: auth.ErrAuthNotEnabled, auth.ErrAuthFailed,
// auth.ErrNoPasswordUser, and proposal errors.
func (m *Member) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if err := m.linearizableReadNotify(ctx); err != nil {
		return nil, err
	}
	defer func() { r.Password = "" }()
	for {
		var rev uint64
		var err error
		if !m.auth.IsAuthEnabled() {
			return nil, auth.ErrAuthNotEnabled
		}
		if serr := m.bcryptSlot(ctx, func() bool {
			rev, err = m.auth.CheckPassword(r.Name, r.Password)
			return err != nil
		}); serr != nil {
			return nil, serr
		}
		if err != nil {
			if err != auth.ErrAuthNotEnabled {
				m.lg.Warn("invalid authentication was requested", "user", r.Name, "error", err)
			}
			return nil, err
		}
		prefix, err := m.tokens.GenTokenPrefix()
		if err != nil {
			return nil, err
		}
		resp, err := m.propose(ctx, &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: r.Name, SimpleToken: prefix}})
		if err != nil {
			return nil, err
		}
		if rev == m.auth.Revision() {
			return resp.(*pb.AuthenticateResponse), nil
		}
		m.lg.Info("revision when password checked became stale; retrying")
	}
}

// UserAdd hashes the password here (unless the user has none) and
// replicates the user without the plain password, as etcd's.
func (m *Member) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	if r.Options == nil || !r.Options.NoPassword {
		h, err := m.hashPassword(ctx, r.Password)
		if err != nil {
			return nil, err
		}
		r.HashedPassword, r.Password = h, ""
	}
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{AuthUserAdd: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthUserAddResponse), nil
}

// UserChangePassword hashes a non-empty password here, as etcd's.
func (m *Member) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	if r.Password != "" {
		h, err := m.hashPassword(ctx, r.Password)
		if err != nil {
			return nil, err
		}
		r.HashedPassword, r.Password = h, ""
	}
	resp, err := m.propose(ctx, &pb.InternalRaftRequest{AuthUserChangePassword: r})
	if err != nil {
		return nil, err
	}
	return resp.(*pb.AuthUserChangePasswordResponse), nil
}

func proposeAs[T any](m *Member, ctx context.Context, req *pb.InternalRaftRequest) (T, error) {
	var zero T
	resp, err := m.propose(ctx, req)
	if err != nil {
		return zero, err
	}
	return resp.(T), nil
}

// The other Auth calls are replicated as they are; apply decides them.

func (m *Member) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return proposeAs[*pb.AuthUserDeleteResponse](m, ctx, &pb.InternalRaftRequest{AuthUserDelete: r})
}

func (m *Member) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return proposeAs[*pb.AuthUserGrantRoleResponse](m, ctx, &pb.InternalRaftRequest{AuthUserGrantRole: r})
}

func (m *Member) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return proposeAs[*pb.AuthUserGetResponse](m, ctx, &pb.InternalRaftRequest{AuthUserGet: r})
}

func (m *Member) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return proposeAs[*pb.AuthUserListResponse](m, ctx, &pb.InternalRaftRequest{AuthUserList: r})
}

func (m *Member) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return proposeAs[*pb.AuthUserRevokeRoleResponse](m, ctx, &pb.InternalRaftRequest{AuthUserRevokeRole: r})
}

func (m *Member) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return proposeAs[*pb.AuthRoleAddResponse](m, ctx, &pb.InternalRaftRequest{AuthRoleAdd: r})
}

func (m *Member) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return proposeAs[*pb.AuthRoleGrantPermissionResponse](m, ctx, &pb.InternalRaftRequest{AuthRoleGrantPermission: r})
}

func (m *Member) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return proposeAs[*pb.AuthRoleGetResponse](m, ctx, &pb.InternalRaftRequest{AuthRoleGet: r})
}

func (m *Member) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return proposeAs[*pb.AuthRoleListResponse](m, ctx, &pb.InternalRaftRequest{AuthRoleList: r})
}

func (m *Member) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return proposeAs[*pb.AuthRoleRevokePermissionResponse](m, ctx, &pb.InternalRaftRequest{AuthRoleRevokePermission: r})
}

func (m *Member) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return proposeAs[*pb.AuthRoleDeleteResponse](m, ctx, &pb.InternalRaftRequest{AuthRoleDelete: r})
}
