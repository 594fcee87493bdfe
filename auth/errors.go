package auth

import "errors"

// Errors, with etcd's server/auth messages (the API layer maps them to
// rpctypes; those it does not map reach clients as codes.Unknown with this
// text, as in etcd).
var (
	// Enabling auth.
	ErrRootUserNotExist = errors.New("auth: root user does not exist")
	ErrRootRoleNotExist = errors.New("auth: root user does not have root role")

	// Users and roles.
	ErrUserAlreadyExist     = errors.New("auth: user already exists")
	ErrUserEmpty            = errors.New("auth: user name is empty")
	ErrUserNotFound         = errors.New("auth: user not found")
	ErrRoleAlreadyExist     = errors.New("auth: role already exists")
	ErrRoleNotFound         = errors.New("auth: role not found")
	ErrRoleEmpty            = errors.New("auth: role name is empty")
	ErrPermissionNotGiven   = errors.New("auth: permission not given")
	ErrRoleNotGranted       = errors.New("auth: role is not granted to the user")
	ErrPermissionNotGranted = errors.New("auth: permission is not granted to the role")
	ErrInvalidAuthMgmt      = errors.New("auth: invalid auth management")

	// Authentication and authorization.
	ErrAuthFailed       = errors.New("auth: authentication failed, invalid user ID or password")
	ErrNoPasswordUser   = errors.New("auth: authentication failed, password was given for no password user")
	ErrPermissionDenied = errors.New("auth: permission denied")
	ErrAuthNotEnabled   = errors.New("auth: authentication is not enabled")
	ErrAuthOldRevision  = errors.New("auth: revision in header is old")
	ErrInvalidAuthToken = errors.New("auth: invalid auth token")
)
