package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"golang.org/x/crypto/bcrypt"
)

// fakeTokens records what the store asks of its token provider.
type fakeTokens struct{ calls []string }

func (f *fakeTokens) Enable()                    { f.calls = append(f.calls, "enable") }
func (f *fakeTokens) Disable()                   { f.calls = append(f.calls, "disable") }
func (f *fakeTokens) InvalidateUser(name string) { f.calls = append(f.calls, "invalidate "+name) }
func (f *fakeTokens) Assign(user string, rev uint64, prefix string, index uint64) (string, error) {
	return fmt.Sprintf("%s.%d/%s@%d", prefix, index, user, rev), nil
}

func openDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func hashed(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(h)
}

// step is one change applied in its own batch, with the error and auth
// revision etcd gives after it.
type step struct {
	name    string
	do      func(*Store, *pebble.Batch) error
	wantErr error
	wantRev uint64
}

func run(t *testing.T, db *pebble.DB, s *Store, steps []step) {
	t.Helper()
	for _, st := range steps {
		b := db.NewBatch()
		err := st.do(s, b)
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: got error %v, want %v", st.name, err, st.wantErr)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if got := s.Revision(); got != st.wantRev {
			t.Fatalf("%s: got revision %d, want %d", st.name, got, st.wantRev)
		}
	}
}

func userAdd(name, pw string) func(*Store, *pebble.Batch) error {
	return func(s *Store, b *pebble.Batch) error {
		return s.UserAdd(b, &pb.AuthUserAddRequest{Name: name, HashedPassword: pw})
	}
}

func roleAdd(name string) func(*Store, *pebble.Batch) error {
	return func(s *Store, b *pebble.Batch) error { return s.RoleAdd(b, &pb.AuthRoleAddRequest{Name: name}) }
}

func grantRole(user, role string) func(*Store, *pebble.Batch) error {
	return func(s *Store, b *pebble.Batch) error {
		return s.UserGrantRole(b, &pb.AuthUserGrantRoleRequest{User: user, Role: role})
	}
}

func grantPerm(role, key, end string, typ authpb.Permission_Type) func(*Store, *pebble.Batch) error {
	return func(s *Store, b *pebble.Batch) error {
		p := &authpb.Permission{Key: []byte(key), PermType: typ}
		if end != "" {
			p.RangeEnd = []byte(end)
		}
		return s.RoleGrantPermission(b, &pb.AuthRoleGrantPermissionRequest{Name: role, Perm: p})
	}
}

func enable(s *Store, b *pebble.Batch) error  { return s.AuthEnable(b) }
func disable(s *Store, b *pebble.Batch) error { return s.AuthDisable(b) }

