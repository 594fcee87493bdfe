package server

import "errors"

// Errors a member returns, as etcd's etcdserver/errors; the API layer maps
// each to its rpctypes error.
var (
	ErrStopped          = errors.New("server: server stopped")
	ErrTimeout          = errors.New("server: request timed out")
	ErrNoLeader         = errors.New("server: no leader")
	ErrTooManyRequests  = errors.New("server: too many requests")
	ErrRequestTooLarge  = errors.New("server: request is too large")
	ErrNoSpace          = errors.New("server: database space exceeded")
	ErrTimeoutReadIndex = errors.New("server: request timed out, waiting for the applied index took too long")
)
