package compat

// Lease differential test.
//
// What it proves: for every sequence below, a fresh Cairn member and a fresh
// etcd v3.7 member give the same answer to every request of the Lease
// service (LeaseGrant, LeaseRevoke, LeaseTimeToLive, LeaseLeases, and the
// LeaseKeepAlive stream) and to the KV requests that attach keys to leases,
// sent as raw etcdserverpb messages and compared whole, field by field, as
// in kv_diff_test.go. Besides the header identity, only these may differ:
//
//   - lease IDs the servers chose (LeaseGrant with ID 0): the test names
//     each such lease with a placeholder ID (autoLease), sends each member
//     its own ID where a request names the placeholder, and maps the IDs in
//     answers back to placeholders;
//   - the remaining TTL of LeaseTimeToLive, by at most one second (the two
//     members do not grant at the same instant);
//   - the order of LeaseTimeToLive's keys, which etcd takes from a Go map.
//
// Expiry is waited for with a bounded poll, then the resulting state and
// revisions are compared.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// autoLeaseBase is the first placeholder ID of a server-chosen lease; the
// sequences use small client-chosen IDs, far below it.
const autoLeaseBase int64 = 0x7a00_0000_0000_0000

// autoLease is the placeholder of the n-th server-chosen lease of a sequence.
func autoLease(n int64) int64 { return autoLeaseBase + n }

// maxLeaseTTL is etcd's largest lease TTL, in seconds.
const maxLeaseTTL = 9000000000

func leaseGrant(id, ttl int64) *pb.LeaseGrantRequest { return &pb.LeaseGrantRequest{ID: id, TTL: ttl} }

func leaseRevoke(id int64) *pb.LeaseRevokeRequest { return &pb.LeaseRevokeRequest{ID: id} }

func leaseTTL(id int64) *pb.LeaseTimeToLiveRequest { return &pb.LeaseTimeToLiveRequest{ID: id} }

func leaseTTLKeys(id int64) *pb.LeaseTimeToLiveRequest {
	return &pb.LeaseTimeToLiveRequest{ID: id, Keys: true}
}

func leaseList() *pb.LeaseLeasesRequest { return &pb.LeaseLeasesRequest{} }

func putLease(k, v string, id int64) *pb.PutRequest {
	return &pb.PutRequest{Key: []byte(k), Value: []byte(v), Lease: id}
}

// callLease sends one Lease request (grant, revoke, time-to-live, leases)
// and normalizes the header. It gives up early when abort closes.
func callLease(lc pb.LeaseClient, req any, abort <-chan struct{}) outcome {
	ctx, cancel := requestCtx(abort)
	defer cancel()
	var (
		resp any
		hdr  *pb.ResponseHeader
		err  error
	)
	switch r := req.(type) {
	case *pb.LeaseGrantRequest:
		var x *pb.LeaseGrantResponse
		if x, err = lc.LeaseGrant(ctx, r); x != nil {
			resp, hdr = x, x.Header
		}
	case *pb.LeaseRevokeRequest:
		var x *pb.LeaseRevokeResponse
		if x, err = lc.LeaseRevoke(ctx, r); x != nil {
			resp, hdr = x, x.Header
		}
	case *pb.LeaseTimeToLiveRequest:
		var x *pb.LeaseTimeToLiveResponse
		if x, err = lc.LeaseTimeToLive(ctx, r); x != nil {
			resp, hdr = x, x.Header
		}
	case *pb.LeaseLeasesRequest:
		var x *pb.LeaseLeasesResponse
		if x, err = lc.LeaseLeases(ctx, r); x != nil {
			resp, hdr = x, x.Header
		}
	default:
		panic(fmt.Sprintf("callLease: unexpected request type %T", req))
	}
	return settle(resp, hdr, err)
}

// leaseEnv runs one lease sequence on a fresh pair of members.
type leaseEnv struct {
	t       *testing.T
	kv      [2]pb.KVClient
	lease   [2]pb.LeaseClient
	crashed <-chan struct{}
	crash   func() string

	// actual maps, per member, the placeholder of a server-chosen lease to
	// the ID that member chose; placeholder is the reverse.
	actual      [2]map[int64]int64
	placeholder [2]map[int64]int64

	steps []string // the sequence so far, printed with a failure
}

