package compat

// Auth differential test: every one of the 17 Auth RPCs and every auth
// error, and the permission checks of KV, Watch, Lease, Maintenance and
// Cluster calls, as raw gRPC requests sent with a user's token.
//
// What it proves: from the same fresh state, Cairn and etcd 3.7.4 give
// the same answers (whole responses, headers normalized as in
// harness_test.go, tokens reduced to their kind and claims: see
// normalizeToken) to one scenario run in simple-token and in JWT mode.
// Each step also states etcd's expected answer, checked on etcd, so the
// scenario documents the rules: root user and role before AuthEnable,
// root rules while enabled, admin-only management, a user reading its own
// user and roles, permission ranges (exact key, prefix, from-key), txn
// compares and nested ops, prev_kv needing read, leases whose keys are
// outside the caller's permissions, stale JWTs (ErrAuthOldRevision),
// invalidated simple tokens, wrong passwords, no-password users.

import (
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestAuthDiff(t *testing.T) {
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			authScenario(newAuthEnv(t, mode))
		})
	}
}

// Short names for the requests of the scenario.
func userAdd(name, pw string) *pb.AuthUserAddRequest {
	return &pb.AuthUserAddRequest{Name: name, Password: pw}
}
func userAddNoPassword(name string) *pb.AuthUserAddRequest {
	return &pb.AuthUserAddRequest{Name: name, Options: &authpb.UserAddOptions{NoPassword: true}}
}
func userGet(name string) *pb.AuthUserGetRequest       { return &pb.AuthUserGetRequest{Name: name} }
func userDelete(name string) *pb.AuthUserDeleteRequest { return &pb.AuthUserDeleteRequest{Name: name} }
func userPasswd(name, pw string) *pb.AuthUserChangePasswordRequest {
	return &pb.AuthUserChangePasswordRequest{Name: name, Password: pw}
}
func grantRole(user, role string) *pb.AuthUserGrantRoleRequest {
	return &pb.AuthUserGrantRoleRequest{User: user, Role: role}
}
func revokeRole(user, role string) *pb.AuthUserRevokeRoleRequest {
	return &pb.AuthUserRevokeRoleRequest{Name: user, Role: role}
}
func roleAdd(name string) *pb.AuthRoleAddRequest       { return &pb.AuthRoleAddRequest{Name: name} }
func roleGet(name string) *pb.AuthRoleGetRequest       { return &pb.AuthRoleGetRequest{Role: name} }
func roleDelete(name string) *pb.AuthRoleDeleteRequest { return &pb.AuthRoleDeleteRequest{Role: name} }
func grantPerm(role string, typ authpb.Permission_Type, key, end string) *pb.AuthRoleGrantPermissionRequest {
	return &pb.AuthRoleGrantPermissionRequest{Name: role, Perm: &authpb.Permission{PermType: typ, Key: []byte(key), RangeEnd: []byte(end)}}
}
func revokePerm(role, key, end string) *pb.AuthRoleRevokePermissionRequest {
	return &pb.AuthRoleRevokePermissionRequest{Role: role, Key: []byte(key), RangeEnd: []byte(end)}
}

// errNoPasswordUser is what etcd answers to Authenticate for a user added
// with no_password: auth.ErrNoPasswordUser, which its toGRPCError table
// does not map.
var errNoPasswordUser = status.Error(codes.Unknown, "auth: authentication failed, password was given for no password user")

// unknownErr is err's message under codes.Unknown.
func unknownErr(err error) error {
	return status.Error(codes.Unknown, status.Convert(err).Message())
}

const (
	read      = authpb.READ
	write     = authpb.WRITE
	readwrite = authpb.READWRITE
)

var (
	authEnable  = &pb.AuthEnableRequest{}
	authDisable = &pb.AuthDisableRequest{}
	authStatus  = &pb.AuthStatusRequest{}
	userList    = &pb.AuthUserListRequest{}
	roleList    = &pb.AuthRoleListRequest{}
)

