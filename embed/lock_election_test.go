package embed

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/pkg/codec"
	"github.com/cairn-kv/cairn/server/api/v3concpb"
)

// concClient calls the Lock and Election services as etcd's generated
// clients do (same method names, same messages on the wire).
type concClient struct{ cc *grpc.ClientConn }

func (c concClient) call(ctx context.Context, method string, req, resp any) error {
	return c.cc.Invoke(ctx, method, req, resp, grpc.ForceCodec(codec.Codec{}))
}

func (c concClient) lock(ctx context.Context, name string, lease clientv3.LeaseID) (*v3concpb.LockResponse, error) {
	resp := new(v3concpb.LockResponse)
	return resp, c.call(ctx, "/v3lockpb.Lock/Lock", &v3concpb.LockRequest{Name: []byte(name), Lease: int64(lease)}, resp)
}

func (c concClient) unlock(ctx context.Context, key []byte) (*v3concpb.UnlockResponse, error) {
	resp := new(v3concpb.UnlockResponse)
	return resp, c.call(ctx, "/v3lockpb.Lock/Unlock", &v3concpb.UnlockRequest{Key: key}, resp)
}

func (c concClient) campaign(ctx context.Context, name string, lease clientv3.LeaseID, value string) (*v3concpb.CampaignResponse, error) {
	resp := new(v3concpb.CampaignResponse)
	return resp, c.call(ctx, "/v3electionpb.Election/Campaign", &v3concpb.CampaignRequest{Name: []byte(name), Lease: int64(lease), Value: []byte(value)}, resp)
}

func (c concClient) proclaim(ctx context.Context, lk *v3concpb.LeaderKey, value string) (*v3concpb.ProclaimResponse, error) {
	resp := new(v3concpb.ProclaimResponse)
	return resp, c.call(ctx, "/v3electionpb.Election/Proclaim", &v3concpb.ProclaimRequest{Leader: lk, Value: []byte(value)}, resp)
}

func (c concClient) leader(ctx context.Context, name string) (*v3concpb.LeaderResponse, error) {
	resp := new(v3concpb.LeaderResponse)
	return resp, c.call(ctx, "/v3electionpb.Election/Leader", &v3concpb.LeaderRequest{Name: []byte(name)}, resp)
}

func (c concClient) resign(ctx context.Context, lk *v3concpb.LeaderKey) (*v3concpb.ResignResponse, error) {
	resp := new(v3concpb.ResignResponse)
	return resp, c.call(ctx, "/v3electionpb.Election/Resign", &v3concpb.ResignRequest{Leader: lk}, resp)
}

func (c concClient) observe(ctx context.Context, name string) (func() (*v3concpb.LeaderResponse, error), error) {
	desc := &grpc.StreamDesc{StreamName: "Observe", ServerStreams: true}
	s, err := c.cc.NewStream(ctx, desc, "/v3electionpb.Election/Observe", grpc.ForceCodec(codec.Codec{}))
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(&v3concpb.LeaderRequest{Name: []byte(name)}); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	return func() (*v3concpb.LeaderResponse, error) {
		resp := new(v3concpb.LeaderResponse)
		return resp, s.RecvMsg(resp)
	}, nil
}

// startConc starts a member and returns a client of its KV and one of its
// Lock and Election services.
func startConc(t *testing.T) (*clientv3.Client, concClient) {
	t.Helper()
	srv, err := Start(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	cc, err := grpc.NewClient(srv.ClientEndpoints()[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cli, concClient{cc}
}

// waitPut waits on wch for a put of a key under prefix and returns it.
func waitPut(t *testing.T, wch clientv3.WatchChan) string {
	t.Helper()
	for wr := range wch {
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				return string(ev.Kv.Key)
			}
		}
	}
	t.Fatal("watch ended before a put")
	return ""
}

func grant(t *testing.T, ctx context.Context, cli *clientv3.Client) clientv3.LeaseID {
	t.Helper()
	l, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	return l.ID
}

// A second Lock waits until the first holder unlocks; a waiter whose
// context is cancelled gets Canceled.
func TestLockContention(t *testing.T) {
	cli, conc := startConc(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first, err := conc.lock(ctx, "m", grant(t, ctx, cli))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(first.Key), "m/") || first.Header.Revision == 0 {
		t.Fatalf("Lock: got key %q at revision %d, want a key under m/ and a revision", first.Key, first.Header.Revision)
	}
	wch := cli.Watch(ctx, "m/", clientv3.WithPrefix(), clientv3.WithRev(first.Header.Revision+1))

	type result struct {
		resp *v3concpb.LockResponse
		err  error
	}
	second := make(chan result, 1)
	secondLease := grant(t, ctx, cli)
	go func() {
		r, err := conc.lock(ctx, "m", secondLease)
		second <- result{r, err}
	}()
	waiterKey := waitPut(t, wch) // the second caller is queued
	select {
	case r := <-second:
		t.Fatalf("second Lock returned while the first holds the lock: %+v, %v", r.resp, r.err)
	default:
	}

	// A third caller gives up while it waits.
	cctx, ccancel := context.WithCancel(ctx)
	third := make(chan error, 1)
	thirdLease := grant(t, ctx, cli)
	go func() {
		_, err := conc.lock(cctx, "m", thirdLease)
		third <- err
	}()
	thirdKey := waitPut(t, wch)
	ccancel()
	if err := <-third; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled Lock: got %v, want Canceled", err)
	}
	// The server deletes the waiter's key if the cancel reaches it while it
	// waits, but not if it lands while the key is being written (etcd's
	// concurrency.Mutex behaves alike); the key's lease takes it either way.
	if _, err := cli.Revoke(ctx, thirdLease); err != nil {
		t.Fatal(err)
	}

	unlock, err := conc.unlock(ctx, first.Key)
	if err != nil {
		t.Fatal(err)
	}
	r := <-second
	if r.err != nil {
		t.Fatal(r.err)
	}
	if string(r.resp.Key) != waiterKey || r.resp.Header.Revision < unlock.Header.Revision {
		t.Fatalf("second Lock: got key %q at revision %d, want %q at or after %d", r.resp.Key, r.resp.Header.Revision, waiterKey, unlock.Header.Revision)
	}
	get, err := cli.Get(ctx, "m/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range get.Kvs {
		if string(kv.Key) == thirdKey {
			t.Errorf("the cancelled waiter's key %q is still there", thirdKey)
		}
	}
	if len(get.Kvs) != 1 || string(get.Kvs[0].Key) != waiterKey {
		t.Errorf("keys under m/: got %d, want only the holder's %q", len(get.Kvs), waiterKey)
	}
	// Unlocking a key that is gone is no error.
	if _, err := conc.unlock(ctx, first.Key); err != nil {
		t.Errorf("Unlock of a missing key: got %v, want no error", err)
	}
}

