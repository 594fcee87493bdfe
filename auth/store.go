package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/storage"
)

// RootUser and RootRole are etcd's names for the administrator: auth can
// be enabled only when user root exists with role root, and role root
// holds every permission.
const (
	RootUser = "root"
	RootRole = "root"
)

var (
	keyEnabled  = []byte{storage.KeyspaceAuth, 'e'}
	keyRevision = []byte{storage.KeyspaceAuth, 'r'}
	prefixUser  = []byte{storage.KeyspaceAuth, 'U'}
	prefixRole  = []byte{storage.KeyspaceAuth, 'R'}
)

// rootPerm is what RoleGet shows for role root, as etcd.
var rootPerm = authpb.Permission{PermType: authpb.Permission_READWRITE, Key: []byte{}, RangeEnd: []byte{0}}

// Info identifies the caller of a request: the user and the auth revision
// its token was issued at (0: no user), as etcd's AuthInfo and a request
// header's Username and AuthRevision.
type Info struct {
	Username string
	Revision uint64
}

// Tokens is the token provider as the store drives it (etcd's
// TokenProvider): switched on and off with auth, told when a user's
// tokens must stop working, and asked for a token when an Authenticate
// entry is applied.
type Tokens interface {
	Enable()
	Disable()
	InvalidateUser(name string)
	// Assign returns a token for user at auth revision rev; prefix is the
	// random part the receiving member chose and index the entry's Raft
	// index (simple tokens).
	Assign(user string, rev uint64, prefix string, index uint64) (string, error)
}

// Store is the auth state. The zero value is not usable: call Load.
type Store struct {
	tokens Tokens

	mu       sync.RWMutex
	enabled  bool
	revision uint64
	users    map[string]*authpb.User
	roles    map[string]*authpb.Role
	// perms caches merged permissions per user; it is emptied whenever
	// the revision or the users and roles change (under mu's write lock)
	// and filled under permMu by readers.
	permMu sync.RWMutex
	perms  map[string]*mergedPerms
}

// Load reads the auth state from r. tokens may be nil (no tokens: the
// store then only answers Authenticate with an empty token).
func Load(r pebble.Reader, tokens Tokens) (*Store, error) {
	s := &Store{tokens: tokens}
	return s, s.Reload(r)
}

// Reload replaces the state with what r holds (after a snapshot install),
// switching the token provider on or off to match.
func (s *Store) Reload(r pebble.Reader) error {
	enabled, rev := false, uint64(1)
	v, ok, err := storage.GetCopy(r, keyEnabled)
	if err != nil {
		return err
	}
	if ok && len(v) == 1 && v[0] == 1 {
		enabled = true
	}
	v, ok, err = storage.GetCopy(r, keyRevision)
	if err != nil {
		return err
	}
	if ok {
		if len(v) != 8 {
			return fmt.Errorf("auth: corrupt revision record")
		}
		rev = binary.BigEndian.Uint64(v)
	}
	users := map[string]*authpb.User{}
	if err := scan(r, prefixUser, func(name string, val []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(val, u); err != nil {
			return fmt.Errorf("auth: corrupt user %q: %w", name, err)
		}
		users[name] = u
		return nil
	}); err != nil {
		return err
	}
	roles := map[string]*authpb.Role{}
	if err := scan(r, prefixRole, func(name string, val []byte) error {
		ro := &authpb.Role{}
		if err := proto.Unmarshal(val, ro); err != nil {
			return fmt.Errorf("auth: corrupt role %q: %w", name, err)
		}
		roles[name] = ro
		return nil
	}); err != nil {
		return err
	}
	s.mu.Lock()
	s.enabled, s.revision, s.users, s.roles = enabled, rev, users, roles
	s.invalidateLocked()
	s.mu.Unlock()
	if s.tokens != nil {
		if enabled {
			s.tokens.Enable()
		} else {
			s.tokens.Disable()
		}
	}
	return nil
}

