package apply

import (
	"errors"
	"fmt"

	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/mvcc"
)

// errUnsupported answers an entry whose request apply does not know.
var errUnsupported = errors.New("apply: unsupported request")

// StorageError is a failure of the store itself (a read or write that
// failed, a corrupt record) met while applying an entry. Apply is a pure
// function of the log and the state: it cannot answer the client and go
// on, or members would diverge on a disk error, so Apply returns the error
// and the member stops (etcd panics in the same places).
type StorageError struct {
	Op  string // what apply was doing
	Err error
}

func (e *StorageError) Error() string {
	return fmt.Sprintf("apply: storage failure in %s: %v", e.Op, e.Err)
}
func (e *StorageError) Unwrap() error { return e.Err }

// requestErrors are the errors a request may get from apply: they depend
// only on the request and the replicated state, so every member gets the
// same one. Any other error met in apply is a StorageError.
var requestErrors = []error{
	ErrKeyNotFound, errUnsupported, ErrNoSpace, ErrCorrupt, ErrAlarmAction,
	mvcc.ErrCompacted, mvcc.ErrFutureRev,
	lease.ErrLeaseNotFound, lease.ErrLeaseExists, lease.ErrLeaseTTLTooLarge,
	membership.ErrMemberNotFound,
	auth.ErrRootUserNotExist, auth.ErrRootRoleNotExist, auth.ErrUserAlreadyExist,
	auth.ErrUserEmpty, auth.ErrUserNotFound, auth.ErrRoleAlreadyExist, auth.ErrRoleNotFound,
	auth.ErrRoleEmpty, auth.ErrPermissionNotGiven, auth.ErrRoleNotGranted,
	auth.ErrPermissionNotGranted, auth.ErrInvalidAuthMgmt, auth.ErrAuthFailed,
	auth.ErrNoPasswordUser, auth.ErrPermissionDenied, auth.ErrAuthNotEnabled,
	auth.ErrAuthOldRevision, auth.ErrInvalidAuthToken,
}

// asStorageError returns nil if err is nil or a request error, else err as
// a StorageError of op.
func asStorageError(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *StorageError
	if errors.As(err, &se) {
		return se
	}
	var ae *auth.AssignError
	if errors.As(err, &ae) {
		return nil
	}
	for _, re := range requestErrors {
		if errors.Is(err, re) {
			return nil
		}
	}
	return &StorageError{Op: op, Err: err}
}