// Lock under a revoked lease fails with etcd's lease-not-found text.
func TestLockRevokedLease(t *testing.T) {
	cli, conc := startConc(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := grant(t, ctx, cli)
	if _, err := cli.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err := conc.lock(ctx, "m", id)
	if status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "etcdserver: requested lease not found") {
		t.Fatalf("Lock with a revoked lease: got %v, want Unknown: etcdserver: requested lease not found", err)
	}
}

// Campaign, Leader, Proclaim, Observe and Resign, with two candidates.
func TestElection(t *testing.T) {
	cli, conc := startConc(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := conc.leader(ctx, "e"); status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "election: no leader") {
		t.Fatalf("Leader with no candidate: got %v, want Unknown: election: no leader", err)
	}
	l1 := grant(t, ctx, cli)
	c1, err := conc.campaign(ctx, "e", l1, "a")
	if err != nil {
		t.Fatal(err)
	}
	lk := c1.Leader
	if string(lk.Name) != "e" || !strings.HasPrefix(string(lk.Key), "e/") || lk.Lease != int64(l1) || lk.Rev != c1.Header.Revision {
		t.Fatalf("Campaign: got leader %+v at revision %d, want e/... under lease %x created then", lk, c1.Header.Revision, l1)
	}
	recv, err := conc.observe(ctx, "e")
	if err != nil {
		t.Fatal(err)
	}
	expectValue := func(what, want string, resp *v3concpb.LeaderResponse, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if resp.Kv == nil || string(resp.Kv.Value) != want {
			t.Fatalf("%s: got %+v, want value %q", what, resp.Kv, want)
		}
	}
	resp, err := recv()
	expectValue("Observe", "a", resp, err)
	resp, err = conc.leader(ctx, "e")
	expectValue("Leader", "a", resp, err)
	if string(resp.Kv.Key) != string(lk.Key) {
		t.Errorf("Leader key: got %q, want %q", resp.Kv.Key, lk.Key)
	}

	if _, err := conc.proclaim(ctx, lk, "b"); err != nil {
		t.Fatal(err)
	}
	resp, err = recv()
	expectValue("Observe after Proclaim", "b", resp, err)
	resp, err = conc.leader(ctx, "e")
	expectValue("Leader after Proclaim", "b", resp, err)

	// A second candidate waits for the first to resign.
	l2 := grant(t, ctx, cli)
	second := make(chan *v3concpb.CampaignResponse, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := conc.campaign(ctx, "e", l2, "c")
		second <- c
		errc <- err
	}()
	// Proclaim and Resign with a key that is not the leader's.
	wrong := &v3concpb.LeaderKey{Name: lk.Name, Key: []byte("e/nope"), Rev: lk.Rev, Lease: lk.Lease}
	if _, err := conc.proclaim(ctx, wrong, "x"); status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "election: not leader") {
		t.Fatalf("Proclaim by a non-leader: got %v, want Unknown: election: not leader", err)
	}
	if _, err := conc.resign(ctx, wrong); err != nil {
		t.Fatalf("Resign by a non-leader: got %v, want no error (as etcd)", err)
	}
	if _, err := conc.resign(ctx, nil); status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), `"leader" field must be provided`) {
		t.Fatalf("Resign without a leader key: got %v, want etcd's missing leader key error", err)
	}
	resp, err = conc.leader(ctx, "e")
	expectValue("Leader after a non-leader's Proclaim and Resign", "b", resp, err)

	if _, err := conc.resign(ctx, lk); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	c2 := <-second
	if c2.Leader.Lease != int64(l2) || string(c2.Leader.Key) == string(lk.Key) {
		t.Fatalf("second Campaign: got leader %+v, want a new key under lease %x", c2.Leader, l2)
	}
	resp, err = recv()
	expectValue("Observe after Resign", "c", resp, err)
	if string(resp.Kv.Key) != string(c2.Leader.Key) {
		t.Errorf("Observe after Resign: got key %q, want %q", resp.Kv.Key, c2.Leader.Key)
	}
	// The old leader key can no longer proclaim.
	if _, err := conc.proclaim(ctx, lk, "z"); status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "election: not leader") {
		t.Fatalf("Proclaim after Resign: got %v, want Unknown: election: not leader", err)
	}
}