func scan(r pebble.Reader, prefix []byte, fn func(name string, val []byte) error) error {
	upper := append(bytes.Clone(prefix[:1]), prefix[1]+1)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(string(it.Key()[len(prefix):]), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

func (s *Store) invalidateLocked() {
	s.permMu.Lock()
	s.perms = map[string]*mergedPerms{}
	s.permMu.Unlock()
}

// IsAuthEnabled tells whether auth is enabled.
func (s *Store) IsAuthEnabled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enabled
}

// Revision is the auth revision: it grows with every change to users,
// roles and permissions and with AuthDisable, as etcd's.
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revision
}

// Status is AuthStatus's answer: enabled and the auth revision.
func (s *Store) Status() (bool, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enabled, s.revision
}

// commitRevisionLocked bumps the revision in b, as etcd's commitRevision.
func (s *Store) commitRevisionLocked(b *pebble.Batch) error {
	s.revision++
	s.invalidateLocked()
	return b.Set(keyRevision, binary.BigEndian.AppendUint64(nil, s.revision), nil)
}

func (s *Store) putUserLocked(b *pebble.Batch, u *authpb.User) error {
	v, err := proto.Marshal(u)
	if err != nil {
		return err
	}
	if err := b.Set(append(bytes.Clone(prefixUser), u.Name...), v, nil); err != nil {
		return err
	}
	s.users[string(u.Name)] = u
	return nil
}

func (s *Store) putRoleLocked(b *pebble.Batch, r *authpb.Role) error {
	v, err := proto.Marshal(r)
	if err != nil {
		return err
	}
	if err := b.Set(append(bytes.Clone(prefixRole), r.Name...), v, nil); err != nil {
		return err
	}
	s.roles[string(r.Name)] = r
	return nil
}

func hasRootRole(u *authpb.User) bool {
	// Roles are kept sorted (UserGrantRole), as etcd assumes.
	i := sort.SearchStrings(u.Roles, RootRole)
	return i != len(u.Roles) && u.Roles[i] == RootRole
}

// AuthEnable enables auth in b, as etcd's: enabling it again changes
// nothing; ErrRootUserNotExist without user root, ErrRootRoleNotExist if
// root lacks role root. Enabling does not bump the revision (etcd's
// doesn't).
func (s *Store) AuthEnable(b *pebble.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled {
		return nil
	}
	u := s.users[RootUser]
	if u == nil {
		return ErrRootUserNotExist
	}
	if !hasRootRole(u) {
		return ErrRootRoleNotExist
	}
	if err := b.Set(keyEnabled, []byte{1}, nil); err != nil {
		return err
	}
	s.enabled = true
	s.invalidateLocked()
	if s.tokens != nil {
		s.tokens.Enable()
	}
	return nil
}

// AuthDisable disables auth in b and bumps the revision; every simple
// token is forgotten. Disabling it again changes nothing.
func (s *Store) AuthDisable(b *pebble.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled {
		return nil
	}
	if err := b.Set(keyEnabled, []byte{0}, nil); err != nil {
		return err
	}
	if err := s.commitRevisionLocked(b); err != nil {
		return err
	}
	s.enabled = false
	if s.tokens != nil {
		s.tokens.Disable()
	}
	return nil
}

// Authenticate issues a token for user name, as etcd's: ErrAuthNotEnabled,
// ErrAuthFailed for an unknown or no-password user. The password was
// checked before the entry was proposed (CheckPassword). prefix and index
// are handed to the token provider (see Tokens.Assign).
func (s *Store) Authenticate(name, prefix string, index uint64) (string, error) {
	s.mu.RLock()
	enabled, rev, u := s.enabled, s.revision, s.users[name]
	s.mu.RUnlock()
	if !enabled {
		return "", ErrAuthNotEnabled
	}
	if u == nil || (u.Options != nil && u.Options.NoPassword) {
		return "", ErrAuthFailed
	}
	if s.tokens == nil {
		return "", nil
	}
	tok, err := s.tokens.Assign(name, rev, prefix, index)
	if err != nil {
		return "", &AssignError{Err: err}
	}
	return tok, nil
}