func newLeaseEnv(t *testing.T) *leaseEnv {
	t.Helper()
	cairnEps, etcdEps := cluster.StartBoth(t)
	crashed, crash := cluster.EtcdCrash(etcdEps[0])
	e := &leaseEnv{t: t, crashed: crashed, crash: crash}
	for side, ep := range [2]string{etcdSide: etcdEps[0], cairnSide: cairnEps[0]} {
		conn := dial(t, ep)
		e.kv[side] = pb.NewKVClient(conn)
		e.lease[side] = pb.NewLeaseClient(conn)
		e.actual[side] = map[int64]int64{}
		e.placeholder[side] = map[int64]int64{}
	}
	return e
}

func (e *leaseEnv) failf(format string, args ...any) {
	e.t.Helper()
	e.t.Errorf("%s\nsteps so far:\n    %s", fmt.Sprintf(format, args...), strings.Join(e.steps, "\n    "))
}

func (e *leaseEnv) checkCrash() {
	e.t.Helper()
	select {
	case <-e.crashed:
		e.t.Fatalf("etcd, the oracle, crashed (an etcd bug; Cairn is not at fault)\netcd log: %s\nsteps:\n    %s",
			e.crash(), strings.Join(e.steps, "\n    "))
	default:
	}
}

// send sends req, with placeholders replaced by the member's lease IDs, to
// one member, and maps the IDs of its answer back to placeholders.
func (e *leaseEnv) send(side int, req any) outcome {
	req = cloneMsg(req)
	mapLeaseIDs(req, func(id int64) int64 {
		if a, ok := e.actual[side][id]; ok {
			return a
		}
		return id
	})
	var abort <-chan struct{}
	if side == etcdSide {
		abort = e.crashed
	}
	var o outcome
	switch req.(type) {
	case *pb.LeaseGrantRequest, *pb.LeaseRevokeRequest, *pb.LeaseTimeToLiveRequest, *pb.LeaseLeasesRequest:
		o = callLease(e.lease[side], req, abort)
	default:
		o = call(e.kv[side], req, abort)
	}
	if o.resp != nil {
		e.toPlaceholders(side, o.resp)
	}
	return o
}

func (e *leaseEnv) toPlaceholders(side int, msg any) {
	mapLeaseIDs(msg, func(id int64) int64 {
		if p, ok := e.placeholder[side][id]; ok {
			return p
		}
		return id
	})
}

// do sends req to both members and compares the answers, allowing the
// remaining TTL to differ by a second. It returns etcd's outcome.
func (e *leaseEnv) do(req any) outcome {
	e.t.Helper()
	e.steps = append(e.steps, shorten(describe(req), 300))
	eo := e.send(etcdSide, req)
	ko := e.send(cairnSide, req)
	e.checkCrash()
	e.compare(describe(req), eo, ko)
	return eo
}

func (e *leaseEnv) compare(what string, eo, ko outcome) {
	e.t.Helper()
	alignRemainingTTL(eo.resp, ko.resp)
	if d := diffOutcomes(eo, ko); d != "" {
		e.failf("%s: Cairn differs from etcd\netcd:  %s\ncairn: %s\ndiff (-etcd +cairn):\n%s", what, eo, ko, d)
	}
}

// grantAuto grants a lease with a server-chosen ID on both members and
// names it placeholder in the rest of the sequence.
func (e *leaseEnv) grantAuto(placeholder, ttl int64) {
	e.t.Helper()
	req := leaseGrant(0, ttl)
	e.steps = append(e.steps, fmt.Sprintf("%s (server-chosen ID, called %#x below)", describe(req), placeholder))
	var outs [2]outcome
	for side := range 2 {
		outs[side] = e.send(side, req)
		if r, ok := outs[side].resp.(*pb.LeaseGrantResponse); ok {
			if r.ID <= 0 {
				e.failf("LeaseGrant with ID 0 on %s: got ID %d, want a positive ID", sideName(side), r.ID)
			}
			e.actual[side][placeholder] = r.ID
			e.placeholder[side][r.ID] = placeholder
			r.ID = placeholder
		}
	}
	e.checkCrash()
	e.compare(describe(req), outs[etcdSide], outs[cairnSide])
}