// TestStoreRules walks etcd's rules for users, roles and enabling auth,
// with the revision after each change (etcd's store.go: every change
// bumps it except AuthEnable, a repeated role grant and a repeated enable
// or disable).
func TestStoreRules(t *testing.T) {
	db := openDB(t)
	tok := &fakeTokens{}
	s, err := Load(db, tok)
	if err != nil {
		t.Fatal(err)
	}
	pw := hashed(t, "pw")
	run(t, db, s, []step{
		{"enable without root", enable, ErrRootUserNotExist, 1},
		{"empty user", userAdd("", pw), ErrUserEmpty, 1},
		{"add root", userAdd("root", pw), nil, 2},
		{"add root again", userAdd("root", pw), ErrUserAlreadyExist, 2},
		{"enable without root role", enable, ErrRootRoleNotExist, 2},
		{"grant missing role", grantRole("root", "nope"), ErrRoleNotFound, 2},
		{"grant to missing user", grantRole("nobody", "root"), ErrUserNotFound, 2},
		{"grant root role (need not exist)", grantRole("root", "root"), nil, 3},
		{"grant root role again", grantRole("root", "root"), nil, 3},
		{"empty role", roleAdd(""), ErrRoleEmpty, 3},
		{"add role r", roleAdd("r"), nil, 4},
		{"add role r again", roleAdd("r"), ErrRoleAlreadyExist, 4},
		{"enable", enable, nil, 4},
		{"enable again", enable, nil, 4},
		{"delete root while enabled", func(s *Store, b *pebble.Batch) error {
			return s.UserDelete(b, &pb.AuthUserDeleteRequest{Name: "root"})
		}, ErrInvalidAuthMgmt, 4},
		{"revoke root's root role while enabled", func(s *Store, b *pebble.Batch) error {
			return s.UserRevokeRole(b, &pb.AuthUserRevokeRoleRequest{Name: "root", Role: "root"})
		}, ErrInvalidAuthMgmt, 4},
		{"delete role root while enabled", func(s *Store, b *pebble.Batch) error {
			return s.RoleDelete(b, &pb.AuthRoleDeleteRequest{Role: "root"})
		}, ErrInvalidAuthMgmt, 4},
		{"add u", userAdd("u", pw), nil, 5},
		{"grant r to u", grantRole("u", "r"), nil, 6},
		{"revoke role not granted", func(s *Store, b *pebble.Batch) error {
			return s.UserRevokeRole(b, &pb.AuthUserRevokeRoleRequest{Name: "u", Role: "root"})
		}, ErrRoleNotGranted, 6},
		{"perm not given", func(s *Store, b *pebble.Batch) error {
			return s.RoleGrantPermission(b, &pb.AuthRoleGrantPermissionRequest{Name: "r"})
		}, ErrPermissionNotGiven, 6},
		{"perm bad range", grantPerm("r", "b", "a", authpb.Permission_READ), ErrInvalidAuthMgmt, 6},
		{"perm empty key", grantPerm("r", "", "", authpb.Permission_READ), ErrInvalidAuthMgmt, 6},
		{"perm missing role", grantPerm("x", "a", "", authpb.Permission_READ), ErrRoleNotFound, 6},
		{"perm k", grantPerm("r", "k", "", authpb.Permission_READ), nil, 7},
		{"perm k again as write", grantPerm("r", "k", "", authpb.Permission_WRITE), nil, 8},
		{"revoke perm not granted", func(s *Store, b *pebble.Batch) error {
			return s.RoleRevokePermission(b, &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("zz")})
		}, ErrPermissionNotGranted, 8},
		{"revoke perm of missing role", func(s *Store, b *pebble.Batch) error {
			return s.RoleRevokePermission(b, &pb.AuthRoleRevokePermissionRequest{Role: "x", Key: []byte("k")})
		}, ErrRoleNotFound, 8},
		{"change password of missing user", func(s *Store, b *pebble.Batch) error {
			return s.UserChangePassword(b, &pb.AuthUserChangePasswordRequest{Name: "x", HashedPassword: pw})
		}, ErrUserNotFound, 8},
		{"change password", func(s *Store, b *pebble.Batch) error {
			return s.UserChangePassword(b, &pb.AuthUserChangePasswordRequest{Name: "u", HashedPassword: hashed(t, "pw2")})
		}, nil, 9},
		{"delete role r (revoked from u)", func(s *Store, b *pebble.Batch) error {
			return s.RoleDelete(b, &pb.AuthRoleDeleteRequest{Role: "r"})
		}, nil, 10},
		{"delete missing role", func(s *Store, b *pebble.Batch) error {
			return s.RoleDelete(b, &pb.AuthRoleDeleteRequest{Role: "r"})
		}, ErrRoleNotFound, 10},
		{"disable", disable, nil, 11},
		{"disable again", disable, nil, 11},
		{"delete root while disabled", func(s *Store, b *pebble.Batch) error {
			return s.UserDelete(b, &pb.AuthUserDeleteRequest{Name: "root"})
		}, nil, 12},
		{"delete missing user", func(s *Store, b *pebble.Batch) error {
			return s.UserDelete(b, &pb.AuthUserDeleteRequest{Name: "root"})
		}, ErrUserNotFound, 12},
	})
	if roles, err := s.UserGet("u"); err != nil || len(roles) != 0 {
		t.Errorf("UserGet(u) = %v, %v; want no roles (role r was deleted)", roles, err)
	}
	if got := s.UserList(); !slices.Equal(got, []string{"u"}) {
		t.Errorf("UserList = %v", got)
	}
	if _, err := s.CheckPassword("u", "pw2"); !errors.Is(err, ErrAuthNotEnabled) {
		t.Errorf("CheckPassword while disabled: %v", err)
	}
	// Load switches the provider off first (auth was off).
	want := "disable,enable,invalidate u,disable,invalidate root"
	if got := strings.Join(tok.calls, ","); got != want {
		t.Errorf("token provider calls: got %s, want %s", got, want)
	}

	// The state on disk is the state in memory.
	s2, err := Load(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Revision() != 12 || s2.IsAuthEnabled() || !slices.Equal(s2.UserList(), []string{"u"}) || len(s2.RoleList()) != 0 {
		t.Errorf("reloaded: rev %d enabled %t users %v roles %v", s2.Revision(), s2.IsAuthEnabled(), s2.UserList(), s2.RoleList())
	}
}

