// Package lease is Cairn's lease state machine: leases with a TTL in
// seconds, granted, revoked, checkpointed and attached to keys through
// Raft, and kept alive (without Raft) on the member that expires them.
//
// On-disk keys (package storage keyspaces):
//
//	'L' id(8)            TTL(8) remaining_TTL(8): the granted TTL and the last
//	                     checkpointed remaining TTL (0: none, use the TTL)
//	'a' id(8) esc(key)   an attachment of key to lease id
//
// Durable state changes only in apply (Grant, Revoke, Checkpoint, Attach,
// Detach over a storage batch); expiry times are soft state of the primary
// (the leader), set from an injected clock.
package lease

import "errors"

// Errors, as etcd's lease package.
var (
	ErrLeaseNotFound    = errors.New("lease: lease not found")
	ErrLeaseExists      = errors.New("lease: lease already exists")
	ErrLeaseTTLTooLarge = errors.New("lease: too large lease TTL")
	ErrNotPrimary       = errors.New("lease: not a primary lessor")
)

// NoLease is the lease ID of a key without a lease.
const NoLease int64 = 0

// MaxLeaseTTL is the largest TTL a lease may have, in seconds (as etcd).
const MaxLeaseTTL = 9000000000
