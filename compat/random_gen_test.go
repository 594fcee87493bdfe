package compat

// The seeded generator of the random differential test (random_test.go).
//
// A generator makes one step at a time: a KV request (put, delete, range,
// txn, compaction), a Lease request (grant, revoke, time-to-live, leases,
// one keep-alive) or a watch step (open a watcher on one of a few streams,
// cancel one). Steps aim at what exists: keys of a small key space, so
// that requests collide; revisions around the current and the compacted
// ones; client-chosen lease IDs from a small pool; watch IDs the streams
// hold. The generator reads the members' state, as etcd reported it, from
// the diffRun it feeds, so the steps are a function of the seed and etcd's
// answers: a seed replays as long as etcd answers the same.
//
// Some steps are left out on purpose:
//
//   - lease TTLs are long (at least 1000 s), so no lease expires during a
//     sequence: an expiry deletes keys at a moment timers choose;
//   - leases get client-chosen IDs, so that they compare directly;
//   - no progress requests or progress notifications, which depend on
//     timers (watch_diff_test.go covers them); the runner does send
//     progress requests of its own, as barriers (see diffRun.barrier),
//     and does not compare their answers;
//   - a watcher starts at most one revision past the current one;
//   - two request shapes that crash etcd itself (v3.6.16, and still
//     v3.7.4) are steered around (see diffRun.unsafe and generator.txn);
//     Cairn's answers to them are checked in regressions_test.go instead.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// steerKnown makes the generator steer around known divergences (each
// marked DIVERGENCE where it steers, with a skipped case in
// regressions_test.go), so that the random test looks for new ones.
// CAIRN_COMPAT_STRICT=1 turns it off. None is known today: the two the
// generator found (a lone put's lease-before-key check, prev_kv of a delete
// after a put in one txn) are fixed and their cases run.
var steerKnown = os.Getenv("CAIRN_COMPAT_STRICT") == ""

// Key spaces: seeds take them in turn (seed % 3).
var (
	// letterKeys are plain keys.
	letterKeys = []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}
	// pathKeys nest, so that prefixes hold several keys.
	pathKeys = []string{"a", "a/", "a/b", "a/b/c", "a/c", "ab", "b", "b/a"}
	// binaryGenKeys hold 0x00 and 0xff bytes, which an ordered on-disk
	// encoding of keys must escape.
	binaryGenKeys = []string{"\x00", "\x00\x00", "\x00\xff", "\x01", "a\x00", "a\xff", "\xff", "\xff\xff"}
)

func keySpace(seed uint64) []string {
	return [][]string{binaryGenKeys, letterKeys, pathKeys}[seed%3]
}

// leasePool holds the client-chosen lease IDs steps use; unknownLease is
// never granted.
var leasePool = []int64{1, 2, 3, 4}

const unknownLease = 99

// maxStreams is how many watch streams a sequence opens at most (the
// runner may open more; see diffRun.watchOpen).
const maxStreams = 3

// generator makes the steps of one seed.
type generator struct {
	r    *rand.Rand
	keys []string
	st   *diffRun // read only: the state etcd reported
}

func newGenerator(seed uint64, st *diffRun) *generator {
	return &generator{r: rand.New(rand.NewPCG(seed, 0x5eed)), keys: keySpace(seed), st: st}
}

// next returns the next step.
func (g *generator) next() any {
	switch n := g.r.IntN(100); {
	case n < 22:
		return g.topPut()
	case n < 30:
		return g.del()
	case n < 50:
		return g.rangeReq()
	case n < 70:
		return g.txn(0)
	case n < 74:
		return g.compact()
	case n < 78:
		return g.leaseGrant()
	case n < 81:
		return &pb.LeaseRevokeRequest{ID: g.leaseID()}
	case n < 84:
		return &pb.LeaseTimeToLiveRequest{ID: g.leaseID(), Keys: g.chance(50)}
	case n < 85:
		return &pb.LeaseLeasesRequest{}
	case n < 87:
		return &pb.LeaseKeepAliveRequest{ID: g.leaseID()}
	case n < 95:
		return g.watchOpen()
	default:
		return g.watchCancel()
	}
}

func (g *generator) chance(percent int) bool { return g.r.IntN(100) < percent }

func (g *generator) key() string   { return g.keys[g.r.IntN(len(g.keys))] }
func (g *generator) value() string { return fmt.Sprintf("v%d", g.r.IntN(4)) }

// span returns a key and range end: one key, [ki, kj) possibly empty or
// reversed, the prefix of a key, from a key on, or every key.
func (g *generator) span() (key, end []byte) {
	switch n := g.r.IntN(100); {
	case n < 35:
		return []byte(g.key()), nil
	case n < 70:
		return []byte(g.key()), []byte(g.key())
	case n < 80:
		k := g.key()
		return []byte(k), []byte(prefixEnd(k))
	case n < 90:
		return []byte(g.key()), []byte("\x00")
	default:
		return []byte("\x00"), []byte("\x00")
	}
}

