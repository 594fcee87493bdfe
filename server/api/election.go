package api

import (
	"context"
	"errors"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairn-kv/cairn/server/api/v3concpb"
)

// errMissingLeaderKey is etcd's v3election.ErrMissingLeaderKey, which its
// clients see with codes.Unknown.
var errMissingLeaderKey = errors.New(`"leader" field must be provided`)

// electionServer is etcd's v3electionpb.Election: a concurrency.Election
// per call, over the member's client to itself. Errors are those the
// client and concurrency return (concurrency.ErrElectionNotLeader,
// ErrElectionNoLeader, ...), which etcd's clients see with codes.Unknown.
type electionServer struct {
	self *SelfClient
}

// noLease is the lease etcd's election service gives the sessions of Leader
// and Observe, which write nothing: no lease is granted for them.
const noLease = -1

func (es *electionServer) Campaign(ctx context.Context, req *v3concpb.CampaignRequest) (*v3concpb.CampaignResponse, error) {
	ctx = forwardToken(ctx)
	s, err := session(ctx, es.self, req.Lease)
	if err != nil {
		return nil, err
	}
	e := concurrency.NewElection(s, string(req.Name))
	if err := e.Campaign(ctx, string(req.Value)); err != nil {
		return nil, err
	}
	return &v3concpb.CampaignResponse{
		Header: e.Header(),
		Leader: &v3concpb.LeaderKey{Name: req.Name, Key: []byte(e.Key()), Rev: e.Rev(), Lease: int64(s.Lease())},
	}, nil
}

func (es *electionServer) Proclaim(ctx context.Context, req *v3concpb.ProclaimRequest) (*v3concpb.ProclaimResponse, error) {
	ctx = forwardToken(ctx)
	e, err := es.resume(ctx, req.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Proclaim(ctx, string(req.Value)); err != nil {
		return nil, err
	}
	return &v3concpb.ProclaimResponse{Header: e.Header()}, nil
}

func (es *electionServer) Leader(ctx context.Context, req *v3concpb.LeaderRequest) (*v3concpb.LeaderResponse, error) {
	ctx = forwardToken(ctx)
	s, err := session(ctx, es.self, noLease)
	if err != nil {
		return nil, err
	}
	l, err := concurrency.NewElection(s, string(req.Name)).Leader(ctx)
	if err != nil {
		return nil, err
	}
	return &v3concpb.LeaderResponse{Header: l.Header, Kv: l.Kvs[0]}, nil
}

// Observe streams the election's leader and every change of it or of its
// value, until the caller goes away.
func (es *electionServer) Observe(req *v3concpb.LeaderRequest, stream v3concpb.ObserveStream) error {
	ctx := forwardToken(stream.Context())
	s, err := session(ctx, es.self, noLease)
	if err != nil {
		return err
	}
	ch := concurrency.NewElection(s, string(req.Name)).Observe(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-ch:
			if !ok { // its client closed
				return nil
			}
			if err := stream.Send(&v3concpb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
				return err
			}
		}
	}
}

// Resign gives up leadership. A key that is no longer the leader's (or
// never was) is no error, as with etcd: the delete just does not happen.
func (es *electionServer) Resign(ctx context.Context, req *v3concpb.ResignRequest) (*v3concpb.ResignResponse, error) {
	ctx = forwardToken(ctx)
	e, err := es.resume(ctx, req.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Resign(ctx); err != nil {
		return nil, err
	}
	return &v3concpb.ResignResponse{Header: e.Header()}, nil
}

// resume is the election of a leader key from an earlier Campaign.
func (es *electionServer) resume(ctx context.Context, lk *v3concpb.LeaderKey) (*concurrency.Election, error) {
	if lk == nil {
		return nil, errMissingLeaderKey
	}
	s, err := session(ctx, es.self, lk.Lease)
	if err != nil {
		return nil, err
	}
	return concurrency.ResumeElection(s, string(lk.Name), string(lk.Key), lk.Rev), nil
}