// TestPermissions checks reads and writes of a user with roles against
// etcd's rules, and the root role's unlimited access.
func TestPermissions(t *testing.T) {
	db := openDB(t)
	s, err := Load(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	pw := hashed(t, "pw")
	run(t, db, s, []step{
		{"root", userAdd("root", pw), nil, 2},
		{"root role", grantRole("root", "root"), nil, 3},
		{"u", userAdd("u", pw), nil, 4},
		{"r", roleAdd("r"), nil, 5},
		{"r key", grantPerm("r", "key", "", authpb.Permission_READWRITE), nil, 6},
		{"r prefix", grantPerm("r", "dir/", "dir0", authpb.Permission_READ), nil, 7},
		{"r from", grantPerm("r", "w", "\x00", authpb.Permission_WRITE), nil, 8},
		{"u r", grantRole("u", "r"), nil, 9},
		{"enable", enable, nil, 9},
	})
	u := &Info{Username: "u", Revision: 9}
	for _, tc := range []struct {
		name     string
		write    bool
		key, end string
		ai       *Info
		want     error
	}{
		{"read key", false, "key", "", u, nil},
		{"write key", true, "key", "", u, nil},
		{"read key0", false, "key0", "", u, ErrPermissionDenied},
		{"read range of one key", false, "key", "key\x00", u, nil},
		{"read range beyond key", false, "key", "kez", u, ErrPermissionDenied},
		{"read prefix", false, "dir/", "dir0", u, nil},
		{"read inside prefix", false, "dir/a", "dir/b", u, nil},
		{"read dir/x", false, "dir/x", "", u, nil},
		{"write dir/x", true, "dir/x", "", u, ErrPermissionDenied},
		{"read past prefix", false, "dir/", "dir1", u, ErrPermissionDenied},
		{"write from w", true, "w", "\x00", u, nil},
		{"write zzz", true, "zzz", "", u, nil},
		{"read zzz", false, "zzz", "", u, ErrPermissionDenied},
		{"write all", true, "\x00", "\x00", u, ErrPermissionDenied},
		{"no user", false, "key", "", &Info{}, ErrUserEmpty},
		{"nil info", false, "key", "", nil, ErrUserEmpty},
		{"old revision", false, "key", "", &Info{Username: "u", Revision: 8}, ErrAuthOldRevision},
		{"newer revision", false, "key", "", &Info{Username: "u", Revision: 10}, nil},
		{"unknown user", false, "key", "", &Info{Username: "x", Revision: 9}, ErrPermissionDenied},
		{"root reads all", false, "\x00", "\x00", &Info{Username: "root", Revision: 9}, nil},
		{"root writes all", true, "a", "\x00", &Info{Username: "root", Revision: 9}, nil},
	} {
		var err error
		if tc.write {
			err = s.IsDeleteRangePermitted(tc.ai, []byte(tc.key), []byte(tc.end))
			if tc.end == "" {
				if perr := s.IsPutPermitted(tc.ai, []byte(tc.key)); !errors.Is(perr, err) && perr != err {
					t.Errorf("%s: put %v, delete %v", tc.name, perr, err)
				}
			}
		} else {
			err = s.IsRangePermitted(tc.ai, []byte(tc.key), []byte(tc.end))
		}
		if err != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		ai   *Info
		want error
	}{
		{&Info{Username: "root", Revision: 1}, nil},
		{&Info{Username: "u", Revision: 9}, ErrPermissionDenied},
		{&Info{Username: "x", Revision: 9}, ErrUserNotFound},
		{&Info{}, ErrUserEmpty},
		{nil, ErrUserEmpty},
	} {
		if err := s.IsAdminPermitted(tc.ai); err != tc.want {
			t.Errorf("IsAdminPermitted(%v): got %v, want %v", tc.ai, err, tc.want)
		}
	}

	// A change drops the cached merged permissions.
	run(t, db, s, []step{{"revoke key", func(s *Store, b *pebble.Batch) error {
		return s.RoleRevokePermission(b, &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("key")})
	}, nil, 10}})
	if err := s.IsRangePermitted(&Info{Username: "u", Revision: 10}, []byte("key"), nil); err != ErrPermissionDenied {
		t.Errorf("after revoke: %v", err)
	}
	// Disabled: everything is allowed.
	run(t, db, s, []step{{"disable", disable, nil, 11}})
	if err := s.IsPutPermitted(nil, []byte("x")); err != nil {
		t.Errorf("disabled: %v", err)
	}
}