// AssignError is the token provider's failure to issue a token (a JWT
// member with only a public key, say). It is the client's answer, not a
// failure of the store: its text is the provider's error, as etcd sends.
type AssignError struct{ Err error }

func (e *AssignError) Error() string { return e.Err.Error() }
func (e *AssignError) Unwrap() error { return e.Err }

// CheckPassword compares password with user name's bcrypt hash (slow by
// design: call it off the apply loop) and returns the auth revision the
// user was read at, as etcd's: ErrAuthNotEnabled, ErrAuthFailed for an
// unknown user or a wrong password, ErrNoPasswordUser for a no-password
// user.
func (s *Store) CheckPassword(name, password string) (uint64, error) {
	s.mu.RLock()
	enabled, rev, u := s.enabled, s.revision, s.users[name]
	s.mu.RUnlock()
	if !enabled {
		return 0, ErrAuthNotEnabled
	}
	if u == nil {
		return 0, ErrAuthFailed
	}
	if u.Options != nil && u.Options.NoPassword {
		return 0, ErrNoPasswordUser
	}
	if bcrypt.CompareHashAndPassword(u.Password, []byte(password)) != nil {
		return 0, ErrAuthFailed
	}
	return rev, nil
}

// selectPassword is etcd's: a plain password without a hash (an entry
// from etcd before 3.5) is hashed here at bcrypt.DefaultCost; otherwise
// the base64 hash is decoded (ErrNoPasswordUser when it is not base64).
func selectPassword(password, hashed string) ([]byte, error) {
	if password != "" && hashed == "" {
		return bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	}
	p, err := base64.StdEncoding.DecodeString(hashed)
	if err != nil {
		return nil, ErrNoPasswordUser
	}
	return p, nil
}

// UserAdd adds user r.Name with r.HashedPassword (base64 bcrypt), as
// etcd's: ErrUserEmpty, ErrUserAlreadyExist.
func (s *Store) UserAdd(b *pebble.Batch, r *pb.AuthUserAddRequest) error {
	if len(r.Name) == 0 {
		return ErrUserEmpty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[r.Name] != nil {
		return ErrUserAlreadyExist
	}
	opts := r.Options
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	} else {
		opts = proto.Clone(opts).(*authpb.UserAddOptions)
	}
	var password []byte
	if !opts.NoPassword {
		var err error
		if password, err = selectPassword(r.Password, r.HashedPassword); err != nil {
			return err
		}
	}
	if err := s.putUserLocked(b, &authpb.User{Name: []byte(r.Name), Password: password, Options: opts}); err != nil {
		return err
	}
	return s.commitRevisionLocked(b)
}

// UserDelete deletes user r.Name and its tokens, as etcd's:
// ErrInvalidAuthMgmt for root while auth is enabled, ErrUserNotFound.
func (s *Store) UserDelete(b *pebble.Batch, r *pb.AuthUserDeleteRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled && r.Name == RootUser {
		return ErrInvalidAuthMgmt
	}
	if s.users[r.Name] == nil {
		return ErrUserNotFound
	}
	if err := b.Delete(append(bytes.Clone(prefixUser), r.Name...), nil); err != nil {
		return err
	}
	delete(s.users, r.Name)
	if err := s.commitRevisionLocked(b); err != nil {
		return err
	}
	if s.tokens != nil {
		s.tokens.InvalidateUser(r.Name)
	}
	return nil
}

// UserChangePassword sets user r.Name's password to r.HashedPassword and
// drops its tokens, as etcd's: ErrUserNotFound. A no-password user keeps
// no password.
func (s *Store) UserChangePassword(b *pebble.Batch, r *pb.AuthUserChangePasswordRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[r.Name]
	if u == nil {
		return ErrUserNotFound
	}
	var password []byte
	if u.Options == nil || !u.Options.NoPassword {
		var err error
		if password, err = selectPassword(r.Password, r.HashedPassword); err != nil {
			return err
		}
	}
	nu := &authpb.User{Name: []byte(r.Name), Roles: u.Roles, Password: password, Options: u.Options}
	if err := s.putUserLocked(b, nu); err != nil {
		return err
	}
	if err := s.commitRevisionLocked(b); err != nil {
		return err
	}
	if s.tokens != nil {
		s.tokens.InvalidateUser(r.Name)
	}
	return nil
}

