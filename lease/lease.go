// Package lease is Cairn's lease state machine: leases with a TTL in
// seconds, granted, revoked and attached to keys through Raft. (The Lease
// service arrives with its own issue; until then no lease exists, so a Put
// naming one fails with ErrLeaseNotFound, as etcd's would.)
package lease

import "errors"

// Errors, as etcd's lease package.
var (
	ErrLeaseNotFound    = errors.New("lease: lease not found")
	ErrLeaseExists      = errors.New("lease: lease already exists")
	ErrLeaseTTLTooLarge = errors.New("lease: too large lease TTL")
)

// NoLease is the lease ID of a key without a lease.
const NoLease int64 = 0