func TestAuthenticateAndPasswords(t *testing.T) {
	db := openDB(t)
	s, err := Load(db, &fakeTokens{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, db, s, []step{
		{"root", userAdd("root", hashed(t, "rootpw")), nil, 2},
		{"root role", grantRole("root", "root"), nil, 3},
		{"nopass", func(s *Store, b *pebble.Batch) error {
			return s.UserAdd(b, &pb.AuthUserAddRequest{Name: "np", Options: &authpb.UserAddOptions{NoPassword: true}})
		}, nil, 4},
		{"bad hash", func(s *Store, b *pebble.Batch) error {
			return s.UserAdd(b, &pb.AuthUserAddRequest{Name: "bad", HashedPassword: "!!"})
		}, ErrNoPasswordUser, 4},
	})
	if _, err := s.Authenticate("root", "p", 7); err != ErrAuthNotEnabled {
		t.Fatalf("Authenticate while disabled: %v", err)
	}
	run(t, db, s, []step{{"enable", enable, nil, 4}})
	for _, tc := range []struct {
		user, pw string
		want     error
	}{
		{"root", "rootpw", nil},
		{"root", "wrong", ErrAuthFailed},
		{"nobody", "x", ErrAuthFailed},
		{"np", "", ErrNoPasswordUser},
	} {
		rev, err := s.CheckPassword(tc.user, tc.pw)
		if err != tc.want || (err == nil && rev != 4) {
			t.Errorf("CheckPassword(%s, %s) = %d, %v; want 4, %v", tc.user, tc.pw, rev, err, tc.want)
		}
	}
	if tok, err := s.Authenticate("root", "pfx", 7); err != nil || tok != "pfx.7/root@4" {
		t.Errorf("Authenticate(root) = %q, %v", tok, err)
	}
	for _, u := range []string{"np", "nobody"} {
		if _, err := s.Authenticate(u, "pfx", 8); err != ErrAuthFailed {
			t.Errorf("Authenticate(%s): %v, want ErrAuthFailed", u, err)
		}
	}
	// RoleGet of root shows every key; UserAdd's options are kept.
	run(t, db, s, []step{{"role root", roleAdd("root"), nil, 5}})
	perms, err := s.RoleGet("root")
	if err != nil || len(perms) != 1 || string(perms[0].RangeEnd) != "\x00" || perms[0].PermType != authpb.Permission_READWRITE {
		t.Errorf("RoleGet(root) = %v, %v", perms, err)
	}
	if _, err := s.RoleGet("x"); err != ErrRoleNotFound {
		t.Errorf("RoleGet(x): %v", err)
	}
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Errorf(string, ...any)     {}
func (quietLogger) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