func authScenario(e *authEnv) {
	t := e.t
	t.Helper()

	// Auth disabled: management works for anyone, logins do not.
	e.run("", authStatus, ok)
	e.login("root", "pw", rpctypes.ErrGRPCAuthNotEnabled)
	e.run("", userList, ok)
	e.run("", roleList, ok)
	e.run("", userAdd("", "pw"), rpctypes.ErrGRPCUserEmpty)
	e.run("", roleAdd(""), rpctypes.ErrGRPCRoleEmpty)
	e.run("", authEnable, rpctypes.ErrGRPCRootUserNotExist)
	e.run("", userAdd("root", "pw"), ok)
	e.run("", userAdd("root", "other"), rpctypes.ErrGRPCUserAlreadyExist)
	e.run("", authEnable, rpctypes.ErrGRPCRootRoleNotExist)
	// The root role may be granted before it exists.
	e.run("", grantRole("root", "root"), ok)
	e.run("", roleGet("root"), rpctypes.ErrGRPCRoleNotFound)
	e.run("", grantRole("root", "nosuch"), rpctypes.ErrGRPCRoleNotFound)
	e.run("", grantRole("nosuch", "root"), rpctypes.ErrGRPCUserNotFound)
	e.run("", roleAdd("root"), ok)
	e.run("", roleAdd("root"), rpctypes.ErrGRPCRoleAlreadyExist)
	e.run("", roleGet("root"), ok)           // every key, READWRITE
	e.run("", grantRole("root", "root"), ok) // granted twice: no change
	e.run("", userGet("root"), ok)

	// Roles and permissions.
	for _, r := range []string{"reader", "writer", "fromkey", "empty"} {
		e.run("", roleAdd(r), ok)
	}
	e.run("", grantPerm("reader", read, "foo", ""), ok)                             // exact key
	e.run("", grantPerm("reader", read, "pub/", "pub0"), ok)                        // prefix pub/
	e.run("", grantPerm("writer", write, "app/", "app0"), ok)                       // prefix app/, write only
	e.run("", grantPerm("writer", readwrite, "both", ""), ok)                       //
	e.run("", grantPerm("fromkey", read, "x", "\x00"), ok)                          // every key >= x
	e.run("", grantPerm("reader", readwrite, "foo", ""), ok)                        // the same key again: type updated
	e.run("", grantPerm("reader", read, "b", "a"), rpctypes.ErrGRPCInvalidAuthMgmt) // end before key
	e.run("", grantPerm("reader", read, "", ""), rpctypes.ErrGRPCInvalidAuthMgmt)   // empty key
	e.run("", grantPerm("nosuch", read, "x", ""), rpctypes.ErrGRPCRoleNotFound)
	e.run("", &pb.AuthRoleGrantPermissionRequest{Name: "reader"}, rpctypes.ErrGRPCPermissionNotGiven)
	e.run("", grantPerm("root", read, "ignored", ""), ok) // root's permissions stay "everything"
	e.run("", roleGet("root"), ok)
	e.run("", roleGet("reader"), ok)
	e.run("", roleGet("empty"), ok)
	e.run("", roleGet("nosuch"), rpctypes.ErrGRPCRoleNotFound)
	e.run("", revokePerm("reader", "nope", ""), rpctypes.ErrGRPCPermissionNotGranted)
	e.run("", revokePerm("reader", "pub/", ""), rpctypes.ErrGRPCPermissionNotGranted) // end must match
	e.run("", revokePerm("nosuch", "foo", ""), rpctypes.ErrGRPCRoleNotFound)
	e.run("", grantPerm("empty", read, "tmp", ""), ok)
	e.run("", revokePerm("empty", "tmp", ""), ok)
	e.run("", roleGet("empty"), ok)
	e.run("", roleList, ok)

	// Users.
	e.run("", userAdd("alice", "pw-a"), ok)
	e.run("", userAdd("bob", "pw-b"), ok)
	e.run("", userAddNoPassword("carol"), ok)
	e.run("", &pb.AuthUserAddRequest{Name: "dave", Password: "ignored", Options: &authpb.UserAddOptions{NoPassword: true}}, ok)
	e.run("", userAdd("erin", ""), ok) // an empty password is a password
	e.run("", userAdd("frank", "pw-f"), ok)
	e.run("", grantRole("alice", "reader"), ok)
	e.run("", grantRole("alice", "fromkey"), ok)
	e.run("", grantRole("alice", "reader"), ok) // again: no change
	e.run("", grantRole("bob", "writer"), ok)
	e.run("", grantRole("frank", "root"), ok) // a second root user
	e.run("", revokeRole("alice", "writer"), rpctypes.ErrGRPCRoleNotGranted)
	e.run("", revokeRole("nosuch", "reader"), rpctypes.ErrGRPCUserNotFound)
	e.run("", userGet("alice"), ok) // roles sorted
	e.run("", userGet("carol"), ok)
	e.run("", userGet("nosuch"), rpctypes.ErrGRPCUserNotFound)
	e.run("", userGet(""), rpctypes.ErrGRPCUserNotFound)
	e.run("", userList, ok)
	e.run("", userPasswd("nosuch", "x"), rpctypes.ErrGRPCUserNotFound)
	e.run("", userPasswd("bob", "pw-b2"), ok)
	e.run("", userPasswd("carol", "x"), ok) // no-password user: stays without one
	e.run("", userDelete("nosuch"), rpctypes.ErrGRPCUserNotFound)
	e.run("", roleDelete("nosuch"), rpctypes.ErrGRPCRoleNotFound)
	// Bad input: bcrypt's 72-byte limit comes back as codes.Unknown, as
	// etcd does not map the error; names and permission types are not
	// checked beyond emptiness and key order.
	long := strings.Repeat("p", 73)
	errBcrypt := status.Error(codes.Unknown, "bcrypt: password length exceeds 72 bytes")
	e.run("", userAdd("longpw", long), errBcrypt)
	e.run("", userAdd("pw72", long[:72]), ok)
	e.run("", userPasswd("alice", long), errBcrypt)
	e.run("", grantPerm("empty", authpb.Permission_Type(7), "k", ""), ok)
	e.run("", grantPerm("empty", read, "", "\x00"), rpctypes.ErrGRPCInvalidAuthMgmt)
	e.run("", grantPerm("empty", read, "\x00", "\x00"), ok)
	e.run("", grantPerm("empty", read, "k", "k"), rpctypes.ErrGRPCInvalidAuthMgmt)
	e.run("", revokePerm("empty", "\x00", "\x00"), ok)
	e.run("", roleGet("empty"), ok)
	e.run("", userAdd("a\x00b", "x"), ok)
	e.run("", userAdd(strings.Repeat("u", 100), "x"), ok)
	e.run("", roleAdd(strings.Repeat("r", 100)), ok)
	e.run("", userList, ok)
	e.run("", roleList, ok)
	e.run("", userDelete("a\x00b"), ok)
	e.run("", authDisable, ok) // already disabled: no error
	// While disabled, root may lose its role (and get it back).
	e.run("", revokeRole("root", "root"), ok)
	e.run("", authEnable, rpctypes.ErrGRPCRootRoleNotExist)
	e.run("", grantRole("root", "root"), ok)
	e.run("", put("foo", "1"), ok)
	e.run("", put("pub/a", "2"), ok)
	e.run("", put("secret", "3"), ok)
	e.run("", put("zz", "4"), ok)

	// Enable.
	e.run("", authEnable, ok)
	e.run("", authEnable, rpctypes.ErrGRPCUserEmpty) // now it needs root
	e.run("", authStatus, ok)                        // unauthenticated AuthStatus is allowed (etcd 3.7)

	// Requests without a token, or with a bad one.
	e.run("", get("foo"), rpctypes.ErrGRPCUserEmpty)
	e.run("", put("foo", "x"), rpctypes.ErrGRPCUserEmpty)
	e.run("", userList, rpctypes.ErrGRPCUserEmpty)
	e.run("token:garbage", get("foo"), rpctypes.ErrGRPCInvalidAuthToken)
	e.run("token:abcdefghijklmnop.1", get("foo"), rpctypes.ErrGRPCInvalidAuthToken)
	e.run("token:a.b.c", get("foo"), rpctypes.ErrGRPCInvalidAuthToken)
	e.run("token:garbage", authStatus, rpctypes.ErrGRPCInvalidAuthToken)

	// Logins.
	e.login("root", "wrong", rpctypes.ErrGRPCAuthFailed)
	e.login("nosuch", "pw", rpctypes.ErrGRPCAuthFailed)
	e.login("", "", rpctypes.ErrGRPCAuthFailed)
	// A no-password user cannot log in; etcd's error has no gRPC mapping,
	// so it arrives as codes.Unknown with the auth package's message.
	e.login("carol", "", errNoPasswordUser)
	e.login("carol", "x", errNoPasswordUser)
	e.login("bob", "pw-b", rpctypes.ErrGRPCAuthFailed) // the old password
	e.login("root", "pw", ok)
	e.login("alice", "pw-a", ok)
	e.login("bob", "pw-b2", ok)
	e.login("erin", "", ok)
	e.login("frank", "pw-f", ok)
	e.loginAs("alice2", "alice", "pw-a", ok) // a second token for alice

	// Root may do everything; others may read their own user and roles.
	e.run("root", authStatus, ok)
	e.run("root", authEnable, ok) // enabled already: no error
	e.run("root", userList, ok)
	e.run("frank", roleList, ok)
	e.run("alice", authStatus, ok)
	e.run("alice", userList, rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", roleList, rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", userGet("alice"), ok)
	e.run("alice", userGet("bob"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", roleGet("reader"), ok)
	e.run("alice", roleGet("writer"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", userAdd("mallory", "x"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", userPasswd("alice", "new"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", grantRole("alice", "root"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", authDisable, rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", roleAdd("r"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", grantPerm("reader", readwrite, "", "\x00"), rpctypes.ErrGRPCPermissionDenied)
	e.run("erin", get("foo"), rpctypes.ErrGRPCPermissionDenied) // no roles

	// Root rules while enabled.
	e.run("root", userDelete("root"), rpctypes.ErrGRPCInvalidAuthMgmt)
	e.run("root", roleDelete("root"), rpctypes.ErrGRPCInvalidAuthMgmt)
	e.run("root", revokeRole("root", "root"), rpctypes.ErrGRPCInvalidAuthMgmt)
	e.run("root", revokeRole("frank", "root"), ok) // another user may lose root
	e.run("root", userAdd("", "x"), rpctypes.ErrGRPCUserEmpty)
	e.run("root", roleAdd("temp"), ok)
	e.run("root", roleDelete("temp"), ok)

	// frank lost root: admin calls check the user's roles now, not the
	// token's revision (a stale JWT passes the admin check, as in etcd).
	e.run("frank", userList, rpctypes.ErrGRPCPermissionDenied)
	e.run("frank", get("foo"), e.pick(rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCAuthOldRevision))

	// Key permissions: alice reads foo (read-write), pub/*, and keys >= x.
	// Fresh logins: the JWTs above are stale after the changes.
	e.login("root", "pw", ok)
	e.login("alice", "pw-a", ok)
	e.login("bob", "pw-b2", ok)
	e.run("alice", get("foo"), ok)
	e.run("alice", put("foo", "by alice"), ok)
	e.run("alice", get("fo"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", prefix("foo"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", prefix("pub/"), ok)
	e.run("alice", get("pub/a"), ok)
	e.run("alice", rng("pub/a", "pub/z"), ok)
	e.run("alice", rng("pub/a", "pub1"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", put("pub/a", "x"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", get("zz"), ok)
	e.run("alice", rng("x", "\x00"), ok)
	e.run("alice", rng("y", "\x00"), ok)
	e.run("alice", rng("w", "\x00"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", rng("x", "zzz"), ok)
	e.run("alice", all(), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", get("secret"), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", del("foo"), ok)
	e.run("alice", &pb.DeleteRangeRequest{Key: []byte("zz"), PrevKv: true}, rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", compact(2), rpctypes.ErrGRPCPermissionDenied)
	// bob writes app/* but cannot read it: prev_kv needs read.
	e.run("bob", put("app/x", "1"), ok)
	e.run("bob", &pb.PutRequest{Key: []byte("app/x"), Value: []byte("2"), PrevKv: true}, rpctypes.ErrGRPCPermissionDenied)
	e.run("bob", get("app/x"), rpctypes.ErrGRPCPermissionDenied)
	e.run("bob", del("app/x"), ok)
	e.run("bob", &pb.DeleteRangeRequest{Key: []byte("app/"), RangeEnd: []byte("app0"), PrevKv: true}, rpctypes.ErrGRPCPermissionDenied)
	e.run("bob", delRange("app/", "app0"), ok)
	e.run("bob", put("both", "b"), ok)
	e.run("bob", get("both"), ok)

	// Txn: every compare and op is checked, nested txns too.
	e.run("alice", txn(cmps(cmpValue("zz", eq, "4")), ops(get("zz")), ops(get("pub/a"))), ok)
	e.run("alice", txn(cmps(cmpValue("secret", eq, "3")), ops(get("zz")), nil), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", txn(cmps(cmpValue("zz", eq, "4")), ops(get("zz")), ops(put("zz", "x"))), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", txn(nil, ops(put("foo", "t"), get("foo")), nil), ok)
	e.run("alice", txn(nil, ops(put("foo", "t"), del("foo")), nil), rpctypes.ErrGRPCDuplicateKey)
	e.run("alice", txn(nil, ops(txn(nil, ops(get("zz")), ops(get("secret")))), nil), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", txn(nil, ops(txn(cmps(cmpVersion("foo", eq, 0)), ops(get("pub/a")), nil)), nil), ok)
	e.run("alice", txn(cmps(over(cmpVersion("pub/", gt, 0), "pub0")), nil, nil), ok)
	e.run("alice", txn(cmps(over(cmpVersion("a", gt, 0), "z")), nil, nil), rpctypes.ErrGRPCPermissionDenied)
	e.run("root", txn(nil, ops(get("secret"), put("secret", "r")), nil), ok)

	// Watch: the range is checked when the watch is created.
	e.run("alice", watchCall("zz from rev 1", from(1, watchKey("zz")), 3), ok)
	e.run("alice", watchCall("pub/ prefix from rev 1", from(1, watchPrefix("pub/")), 3), ok)
	e.run("alice", watchCall("secret", from(1, watchKey("secret")), 2), ok)
	e.run("alice", watchCall("every key", watchAll(), 2), ok)
	// Without a valid token the watch is created and canceled at once.
	e.run("", watchCall("zz without a token", watchKey("zz"), 2), ok)
	e.run("token:garbage", watchCall("zz with a bad token", watchKey("zz"), 2), ok)
	e.run("root", compact(3), ok)
	e.run("alice", watchCall("zz from the compacted rev 1", from(1, watchKey("zz")), 3), ok)

	// Leases: revoking, or putting with, a lease whose keys the caller may
	// not write is denied.
	e.run("root", &pb.LeaseGrantRequest{ID: 100, TTL: 60}, ok)
	e.run("root", &pb.PutRequest{Key: []byte("secret"), Value: []byte("l"), Lease: 100}, ok)
	e.run("alice", &pb.LeaseGrantRequest{ID: 200, TTL: 60}, ok)
	e.run("", &pb.LeaseGrantRequest{ID: 300, TTL: 60}, rpctypes.ErrGRPCUserEmpty)
	e.run("alice", &pb.PutRequest{Key: []byte("foo"), Value: []byte("l"), Lease: 200}, ok)
	e.run("alice", &pb.PutRequest{Key: []byte("foo"), Value: []byte("l"), Lease: 100}, rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", &pb.LeaseRevokeRequest{ID: 100}, rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", &pb.LeaseTimeToLiveRequest{ID: 100, Keys: true}, rpctypes.ErrGRPCPermissionDenied) // secret is attached
	e.run("alice", &pb.LeaseTimeToLiveRequest{ID: 200, Keys: true}, ok)
	e.run("alice", &pb.LeaseLeasesRequest{}, rpctypes.ErrGRPCPermissionDenied) // lists lease 100 too
	e.run("alice", keepAliveCall(200), ok)
	e.run("alice", keepAliveCall(100), rpctypes.ErrGRPCPermissionDenied)
	e.run("alice", &pb.LeaseRevokeRequest{ID: 200}, ok)
	e.run("root", &pb.LeaseTimeToLiveRequest{ID: 100, Keys: true}, ok)
	e.run("root", &pb.LeaseLeasesRequest{}, ok)
	e.run("root", &pb.LeaseRevokeRequest{ID: 100}, ok)

	// Maintenance and Cluster: admin calls need root.
	e.runErrOnly("alice", &pb.StatusRequest{}, ok)
	e.runErrOnly("root", &pb.StatusRequest{}, ok)
	e.runErrOnly("alice", &pb.HashKVRequest{}, rpctypes.ErrGRPCPermissionDenied)
	e.runErrOnly("root", &pb.HashKVRequest{}, ok)
	e.runErrOnly("alice", &pb.DefragmentRequest{}, rpctypes.ErrGRPCPermissionDenied)
	e.runErrOnly("alice", &pb.AlarmRequest{Action: pb.AlarmRequest_GET}, ok)
	e.runErrOnly("root", &pb.AlarmRequest{Action: pb.AlarmRequest_GET}, ok)
	e.runErrOnly("", &pb.MemberListRequest{}, rpctypes.ErrGRPCUserEmpty)
	e.runErrOnly("token:garbage", &pb.MemberListRequest{}, rpctypes.ErrGRPCInvalidAuthToken)
	e.runErrOnly("", &pb.MemberListRequest{Linearizable: true}, rpctypes.ErrGRPCUserEmpty)
	// Status and Alarm GET need a user (etcd's requireAuthInfo), other
	// maintenance calls root.
	e.runErrOnly("", &pb.StatusRequest{}, rpctypes.ErrGRPCUserEmpty)
	e.runErrOnly("token:garbage", &pb.StatusRequest{}, rpctypes.ErrGRPCInvalidAuthToken)
	e.runErrOnly("", &pb.AlarmRequest{Action: pb.AlarmRequest_GET}, rpctypes.ErrGRPCUserEmpty)
	e.runErrOnly("alice", &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, Alarm: pb.AlarmType_NOSPACE}, rpctypes.ErrGRPCPermissionDenied)
	e.runErrOnly("root", &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, Alarm: pb.AlarmType_NOSPACE}, ok)
	e.runErrOnly("", &pb.HashKVRequest{}, rpctypes.ErrGRPCUserEmpty)
	e.runErrOnly("", &pb.DefragmentRequest{}, rpctypes.ErrGRPCUserEmpty)
	e.runErrOnly("alice", &pb.HashRequest{}, rpctypes.ErrGRPCPermissionDenied)
	// Lease calls need a user before anything else (the lease is gone).
	e.run("", &pb.LeaseTimeToLiveRequest{ID: 100}, rpctypes.ErrGRPCUserEmpty)
	e.run("", &pb.LeaseLeasesRequest{}, rpctypes.ErrGRPCUserEmpty)
	e.run("", &pb.LeaseRevokeRequest{ID: 100}, rpctypes.ErrGRPCUserEmpty)
	e.run("", keepAliveCall(100), rpctypes.ErrGRPCUserEmpty)
	e.runErrOnly("alice", &pb.MemberListRequest{}, ok)

	// Tokens after changes: a password change drops simple tokens and
	// makes JWTs stale; a role change makes JWTs stale only.
	e.run("root", grantRole("alice", "writer"), ok)
	e.run("alice", get("zz"), e.pick(ok, rpctypes.ErrGRPCAuthOldRevision))
	e.run("alice2", get("zz"), e.pick(ok, rpctypes.ErrGRPCAuthOldRevision))
	e.login("alice", "pw-a", ok)
	e.run("alice", get("both"), ok)
	e.run("alice", put("app/y", "1"), ok)
	e.run("root", userPasswd("alice", "pw-a2"), ok)
	e.run("alice", get("zz"), e.pick(rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrGRPCAuthOldRevision))
	e.run("alice2", get("zz"), e.pick(rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrGRPCAuthOldRevision))
	e.login("alice", "pw-a", rpctypes.ErrGRPCAuthFailed)
	e.login("alice", "pw-a2", ok)
	e.run("alice", get("zz"), ok)
	// Deleting a role takes it from its users.
	e.run("root", roleDelete("fromkey"), ok)
	e.run("root", userGet("alice"), ok)
	e.login("alice", "pw-a2", ok)
	e.run("alice", get("zz"), rpctypes.ErrGRPCPermissionDenied)
	e.run("root", revokeRole("alice", "reader"), ok)
	e.run("root", roleGet("reader"), ok)
	e.run("root", revokePerm("reader", "pub/", "pub0"), ok)
	e.run("root", roleGet("reader"), ok)
	// Deleting a user drops its simple tokens (JWTs go stale).
	e.run("root", userDelete("bob"), ok)
	e.run("bob", get("both"), e.pick(rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrGRPCAuthOldRevision))
	e.login("bob", "pw-b2", rpctypes.ErrGRPCAuthFailed)
	e.run("root", userList, ok) // admin: no revision check
	e.run("root", get("secret"), e.pick(ok, rpctypes.ErrGRPCAuthOldRevision))
	e.login("root", "pw", ok)
	e.run("root", userList, ok)
	e.run("root", roleList, ok)
	e.run("root", authStatus, ok)

	// Lock and Election write their keys with the caller's token; their
	// errors arrive as codes.Unknown with etcd's message (v3lock and
	// v3election return the client's error as is).
	e.run("root", roleAdd("locker"), ok)
	e.run("root", grantPerm("locker", readwrite, "lock/", "lock0"), ok)
	e.run("root", grantRole("alice", "locker"), ok)
	e.login("alice", "pw-a2", ok)
	e.run("alice", &pb.LeaseGrantRequest{ID: 400, TTL: 60}, ok)
	e.run("alice", lockCall("lock/m", 400), ok)
	e.run("alice", lockCall("other", 400), unknownErr(rpctypes.ErrGRPCPermissionDenied))
	e.run("", lockCall("lock/n", 400), unknownErr(rpctypes.ErrGRPCUserEmpty))
	e.run("token:garbage", lockCall("lock/n", 400), unknownErr(rpctypes.ErrGRPCInvalidAuthToken))
	e.run("alice", unlockCall("lock/m/190"), ok)
	e.run("alice", unlockCall("other/190"), unknownErr(rpctypes.ErrGRPCPermissionDenied))
	e.run("alice", campaignCall("lock/e", 400, "v"), ok)
	e.run("alice", campaignCall("elect", 400, "v"), unknownErr(rpctypes.ErrGRPCPermissionDenied))
	e.run("alice", leaderCall("lock/e"), ok)
	e.run("alice", leaderCall("elect"), unknownErr(rpctypes.ErrGRPCPermissionDenied))
	e.run("alice", &pb.LeaseRevokeRequest{ID: 400}, ok)

	// Disable: tokens are ignored; enable again: simple tokens are gone,
	// JWTs stale.
	e.run("root", authDisable, ok)
	e.run("", authStatus, ok)
	e.run("", get("secret"), ok)
	e.run("alice", get("secret"), ok)
	e.run("token:garbage", get("secret"), ok)
	e.login("root", "pw", rpctypes.ErrGRPCAuthNotEnabled)
	e.run("", authEnable, ok)
	e.run("root", get("secret"), e.pick(rpctypes.ErrGRPCInvalidAuthToken, rpctypes.ErrGRPCAuthOldRevision))
	e.login("root", "pw", ok)
	e.run("root", get("secret"), ok)
	e.run("root", authStatus, ok)
	e.run("root", authDisable, ok)
}
