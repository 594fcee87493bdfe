package compat

// Lock and Election differential test.
//
// What it proves: etcd's own generated clients (v3lockpb.NewLockClient,
// v3electionpb.NewElectionClient) drive the same sequence against a fresh
// Cairn member and a fresh etcd v3.7 member, and both produce the same
// transcript: lock keys, leader keys (name, key, creation revision, lease),
// values seen by Leader and Observe, header revisions, and every error's
// gRPC code and message. Leases are granted with fixed IDs so key names
// match; the one lease each member picks itself (Lock with lease 0) is
// normalized to "<lease>". Header member and cluster IDs and raft terms are
// left out. Steps that block (a second Lock, a second Campaign) are known
// to be queued when their key appears in a watch, so the transcript does
// not depend on timing.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

func TestLockElectionDiff(t *testing.T) {
	cairnEPs, etcdEPs := cluster.StartBoth(t)
	cairn := runLockElection(t, cairnEPs[0])
	etcd := runLockElection(t, etcdEPs[0])
	if len(cairn) != len(etcd) {
		t.Errorf("transcripts differ in length: cairn %d lines, etcd %d", len(cairn), len(etcd))
	}
	for i := range max(len(cairn), len(etcd)) {
		var c, e string
		if i < len(cairn) {
			c = cairn[i]
		}
		if i < len(etcd) {
			e = etcd[i]
		}
		if c != e {
			t.Errorf("step %d:\n  cairn: %s\n  etcd:  %s", i, c, e)
		}
	}
	if t.Failed() {
		t.Logf("etcd transcript:\n%s", strings.Join(etcd, "\n"))
	}
}

// leTranscript records one member's answers.
type leTranscript struct {
	t     *testing.T
	lines []string
	// autoLease is the lease the member granted itself, shown as <lease>.
	autoLease string
}

func (r *leTranscript) add(step string, resp any, err error) {
	var s string
	if err != nil {
		st, _ := status.FromError(err)
		s = fmt.Sprintf("error %s: %s", st.Code(), st.Message())
	} else {
		s = leFormat(resp)
	}
	if r.autoLease != "" {
		s = strings.ReplaceAll(s, r.autoLease, "<lease>")
	}
	r.lines = append(r.lines, step+" -> "+s)
}

func leHeader(h *pb.ResponseHeader) string {
	if h == nil {
		return "header=nil"
	}
	return fmt.Sprintf("rev=%d", h.Revision)
}

