// Package auth is Cairn's replicated authentication and authorization
// state, as etcd's server/auth store: whether auth is enabled, the auth
// revision, users (name, bcrypt hash, roles, no_password option) and roles
// with key-range permissions, plus the permission checks every request
// goes through (etcd's IsRangePermitted, IsPutPermitted,
// IsDeleteRangePermitted and IsAdminPermitted).
//
// Changes happen only in apply, over a storage batch, in log order, so
// every member holds the same state (etcd's authStore methods called by
// its applier). The methods that change state return etcd's sentinel
// errors (ErrUserNotFound, ...) and bump the auth revision exactly where
// etcd's do. Reads (the checks, UserGet, RoleList, ...) use an in-memory
// copy that any goroutine may read; a per-user cache of merged
// permissions is dropped whenever the revision changes.
//
// The store hashes no passwords: the member that receives UserAdd or
// UserChangePassword hashes with bcrypt before proposing, and the member
// that receives Authenticate checks the password (CheckPassword) before
// proposing, as etcd does, so bcrypt never runs in the apply loop.
//
// On-disk keys (package storage's 'u' keyspace):
//
//	'u' 'e'          enabled flag (one byte, 1 or 0)
//	'u' 'r'          auth revision (8 bytes, big-endian)
//	'u' 'U' name     authpb.User (protobuf)
//	'u' 'R' name     authpb.Role (protobuf)
//
// A store that never saved a revision is at revision 1, as etcd's
// NewAuthStore commits revision 1 on first start.
package auth
