package api

import (
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errSelfClientNotReady answers Lock and Election calls that arrive before
// the member's client to itself exists, or after it is closed.
var errSelfClientNotReady = status.Error(codes.Unavailable, "cairn: lock and election services are not ready")

// SelfClient holds the client through which the Lock and Election services
// call the member, as etcd's run over an etcd client of the server itself
// (go.etcd.io/etcd/client/v3/concurrency). The gRPC server is made before it
// serves, so the client arrives later: embed sets it once the client
// listener serves and closes it before the gRPC server stops. The zero value
// is ready to use and holds no client.
type SelfClient struct {
	mu struct {
		sync.RWMutex
		c *clientv3.Client // nil until Set, and after Close
	}
}

// Set makes c the client the services use. SelfClient owns it from now on.
func (s *SelfClient) Set(c *clientv3.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.c = c
}

// Close closes the client, failing the calls that use it; later calls get
// codes.Unavailable.
func (s *SelfClient) Close() error {
	s.mu.Lock()
	c := s.mu.c
	s.mu.c = nil
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}

// Client is the member's client to itself, or an error before Set and
// after Close.
func (s *SelfClient) Client() (*clientv3.Client, error) { return s.get() }

func (s *SelfClient) get() (*clientv3.Client, error) {
	if s == nil {
		return nil, errSelfClientNotReady
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.c == nil {
		return nil, errSelfClientNotReady
	}
	return s.mu.c, nil
}