// UserGrantRole grants role r.Role to user r.User, as etcd's:
// ErrUserNotFound, ErrRoleNotFound (role root need not exist); granting a
// role the user has changes nothing and does not bump the revision.
func (s *Store) UserGrantRole(b *pebble.Batch, r *pb.AuthUserGrantRoleRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[r.User]
	if u == nil {
		return ErrUserNotFound
	}
	if r.Role != RootRole && s.roles[r.Role] == nil {
		return ErrRoleNotFound
	}
	i := sort.SearchStrings(u.Roles, r.Role)
	if i < len(u.Roles) && u.Roles[i] == r.Role {
		return nil
	}
	nu := proto.Clone(u).(*authpb.User)
	nu.Roles = append(nu.Roles, r.Role)
	sort.Strings(nu.Roles)
	if err := s.putUserLocked(b, nu); err != nil {
		return err
	}
	return s.commitRevisionLocked(b)
}

// UserRevokeRole revokes role r.Role from user r.Name, as etcd's:
// ErrInvalidAuthMgmt for root's root role while auth is enabled,
// ErrUserNotFound, ErrRoleNotGranted.
func (s *Store) UserRevokeRole(b *pebble.Batch, r *pb.AuthUserRevokeRoleRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled && r.Name == RootUser && r.Role == RootRole {
		return ErrInvalidAuthMgmt
	}
	u := s.users[r.Name]
	if u == nil {
		return ErrUserNotFound
	}
	nu := &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options}
	for _, role := range u.Roles {
		if role != r.Role {
			nu.Roles = append(nu.Roles, role)
		}
	}
	if len(nu.Roles) == len(u.Roles) {
		return ErrRoleNotGranted
	}
	if err := s.putUserLocked(b, nu); err != nil {
		return err
	}
	return s.commitRevisionLocked(b)
}

// UserGet returns user name's roles (sorted): ErrUserNotFound.
func (s *Store) UserGet(name string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[name]
	if u == nil {
		return nil, ErrUserNotFound
	}
	return append([]string(nil), u.Roles...), nil
}

// UserList lists the users' names in byte order (etcd's bucket order).
func (s *Store) UserList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.users))
	for n := range s.users {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RoleAdd adds role r.Name without permissions, as etcd's: ErrRoleEmpty,
// ErrRoleAlreadyExist.
func (s *Store) RoleAdd(b *pebble.Batch, r *pb.AuthRoleAddRequest) error {
	if len(r.Name) == 0 {
		return ErrRoleEmpty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[r.Name] != nil {
		return ErrRoleAlreadyExist
	}
	if err := s.putRoleLocked(b, &authpb.Role{Name: []byte(r.Name)}); err != nil {
		return err
	}
	return s.commitRevisionLocked(b)
}

// RoleGet returns role name's permissions (root's: every key,
// read-write): ErrRoleNotFound.
func (s *Store) RoleGet(name string) ([]*authpb.Permission, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.roles[name]
	if r == nil {
		return nil, ErrRoleNotFound
	}
	if name == RootRole {
		return []*authpb.Permission{proto.Clone(&rootPerm).(*authpb.Permission)}, nil
	}
	out := make([]*authpb.Permission, len(r.KeyPermission))
	for i, p := range r.KeyPermission {
		out[i] = proto.Clone(p).(*authpb.Permission)
	}
	return out, nil
}

// RoleList lists the roles' names in byte order.
func (s *Store) RoleList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.roles))
	for n := range s.roles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RoleDelete deletes role r.Role and revokes it from every user, as
