package api

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/server/api/v3concpb"
)

// Before the member's client to itself exists (and after it is closed),
// the Lock and Election services answer Unavailable rather than panic.
func TestSelfClientNotReady(t *testing.T) {
	for _, self := range []*SelfClient{nil, {}} {
		ls := &lockServer{self: self}
		_, err := ls.Lock(context.Background(), &v3concpb.LockRequest{Name: []byte("l")})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("Lock: got %v, want Unavailable", err)
		}
		_, err = ls.Unlock(context.Background(), &v3concpb.UnlockRequest{Key: []byte("l/1")})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("Unlock: got %v, want Unavailable", err)
		}
		es := &electionServer{self: self}
		_, err = es.Leader(context.Background(), &v3concpb.LeaderRequest{Name: []byte("e")})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("Leader: got %v, want Unavailable", err)
		}
		if self == nil {
			continue
		}
		if err := self.Close(); err != nil {
			t.Errorf("Close of an empty SelfClient: %v", err)
		}
	}
}
