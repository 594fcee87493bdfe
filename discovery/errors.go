package discovery

import (
	"errors"
	"fmt"
)

// Errors of both protocols, with the messages of etcd's v3discovery and
// v2discovery packages (etcd 3.7.4 and 3.5.21).
var (
	// ErrSizeNotFound: the token has no _config/size key (an unknown or
	// mistyped token).
	ErrSizeNotFound = errors.New("discovery: size key not found")
	// ErrBadSizeKey: _config/size is not a positive integer.
	ErrBadSizeKey = errors.New("discovery: size key is bad")
	// ErrFullCluster: _config/size members registered before this one.
	ErrFullCluster = errors.New("discovery: cluster is full")
	// ErrTooManyRetries: the service stayed unreachable.
	ErrTooManyRetries = errors.New("discovery: too many retries")
	// ErrDuplicateName: two registered members share a name (etcd's
	// v2discovery; etcd's v3discovery does not check, see JoinV3).
	ErrDuplicateName = errors.New("discovery: found duplicate name")
)

// Errors of the v3 protocol only.
var (
	// ErrInvalidPeerURL: a registered member's value is not name=URL.
	ErrInvalidPeerURL = errors.New("discovery: invalid peer URL")
)

// Errors of the v2 protocol only.
var (
	// ErrInvalidURL: a registered member's value is not name=URL.
	ErrInvalidURL = errors.New("discovery: invalid URL")
	// ErrDuplicateID: this member's ID is registered already: it joined
	// with this token before and lost its data dir, or another member has
	// the same peer URLs.
	ErrDuplicateID = errors.New("discovery: found duplicate id")
	// ErrBadDiscoveryEndpoint: the discovery URL answers, but not with the
	// v2 keys API's JSON.
	ErrBadDiscoveryEndpoint = errors.New("discovery: bad discovery endpoint")
)

// Error is a failed discovery, as etcd's etcdserver DiscoveryError: Op is
// "join". Its message is etcd's: "failed to join discovery cluster (<Err>)".
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("failed to %s discovery cluster (%v)", e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