// etcd's: ErrInvalidAuthMgmt for root while auth is enabled,
// ErrRoleNotFound.
func (s *Store) RoleDelete(b *pebble.Batch, r *pb.AuthRoleDeleteRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled && r.Role == RootRole {
		return ErrInvalidAuthMgmt
	}
	if s.roles[r.Role] == nil {
		return ErrRoleNotFound
	}
	if err := b.Delete(append(bytes.Clone(prefixRole), r.Role...), nil); err != nil {
		return err
	}
	delete(s.roles, r.Role)
	names := make([]string, 0, len(s.users))
	for n := range s.users {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u := s.users[n]
		nu := &authpb.User{Name: u.Name, Password: u.Password, Options: u.Options}
		for _, role := range u.Roles {
			if role != r.Role {
				nu.Roles = append(nu.Roles, role)
			}
		}
		if len(nu.Roles) == len(u.Roles) {
			continue
		}
		if err := s.putUserLocked(b, nu); err != nil {
			return err
		}
	}
	return s.commitRevisionLocked(b)
}

type permSlice []*authpb.Permission

func (p permSlice) Len() int           { return len(p) }
func (p permSlice) Less(i, j int) bool { return bytes.Compare(p[i].Key, p[j].Key) < 0 }
func (p permSlice) Swap(i, j int)      { p[i], p[j] = p[j], p[i] }

// RoleGrantPermission grants r.Perm to role r.Name, or changes the type of
// the permission with the same key and range end, as etcd's:
// ErrPermissionNotGiven, ErrInvalidAuthMgmt for an invalid range (no key,
// or a range end not after the key and not "\x00"), ErrRoleNotFound.
// Permissions stay sorted by key.
func (s *Store) RoleGrantPermission(b *pebble.Batch, r *pb.AuthRoleGrantPermissionRequest) error {
	if r.Perm == nil {
		return ErrPermissionNotGiven
	}
	if !isValidPermissionRange(r.Perm.Key, r.Perm.RangeEnd) {
		return ErrInvalidAuthMgmt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.roles[r.Name]
	if old == nil {
		return ErrRoleNotFound
	}
	role := proto.Clone(old).(*authpb.Role)
	idx := sort.Search(len(role.KeyPermission), func(i int) bool {
		return bytes.Compare(role.KeyPermission[i].Key, r.Perm.Key) >= 0
	})
	if idx < len(role.KeyPermission) && bytes.Equal(role.KeyPermission[idx].Key, r.Perm.Key) && bytes.Equal(role.KeyPermission[idx].RangeEnd, r.Perm.RangeEnd) {
		role.KeyPermission[idx].PermType = r.Perm.PermType
	} else {
		role.KeyPermission = append(role.KeyPermission, &authpb.Permission{
			Key:      bytes.Clone(r.Perm.Key),
			RangeEnd: bytes.Clone(r.Perm.RangeEnd),
			PermType: r.Perm.PermType,
		})
		sort.Sort(permSlice(role.KeyPermission))
	}
	if err := s.putRoleLocked(b, role); err != nil {
		return err
	}
	return s.commitRevisionLocked(b)
}

// RoleRevokePermission removes role r.Role's permissions on exactly
// [r.Key, r.RangeEnd), as etcd's: ErrRoleNotFound, ErrPermissionNotGranted.
func (s *Store) RoleRevokePermission(b *pebble.Batch, r *pb.AuthRoleRevokePermissionRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.roles[r.Role]
	if old == nil {
		return ErrRoleNotFound
	}
	role := &authpb.Role{Name: old.Name}
	for _, p := range old.KeyPermission {
		if !bytes.Equal(p.Key, r.Key) || !bytes.Equal(p.RangeEnd, r.RangeEnd) {
			role.KeyPermission = append(role.KeyPermission, p)
		}
	}
	if len(role.KeyPermission) == len(old.KeyPermission) {
		return ErrPermissionNotGranted
	}
	if err := s.putRoleLocked(b, role); err != nil {
		return err
	}
	return s.commitRevisionLocked(b)
}

// HasRole tells whether user has role.
func (s *Store) HasRole(user, role string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[user]
	if u == nil {
		return false
	}
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}