func leFormat(resp any) string {
	switch r := resp.(type) {
	case *v3lockpb.LockResponse:
		return fmt.Sprintf("%s key=%q", leHeader(r.Header), r.Key)
	case *v3lockpb.UnlockResponse:
		return leHeader(r.Header)
	case *v3electionpb.CampaignResponse:
		return fmt.Sprintf("%s leader=%s", leHeader(r.Header), leKey(r.Leader))
	case *v3electionpb.ProclaimResponse:
		return leHeader(r.Header)
	case *v3electionpb.ResignResponse:
		return leHeader(r.Header)
	case *v3electionpb.LeaderResponse:
		if r.Kv == nil {
			return leHeader(r.Header) + " kv=nil"
		}
		kv := r.Kv
		return fmt.Sprintf("%s kv={key=%q value=%q create=%d mod=%d version=%d lease=%x}",
			leHeader(r.Header), kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
	}
	return fmt.Sprintf("unexpected %T", resp)
}

func leKey(k *v3electionpb.LeaderKey) string {
	if k == nil {
		return "nil"
	}
	return fmt.Sprintf("{name=%q key=%q rev=%d lease=%x}", k.Name, k.Key, k.Rev, k.Lease)
}

// runLockElection drives the sequence against one member.
func runLockElection(t *testing.T, ep string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	locks := v3lockpb.NewLockClient(conn)
	elect := v3electionpb.NewElectionClient(conn)
	leases := pb.NewLeaseClient(conn)
	r := &leTranscript{t: t}
	grant := func(id int64) {
		t.Helper()
		if _, err := leases.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: id, TTL: 60}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{0x101, 0x102, 0x103, 0x201, 0x202, 0x203} {
		grant(id)
	}
	watch := cli.Watch(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(1))
	// queued waits until key is written (a blocked caller's place in line).
	queued := func(key string) {
		t.Helper()
		for wr := range watch {
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypePut && string(ev.Kv.Key) == key {
					return
				}
			}
		}
		t.Fatalf("watch ended before %q was written", key)
	}

	// Lock.
	l1, err := locks.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("m"), Lease: 0x101})
	r.add("lock m lease 101", l1, err)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := locks.Unlock(ctx, &v3lockpb.UnlockRequest{Key: []byte("m/nope")})
	r.add("unlock missing key", resp, err)
	resp, err = locks.Unlock(ctx, &v3lockpb.UnlockRequest{})
	r.add("unlock empty key", resp, err)
	second := make(chan any, 2)
	go func() {
		l, err := locks.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("m"), Lease: 0x102})
		second <- l
		second <- err
	}()
	queued("m/102")
	resp, err = locks.Unlock(ctx, &v3lockpb.UnlockRequest{Key: l1.Key})
	r.add("unlock holder", resp, err)
	l2, _ := (<-second).(*v3lockpb.LockResponse)
	err, _ = (<-second).(error)
	r.add("queued lock m lease 102", l2, err)
	if _, err := leases.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: 0x103}); err != nil {
		t.Fatal(err)
	}
	l3, err := locks.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("n"), Lease: 0x103})
	r.add("lock with revoked lease", l3, err)
	l4, err := locks.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("n")})
	if err == nil {
		r.autoLease = strings.TrimPrefix(string(l4.Key), "n/")
	}
	r.add("lock n lease 0", l4, err)

	// Election.
	lr, err := elect.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("e")})
	r.add("leader of empty election", lr, err)
	c1, err := elect.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("e"), Lease: 0x201, Value: []byte("a")})
	r.add("campaign e lease 201", c1, err)
	if err != nil {
		t.Fatal(err)
	}
	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	obs, err := elect.Observe(octx, &v3electionpb.LeaderRequest{Name: []byte("e")})
	if err != nil {
		t.Fatal(err)
	}
	observe := func(step string) {
		t.Helper()
		o, err := obs.Recv()
		r.add(step, o, err)
	}
	observe("observe e")
	lr, err = elect.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("e")})
	r.add("leader e", lr, err)
	pr, err := elect.Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: c1.Leader, Value: []byte("b")})
	r.add("proclaim b", pr, err)
	observe("observe after proclaim")
	wrong := &v3electionpb.LeaderKey{Name: []byte("e"), Key: []byte("e/nope"), Rev: c1.Leader.Rev, Lease: 0x201}
	pr, err = elect.Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: wrong, Value: []byte("x")})
	r.add("proclaim with wrong key", pr, err)
	pr, err = elect.Proclaim(ctx, &v3electionpb.ProclaimRequest{Value: []byte("x")})
	r.add("proclaim without leader", pr, err)
	rr, err := elect.Resign(ctx, &v3electionpb.ResignRequest{Leader: wrong})
	r.add("resign with wrong key", rr, err)
	rr, err = elect.Resign(ctx, &v3electionpb.ResignRequest{})
	r.add("resign without leader", rr, err)
	lr, err = elect.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("e")})
	r.add("leader after wrong-key calls", lr, err)
	campaign := make(chan any, 2)
	go func() {
		c, err := elect.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("e"), Lease: 0x202, Value: []byte("c")})
		campaign <- c
		campaign <- err
	}()
	queued("e/202")
	rr, err = elect.Resign(ctx, &v3electionpb.ResignRequest{Leader: c1.Leader})
	r.add("resign leader", rr, err)
	c2, _ := (<-campaign).(*v3electionpb.CampaignResponse)
	err, _ = (<-campaign).(error)
	r.add("queued campaign e lease 202", c2, err)
	observe("observe after resign")
	pr, err = elect.Proclaim(ctx, &v3electionpb.ProclaimRequest{Leader: c1.Leader, Value: []byte("z")})
	r.add("proclaim by resigned leader", pr, err)
	if _, err := leases.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: 0x202}); err != nil {
		t.Fatal(err)
	}
	lr, err = elect.Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte("e")})
	r.add("leader after its lease is revoked", lr, err)
	c3, err := elect.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("f"), Lease: 0x202, Value: []byte("d")})
	r.add("campaign with revoked lease", c3, err)
	c4, err := elect.Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte("f"), Lease: 0x203})
	r.add("campaign f with empty value", c4, err)
	return r.lines
}