// revision returns a read revision: mostly 0 (current), else anything from
// just below the compaction point to just past the current revision.
func (g *generator) revision() int64 {
	if !g.chance(30) {
		return 0
	}
	lo := max(g.st.compacted-1, 1)
	return lo + g.r.Int64N(g.st.rev+2-lo)
}

// leaseID is mostly one of the pool, sometimes one never granted.
func (g *generator) leaseID() int64 {
	if g.chance(90) {
		return leasePool[g.r.IntN(len(leasePool))]
	}
	return unknownLease
}

func (g *generator) put() *pb.PutRequest {
	r := &pb.PutRequest{Key: []byte(g.key()), Value: []byte(g.value()), PrevKv: g.chance(50)}
	if g.chance(25) {
		r.Lease = g.leaseID()
	}
	if g.chance(5) {
		r.IgnoreValue, r.Value = true, nil
	}
	if g.chance(5) {
		r.IgnoreLease = true
	}
	return r
}

// topPut is a put on its own, outside a txn.
func (g *generator) topPut() *pb.PutRequest {
	return g.put()
}

func (g *generator) del() *pb.DeleteRangeRequest {
	key, end := g.span()
	return &pb.DeleteRangeRequest{Key: key, RangeEnd: end, PrevKv: g.chance(50)}
}

func (g *generator) rangeReq() *pb.RangeRequest {
	key, end := g.span()
	r := &pb.RangeRequest{Key: key, RangeEnd: end, Revision: g.revision(), Serializable: g.chance(20)}
	if g.chance(50) {
		r.Limit = g.r.Int64N(5)
	}
	if g.chance(40) {
		r.SortTarget = sortTargets[g.r.IntN(len(sortTargets))]
		r.SortOrder = sortOrders[g.r.IntN(len(sortOrders))]
	}
	r.KeysOnly = g.chance(10)
	r.CountOnly = g.chance(10)
	if g.chance(15) {
		pick := func() int64 { return g.r.Int64N(g.st.rev + 1) }
		switch g.r.IntN(4) {
		case 0:
			r.MinModRevision = pick()
		case 1:
			r.MaxModRevision = pick()
		case 2:
			r.MinCreateRevision = pick()
		default:
			r.MinModRevision, r.MaxCreateRevision = pick(), pick()
		}
	}
	return r
}

func (g *generator) compare() *pb.Compare {
	c := &pb.Compare{Key: []byte(g.key()), Result: pb.Compare_CompareResult(g.r.IntN(4))}
	if g.chance(10) {
		c.RangeEnd = []byte(prefixEnd(string(c.Key)))
	}
	switch g.r.IntN(5) {
	case 0:
		c.Target, c.TargetUnion = pb.Compare_VALUE, &pb.Compare_Value{Value: []byte(g.value())}
	case 1:
		c.Target, c.TargetUnion = pb.Compare_VERSION, &pb.Compare_Version{Version: g.r.Int64N(4)}
	case 2:
		c.Target, c.TargetUnion = pb.Compare_CREATE, &pb.Compare_CreateRevision{CreateRevision: g.r.Int64N(g.st.rev + 1)}
	case 3:
		c.Target, c.TargetUnion = pb.Compare_MOD, &pb.Compare_ModRevision{ModRevision: g.r.Int64N(g.st.rev + 1)}
	default:
		var id int64
		if g.chance(70) {
			id = g.leaseID()
		}
		c.Target, c.TargetUnion = pb.Compare_LEASE, &pb.Compare_Lease{Lease: id}
	}
	return c
}

// txn builds a txn of up to two compares and up to three ops per branch;
// depth limits nesting. Ops may overlap, so some txns are rejected as
// duplicate keys, as they must be by both members.
func (g *generator) txn(depth int) *pb.TxnRequest {
	t := &pb.TxnRequest{}
	for range g.r.IntN(3) {
		t.Compare = append(t.Compare, g.compare())
	}
	branch := func() []*pb.RequestOp {
		var out []*pb.RequestOp
		for range g.r.IntN(4) {
			switch n := g.r.IntN(100); {
			case n < 35:
				out = append(out, op(g.put()))
			case n < 50:
				out = append(out, op(g.del()))
			case n < 90 || depth >= 2:
				out = append(out, op(g.rangeReq()))
			default:
				out = append(out, op(g.txn(depth+1)))
			}
		}
		return out
	}
	t.Success, t.Failure = branch(), branch()
	if depth == 0 && hasFromKeyDelete(t) {
		// etcd checks ignore_value and ignore_lease against the store before
		// the txn runs; a from-key delete earlier in the txn can remove the
		// key, and etcd (v3.6.16, v3.7.4) then panics applying the txn. Avoid it (see
		// TestCairnOnlyRegressions for Cairn's answer).
		walkOps(t, func(o *pb.RequestOp) {
			if p, ok := o.Request.(*pb.RequestOp_RequestPut); ok && (p.RequestPut.IgnoreValue || p.RequestPut.IgnoreLease) {
				p.RequestPut.IgnoreValue, p.RequestPut.IgnoreLease = false, false
				p.RequestPut.Value = []byte(g.value())
			}
		})
	}
	return t
}