// keepAlive opens a LeaseKeepAlive stream on each member, sends one
// request per ID and compares the answers.
func (e *leaseEnv) keepAlive(ids ...int64) {
	e.t.Helper()
	e.steps = append(e.steps, fmt.Sprintf("LeaseKeepAlive stream: %v", ids))
	var got [2][]outcome
	for side := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		stream, err := e.lease[side].LeaseKeepAlive(ctx)
		if err != nil {
			cancel()
			e.t.Fatalf("LeaseKeepAlive on %s: %v", sideName(side), err)
		}
		for _, id := range ids {
			req := &pb.LeaseKeepAliveRequest{ID: id}
			if a, ok := e.actual[side][id]; ok {
				req.ID = a
			}
			var o outcome
			if err := stream.Send(req); err != nil {
				o.err = status.Convert(err)
			} else if resp, err := stream.Recv(); err != nil {
				o.err = status.Convert(err)
			} else {
				normalizeHeader(resp.Header)
				e.toPlaceholders(side, resp)
				o.resp = resp
			}
			got[side] = append(got[side], o)
		}
		// A stream that answered every request ends cleanly when the
		// client closes its side.
		if last := got[side][len(got[side])-1]; last.err == nil {
			if err := stream.CloseSend(); err != nil {
				e.t.Errorf("LeaseKeepAlive CloseSend on %s: %v", sideName(side), err)
			}
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				e.failf("LeaseKeepAlive on %s after CloseSend: got %v, want io.EOF", sideName(side), err)
			}
		}
		cancel()
	}
	e.checkCrash()
	for i, id := range ids {
		e.compare(fmt.Sprintf("LeaseKeepAlive ID %d", id), got[etcdSide][i], got[cairnSide][i])
	}
}

// awaitExpired polls both members, without comparing, until the lease is
// gone from both (its time-to-live answers TTL -1).
func (e *leaseEnv) awaitExpired(id int64, limit time.Duration) {
	e.t.Helper()
	e.steps = append(e.steps, fmt.Sprintf("wait until lease %d has expired on both members", id))
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var gone [2]bool
	for !gone[etcdSide] || !gone[cairnSide] {
		for side := range 2 {
			if gone[side] {
				continue
			}
			if r, ok := e.send(side, leaseTTL(id)).resp.(*pb.LeaseTimeToLiveResponse); ok && r.TTL == -1 {
				gone[side] = true
			}
		}
		e.checkCrash()
		if time.Now().After(deadline) {
			e.failf("lease %d not expired after %v: etcd expired %v, cairn expired %v", id, limit, gone[etcdSide], gone[cairnSide])
			e.t.FailNow()
		}
		<-tick.C
	}
}

// alignRemainingTTL sets Cairn's remaining TTL to etcd's where they differ
// by at most a second, and sorts both lists of attached keys.
func alignRemainingTTL(etcd, cairn any) {
	e, ok1 := etcd.(*pb.LeaseTimeToLiveResponse)
	k, ok2 := cairn.(*pb.LeaseTimeToLiveResponse)
	if !ok1 || !ok2 {
		return
	}
	if d := e.TTL - k.TTL; d >= -1 && d <= 1 {
		k.TTL = e.TTL
	}
	for _, keys := range [][][]byte{e.Keys, k.Keys} {
		sort.Slice(keys, func(i, j int) bool { return string(keys[i]) < string(keys[j]) })
	}
}

// mapLeaseIDs rewrites every lease ID in a request or response with f.
func mapLeaseIDs(msg any, f func(int64) int64) {
	switch m := msg.(type) {
	case *pb.LeaseGrantRequest:
		m.ID = f(m.ID)
	case *pb.LeaseRevokeRequest:
		m.ID = f(m.ID)
	case *pb.LeaseTimeToLiveRequest:
		m.ID = f(m.ID)
	case *pb.LeaseKeepAliveRequest:
		m.ID = f(m.ID)
	case *pb.PutRequest:
		m.Lease = f(m.Lease)
	case *pb.TxnRequest:
		for _, c := range m.Compare {
			if l, ok := c.TargetUnion.(*pb.Compare_Lease); ok {
				l.Lease = f(l.Lease)
			}
		}
		for _, op := range append(append([]*pb.RequestOp(nil), m.Success...), m.Failure...) {
			switch r := op.Request.(type) {
			case *pb.RequestOp_RequestPut:
				mapLeaseIDs(r.RequestPut, f)
			case *pb.RequestOp_RequestTxn:
				mapLeaseIDs(r.RequestTxn, f)
			}
		}
	case *pb.LeaseGrantResponse:
		m.ID = f(m.ID)
	case *pb.LeaseTimeToLiveResponse:
		m.ID = f(m.ID)
	case *pb.LeaseKeepAliveResponse:
		m.ID = f(m.ID)
	case *pb.LeaseLeasesResponse:
		for _, l := range m.Leases {
			l.ID = f(l.ID)
		}
	case *pb.RangeResponse:
		for _, kv := range m.Kvs {
			kv.Lease = f(kv.Lease)
		}
	case *pb.PutResponse:
		if m.PrevKv != nil {
			m.PrevKv.Lease = f(m.PrevKv.Lease)
		}
	case *pb.DeleteRangeResponse:
		for _, kv := range m.PrevKvs {
			kv.Lease = f(kv.Lease)
		}
	case *pb.TxnResponse:
		for _, r := range m.Responses {
			switch x := r.Response.(type) {
			case *pb.ResponseOp_ResponseRange:
				mapLeaseIDs(x.ResponseRange, f)
			case *pb.ResponseOp_ResponsePut:
				mapLeaseIDs(x.ResponsePut, f)
			case *pb.ResponseOp_ResponseDeleteRange:
				mapLeaseIDs(x.ResponseDeleteRange, f)
			case *pb.ResponseOp_ResponseTxn:
				mapLeaseIDs(x.ResponseTxn, f)
			}
		}
	}
}

