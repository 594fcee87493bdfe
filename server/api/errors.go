package api

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/apply"
	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/server"
)

// errorTable maps each sentinel error of the layers below to the gRPC error
// etcd returns for it (etcd's v3rpc toGRPCErrorMap). Clients match on the
// message, so these must be rpctypes' own values.
var errorTable = []struct {
	err  error
	grpc error
}{
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{apply.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{apply.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{apply.ErrCorrupt, rpctypes.ErrGRPCCorrupt},
	{apply.ErrAlarmAction, status.Error(codes.InvalidArgument, "etcdserver: unknown alarm action")}, // etcd 3.6 panics
	{lease.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{lease.ErrLeaseExists, rpctypes.ErrGRPCLeaseExist},
	{lease.ErrLeaseTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{lease.ErrNotPrimary, rpctypes.ErrGRPCNotLeader},
	{server.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{server.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{server.ErrTooManyRequests, rpctypes.ErrTooManyRequests},
	{server.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{server.ErrStopped, rpctypes.ErrGRPCStopped},
	{server.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{server.ErrTimeoutReadIndex, rpctypes.ErrGRPCTimeoutWaitAppliedIndex},
	{server.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{server.ErrNotEnoughStartedMembers, rpctypes.ErrMemberNotEnoughStarted},
	{server.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{server.ErrBadLeaderTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
	{server.ErrTimeoutLeaderTransfer, status.Error(codes.Unknown, "etcdserver: request timed out, leader transfer took too long")}, // etcd maps it to nothing: Unknown with its text
	{server.ErrMemberBadURLs, rpctypes.ErrGRPCMemberBadURLs},
	{membership.ErrIDExists, rpctypes.ErrGRPCMemberExist},
	{membership.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist},
	{membership.ErrMemberNotFound, rpctypes.ErrGRPCMemberNotFound},
	{membership.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{membership.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	{auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{auth.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
	{auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
	// auth.ErrNoPasswordUser is not in etcd's map: codes.Unknown.
}

// toGRPCError converts an error from the member into the error etcd would
// send. Context errors pass through for gRPC to turn into Canceled and
// DeadlineExceeded; unknown errors become codes.Unknown with their text.
func toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// A token provider's failure to assign: the "no tokens" provider's
	// answer is etcd's ErrAuthFailed, anything else goes as its text.
	var ae *auth.AssignError
	if errors.As(err, &ae) {
		if ae.Err.Error() == auth.ErrAuthFailed.Error() {
			return rpctypes.ErrGRPCAuthFailed
		}
		return status.Error(codes.Unknown, ae.Error())
	}
	for _, e := range errorTable {
		// etcd matches its map by identity, so a wrapped error (a txn's
		// "applyTxn: failed Range: ...") reaches clients as Unknown.
		if err == e.err {
			return e.grpc
		}
	}
	return status.Error(codes.Unknown, err.Error())
}