func (g *generator) compact() any {
	rev := g.st.compacted + g.r.Int64N(g.st.rev+1-g.st.compacted)
	if g.chance(10) {
		rev = g.st.rev + 1
	}
	if g.st.unsafe[rev] {
		return g.rangeReq()
	}
	return &pb.CompactionRequest{Revision: rev, Physical: g.chance(50)}
}

// leaseGrant grants a pool lease (perhaps one already granted) with a long
// TTL; rarely one too long.
func (g *generator) leaseGrant() *pb.LeaseGrantRequest {
	ttl := int64(1000 * (1 + g.r.IntN(3)))
	if g.chance(3) {
		ttl = maxLeaseTTL + 1
	}
	return &pb.LeaseGrantRequest{ID: leasePool[g.r.IntN(len(leasePool))], TTL: ttl}
}

// watchOpen opens a watcher over a span, from the next revision, from one
// in the past (perhaps compacted) or, rarely, from a negative one (a
// refusal), with random options.
func (g *generator) watchOpen() any {
	key, end := g.span()
	cr := &pb.WatchCreateRequest{Key: key, RangeEnd: end}
	switch n := g.r.IntN(100); {
	case n < 40: // 0: from the next revision
	case n < 50:
		cr.StartRevision = g.st.rev + 1
	case n < 52:
		cr.StartRevision = -1
	default:
		lo := max(g.st.compacted-1, 1)
		cr.StartRevision = lo + g.r.Int64N(g.st.rev+1-lo)
	}
	cr.PrevKv = g.chance(40)
	if g.chance(20) {
		for _, f := range []pb.WatchCreateRequest_FilterType{noPut, noDelete} {
			if g.chance(50) {
				cr.Filters = append(cr.Filters, f)
			}
		}
	}
	// No progress_notify: etcd keeps its interval in a process-wide
	// variable that other tests set to 200 ms (see cluster.Options).
	// Fragment splits nothing this small, but must be accepted.
	cr.Fragment = g.chance(10)
	if g.chance(10) {
		cr.WatchId = []int64{1, 2, 3, 100}[g.r.IntN(4)]
	}
	stream := g.r.IntN(min(len(g.st.streams)+1, maxStreams))
	return watchOpen{stream: stream, req: cr}
}

// watchCancel cancels a watcher a stream holds; sometimes an ID no
// watcher has.
func (g *generator) watchCancel() any {
	var live []watchCancel
	for i, s := range g.st.streams {
		for _, id := range s.ids() {
			live = append(live, watchCancel{stream: i, id: id})
		}
	}
	if len(live) == 0 || g.chance(10) {
		if len(g.st.streams) == 0 {
			return g.rangeReq()
		}
		return watchCancel{stream: g.r.IntN(len(g.st.streams)), id: 77}
	}
	return live[g.r.IntN(len(live))]
}

// deletesFromKeyAndPuts reports whether t, at any depth, holds both a
// delete with range_end "\x00" and a put.
func deletesFromKeyAndPuts(t *pb.TxnRequest) bool {
	put := false
	walkOps(t, func(o *pb.RequestOp) {
		_, ok := o.Request.(*pb.RequestOp_RequestPut)
		put = put || ok
	})
	return put && hasFromKeyDelete(t)
}

// hasFromKeyDelete reports whether t, at any depth, deletes from a key on.
func hasFromKeyDelete(t *pb.TxnRequest) bool {
	found := false
	walkOps(t, func(o *pb.RequestOp) {
		if d, ok := o.Request.(*pb.RequestOp_RequestDeleteRange); ok {
			found = found || bytes.Equal(d.RequestDeleteRange.RangeEnd, []byte{0})
		}
	})
	return found
}

// walkOps calls f on every op of t, nested txns included.
func walkOps(t *pb.TxnRequest, f func(*pb.RequestOp)) {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, o := range ops {
			f(o)
			if n, ok := o.Request.(*pb.RequestOp_RequestTxn); ok {
				walkOps(n.RequestTxn, f)
			}
		}
	}
}