// leaseSequences are run one per fresh pair of members.
var leaseSequences = []struct {
	name string
	run  func(e *leaseEnv)
}{
	{"grant", leaseGrantSeq},
	{"keys", leaseKeysSeq},
	{"keepalive", leaseKeepAliveSeq},
	{"keepalive at start", leaseKeepAliveAtStartSeq},
	{"expiry", leaseExpirySeq},
}

func TestLeaseDiff(t *testing.T) {
	for _, seq := range leaseSequences {
		t.Run(seq.name, func(t *testing.T) {
			t.Parallel()
			seq.run(newLeaseEnv(t))
		})
	}
}

// leaseGrantSeq covers LeaseGrant's ID and TTL rules, LeaseLeases and
// LeaseTimeToLive without keys, and revoking unknown leases. The minimum
// TTL of both members is 1 s (1.5 election timeouts of 100 ms, rounded up).
func leaseGrantSeq(e *leaseEnv) {
	e.do(leaseList())                  // no leases
	e.do(leaseGrant(1, 60))            // client-chosen ID
	e.do(leaseGrant(1, 60))            // duplicate ID
	e.do(leaseGrant(1, 30))            // duplicate ID, other TTL
	e.do(leaseGrant(2, 0))             // TTL raised to the minimum
	e.do(leaseTTL(2))                  // granted TTL is the raised one
	e.do(leaseRevoke(2))               // before it expires
	e.do(leaseGrant(3, -5))            // negative TTL: raised to the minimum
	e.do(leaseRevoke(3))               //
	e.do(leaseGrant(4, maxLeaseTTL))   // largest TTL
	e.do(leaseGrant(5, maxLeaseTTL+1)) // too large
	e.do(leaseTTL(5))                  // not granted: TTL -1
	e.do(leaseGrant(-7, 30))           // negative client-chosen ID
	e.grantAuto(autoLease(1), 30)      // server-chosen ID
	e.grantAuto(autoLease(2), 40)      //
	e.do(leaseGrant(autoLease(1), 5))  // the ID the server chose: duplicate
	e.do(leaseTTL(1))
	e.do(leaseTTL(4))
	e.do(leaseTTL(-7))
	e.do(leaseTTL(autoLease(1)))
	e.do(leaseTTLKeys(autoLease(2))) // no keys
	e.do(leaseTTL(999))              // unknown: TTL -1
	e.do(leaseTTL(0))                // no lease
	e.do(leaseTTLKeys(-1))           //
	// etcd lists leases by expiry: -7 and auto 1 (30 s), auto 2 (40 s), 1 (60 s), 4.
	e.do(leaseList())
	e.do(leaseRevoke(999)) // unknown
	e.do(leaseRevoke(0))   // no lease
	e.do(leaseRevoke(-7))
	e.do(leaseRevoke(-7)) // already revoked
	e.do(leaseRevoke(autoLease(1)))
	e.do(leaseTTL(autoLease(1)))
	e.do(leaseList())
	e.do(leaseGrant(-7, 20)) // a revoked ID may be granted again
	e.do(leaseTTL(-7))
}

