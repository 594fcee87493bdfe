package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Leader is an election's current leader.
type Leader struct {
	// Key is the leader's campaign key: election name + "/" + lease ID in
	// hex. Empty when the election has no leader.
	Key string
	// Value is what the leader proclaimed.
	Value string
	// Revision is the leader key's create revision, the leadership's
	// fencing token.
	Revision int64
	// ModRevision is the revision of the last Proclaim (or the campaign).
	ModRevision int64
}

// Leadership is a won election, held under its own session lease until
// Resign. The caveat on Lock applies: a leader can lose its lease without
// knowing in time, so fence what it writes with IsLeader.
type Leadership struct {
	c    *Client
	s    *session
	e    *concurrency.Election
	name string

	mu struct {
		sync.Mutex
		resigned bool
	}
}

// Campaign joins the election called name with value and waits, until ctx
// is done, to become its leader. Candidates are served in the order they
// joined. The campaign is held under a lease of ttl (rounded up to whole
// seconds) kept alive until Resign; if the leader dies, the next candidate
// takes over ttl later.
//
// Keys are name + "/" + lease ID in hex, as clientv3's concurrency.Election
// and `etcdctl elect` write them. Campaign fails with ctx's error if ctx
// ends first (withdrawing the candidacy), and with ErrLeaseLost if the
// lease was lost while waiting.
func (c *Client) Campaign(ctx context.Context, name, value string, ttl time.Duration) (*Leadership, error) {
	s, err := c.newSession(ctx, ttl)
	if err != nil {
		return nil, err
	}
	e := concurrency.NewElection(s.s, name)
	lctx, stop := s.contextUntilLost(ctx)
	err = e.Campaign(lctx, value)
	stop()
	if err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.release(rctx)
		if s.isLost() && ctx.Err() == nil {
			return nil, fmt.Errorf("client: campaign %s: %w", name, ErrLeaseLost)
		}
		return nil, c.wrap("campaign "+name, err)
	}
	return &Leadership{c: c, s: s, e: e, name: name}, nil
}

// Proclaim changes the leader's value without a new election. It fails
// with ErrNotLeader if this campaign no longer leads.
func (l *Leadership) Proclaim(ctx context.Context, value string) error {
	return l.c.wrap("proclaim "+l.name, l.e.Proclaim(ctx, value))
}

// Resign gives up the leadership (the next candidate takes over) and
// revokes the session lease. Resigning twice is not an error. It returns
// an error wrapping ErrLeaseLost if the leadership had been lost before.
func (l *Leadership) Resign(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.resigned {
		return nil
	}
	l.mu.resigned = true
	wasLost := l.s.isLost()
	if err := l.s.release(ctx); err != nil {
		return l.c.wrap("resign "+l.name, err)
	}
	if wasLost {
		return fmt.Errorf("client: resign %s: %w", l.name, ErrLeaseLost)
	}
	return nil
}

// Lost is closed if the leadership's lease is lost before Resign: another
// candidate may lead from then on.
func (l *Leadership) Lost() <-chan struct{} { return l.s.lost }

// Key is the leader's campaign key.
func (l *Leadership) Key() string { return l.e.Key() }

// Revision is the campaign key's create revision: the fencing token.
func (l *Leadership) Revision() int64 { return l.e.Rev() }

// Lease is the lease the leadership is held under.
func (l *Leadership) Lease() LeaseID { return LeaseID(l.s.s.Lease()) }

// IsLeader is a Txn comparison that holds only while this campaign leads.
func (l *Leadership) IsLeader() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.e.Key()), "=", l.e.Rev())
}

// Leader reads the election's current leader. It fails with ErrNoLeader if
// there is none.
func (c *Client) Leader(ctx context.Context, name string) (Leader, error) {
	resp, err := c.etcd.Get(ctx, name+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return Leader{}, c.wrap("leader "+name, err)
	}
	if len(resp.Kvs) == 0 {
		return Leader{}, fmt.Errorf("client: leader %s: %w", name, ErrNoLeader)
	}
	return leaderOf(fromPB(resp.Kvs[0])), nil
}

func leaderOf(kv KeyValue) Leader {
	return Leader{Key: kv.Key, Value: kv.Value, Revision: kv.CreateRevision, ModRevision: kv.ModRevision}
}

// Observe calls fn with the election's leader now and after every change
// of leader or of its value, until ctx is done or the returned Watcher is
// stopped. A Leader with an empty Key means the election has no leader.
// It rides on WatchPrefix, so it survives disconnects and compactions, and
// fn runs on the watcher's goroutine. It fails only if the first read does.
func (c *Client) Observe(ctx context.Context, name string, fn func(Leader)) (*Watcher, error) {
	candidates := map[string]KeyValue{}
	var last *Leader
	update := func(ev Event) {
		switch ev.Type {
		case EventReset:
			clear(candidates)
			for _, kv := range ev.State {
				candidates[kv.Key] = kv
			}
		case EventDelete:
			delete(candidates, ev.KV.Key)
		default:
			candidates[ev.KV.Key] = ev.KV
		}
		if !ev.LastInRevision {
			return
		}
		var cur Leader
		for _, kv := range candidates {
			if cur.Key == "" || kv.CreateRevision < cur.Revision {
				cur = leaderOf(kv)
			}
		}
		if last == nil || *last != cur {
			last = &cur
			fn(cur)
		}
	}
	return c.WatchPrefix(ctx, name+"/", update, WithInitialState())
}