// leaseKeysSeq covers keys attached to leases: Put and Txn with a lease,
// moving a key to another lease, IgnoreLease, detaching by put and delete,
// LeaseTimeToLive with keys, and revoke deleting the keys in one revision.
func leaseKeysSeq(e *leaseEnv) {
	a := autoLease(1)
	e.do(leaseGrant(10, 60))
	e.grantAuto(a, 60)
	e.do(putLease("k1", "v1", 10))                                                // rev 2
	e.do(putLease("k2", "v2", 10))                                                // rev 3
	e.do(putLease("k3", "v3", a))                                                 // rev 4
	e.do(putLease("k4", "v4", 999))                                               // lease not found
	e.do(txn(nil, ops(putLease("k5", "v5", 10), putLease("k6", "v6", 999)), nil)) // lease not found: nothing written
	e.do(txn(nil, ops(putLease("k5", "v5", 10), putLease("k6", "v6", a)), nil))   // rev 5
	e.do(put("k7", "v7"))                                                         // rev 6, no lease
	e.do(all())
	// Keys only: etcd 3.7 serves these from its index, without the lease
	// (etcd 3.6 sent it), except when sorting by value, which reads the
	// values and keeps the lease.
	keysOnly := func(r *pb.RangeRequest) *pb.RangeRequest { r.KeysOnly = true; return r }
	for _, r := range []*pb.RangeRequest{
		keysOnly(all()),
		keysOnly(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Limit: 2, SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_DESCEND}),
		keysOnly(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Revision: 4, Serializable: true}),
		keysOnly(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), SortTarget: pb.RangeRequest_VALUE}),
		keysOnly(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND, Limit: 3}),
	} {
		e.do(r)
		e.do(txn(nil, ops(r), nil))
	}
	e.do(leaseTTLKeys(10))
	e.do(leaseTTLKeys(a))
	e.do(&pb.PutRequest{Key: []byte("k1"), Value: []byte("v1b"), Lease: a, PrevKv: true}) // rev 7: k1 moves to a
	e.do(&pb.PutRequest{Key: []byte("k2"), Value: []byte("v2b"), IgnoreLease: true})      // rev 8: k2 stays on 10
	e.do(leaseTTLKeys(10))
	e.do(leaseTTLKeys(a))
	e.do(txn(cmps(cmpLease("k1", eq, a), cmpLease("k2", eq, 10), cmpLease("k7", eq, 0)), ops(get("k1")), ops(get("k2"))))
	e.do(txn(cmps(cmpLease("k1", eq, 10)), ops(get("k1")), ops(get("k2"))))
	e.do(put("k2", "v2c"))                                        // rev 9: k2 leaves 10
	e.do(&pb.DeleteRangeRequest{Key: []byte("k5"), PrevKv: true}) // rev 10: k5 leaves 10
	e.do(leaseTTLKeys(10))                                        // no keys left
	e.do(leaseRevoke(10))                                         // nothing to delete: revision stays 10
	e.do(get("k2"))
	e.do(leaseRevoke(a)) // rev 11: k1, k3 and k6 deleted together
	e.do(all())
	e.do(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Revision: 10})
	e.do(leaseTTLKeys(a))
	e.do(putLease("k8", "v8", a)) // revoked: not found
	e.do(leaseList())
}

// leaseKeepAliveSeq covers the LeaseKeepAlive stream: the granted TTL for
// a live lease, TTL 0 for an unknown or revoked one.
func leaseKeepAliveSeq(e *leaseEnv) {
	a := autoLease(1)
	e.do(leaseGrant(20, 30))
	e.grantAuto(a, 5)
	e.do(putLease("ka", "1", a))
	e.keepAlive(20, a, 999, 0, -3, 20)
	e.do(leaseTTL(a)) // renewed: about 5 s left
	e.do(leaseTTLKeys(20))
	e.do(leaseRevoke(20))
	e.keepAlive(20, a)
	e.do(leaseTTL(20))
	e.do(leaseList())
}

// leaseKeepAliveAtStartSeq renews a lease just after the member started.
func leaseKeepAliveAtStartSeq(e *leaseEnv) {
	e.do(leaseGrant(21, 30))
	e.keepAlive(21)
}

// leaseExpirySeq lets a 2 s lease expire: its keys are deleted in one
// revision, and the lease is gone from every request.
func leaseExpirySeq(e *leaseEnv) {
	e.do(leaseGrant(30, 2))
	e.do(leaseGrant(31, 60))
	e.do(putLease("e1", "1", 30)) // rev 2
	e.do(putLease("e2", "2", 30)) // rev 3
	e.do(putLease("e3", "3", 31)) // rev 4
	e.do(put("e4", "4"))          // rev 5
	e.do(leaseTTLKeys(30))
	e.awaitExpired(30, 10*time.Second)
	e.do(all()) // rev 6: e1 and e2 deleted together
	e.do(&pb.RangeRequest{Key: []byte("e"), RangeEnd: []byte("f"), Revision: 5})
	e.do(&pb.RangeRequest{Key: []byte("e"), RangeEnd: []byte("f"), Revision: 6})
	e.do(&pb.RangeRequest{Key: []byte("e"), RangeEnd: []byte("f"), Revision: 7}) // future revision
	e.do(leaseTTLKeys(30))
	e.do(leaseList())
	e.keepAlive(30, 31)
	e.do(leaseRevoke(30))
	e.do(putLease("e5", "5", 30))
	e.do(leaseTTLKeys(31))
}
