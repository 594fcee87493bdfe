package compat

// Seeded random KV differential test.
//
// What it proves: for a few fixed seeds, a random sequence of ~200 KV
// requests (put, delete, range, txn, compact) over a small key space, with
// random options (prev_kv, ignore_value, limits, sorts, filters, past and
// compacted revisions, serializable reads, compares on every target, nested
// txns) gets the same answers from a fresh Cairn member and a fresh etcd
// member, compared as in kv_diff_test.go. Odd seeds use letter keys, even
// seeds keys with 0x00 and 0xff bytes. At the end, every revision still
// held is read back whole, so the histories match as well as the answers.
//
// Two request shapes crash etcd v3.6.16 itself and are steered around (see
// randomKV.unsafe and randomKV.txn); Cairn's answers to them are not
// compared, since there is no oracle.
//
// The sequence stops at its first mismatch, since later answers may differ
// only because of it. The failure names the seed and the step; the
// requests are a pure function of the seed and etcd's answers, so a run
// with -run 'TestKVRandomDiff/seed=N' replays it.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// randomSeeds and randomSteps keep the default run short. For a longer
// search set CAIRN_COMPAT_SEEDS and CAIRN_COMPAT_STEPS (seeds 1..N).
var (
	randomSeeds = envInt("CAIRN_COMPAT_SEEDS", 6)
	randomSteps = envInt("CAIRN_COMPAT_STEPS", 200)
)

func TestKVRandomDiff(t *testing.T) {
	for seed := uint64(1); seed <= uint64(randomSeeds); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			c := newChecker(t)
			g := &randomKV{r: rand.New(rand.NewPCG(seed, 0x5eed)), rev: 1, keys: letterKeys}
			if seed%2 == 0 {
				g.keys = binaryKeys
			}
			for range randomSteps {
				req := g.next()
				e, ok := c.do(req)
				if !ok {
					t.Fatalf("seed %d: stopped at step %d, the first mismatch", seed, c.step)
				}
				g.observe(req, e)
			}
			for rev := max(g.compacted, 1); rev <= g.rev; rev++ {
				if _, ok := c.do(&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: rev}); !ok {
					t.Fatalf("seed %d: histories differ at revision %d", seed, rev)
				}
			}
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// letterKeys is the key space of odd seeds; even seeds use binaryKeys.
var letterKeys = []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}

// randomKV generates requests over a small key space and values v0..v3
// (few values, so that sorting by value has ties). It tracks the current and
// compacted revisions from etcd's answers to aim reads at revisions that
// exist, are compacted or are in the future.
type randomKV struct {
	r         *rand.Rand
	keys      []string
	rev       int64 // current revision
	compacted int64 // last successful compaction revision (0: none)
	// unsafe holds revisions etcd v3.6.16 cannot be compacted at: those
	// of a txn that deleted a key and put it again. etcd's checkIntervals
	// lets a delete whose range_end is "\x00" overlap a put, and compacting
	// at exactly that revision drops the put from etcd's backend while its
	// index keeps it; the next read of the key is a fatal error
	// (etcd-io/etcd#22376). Cairn keeps the value. Compacting one revision
	// later is safe, so the generator only avoids these exact revisions.
	unsafe map[int64]bool
}

func (g *randomKV) observe(req any, e outcome) {
	if e.err != nil {
		return
	}
	switch r := e.resp.(type) {
	case *pb.RangeResponse:
		g.rev = r.Header.Revision
	case *pb.PutResponse:
		g.rev = r.Header.Revision
	case *pb.DeleteRangeResponse:
		g.rev = r.Header.Revision
	case *pb.TxnResponse:
		if r.Header.Revision > g.rev && deletesFromKeyAndPuts(req.(*pb.TxnRequest)) {
			if g.unsafe == nil {
				g.unsafe = map[int64]bool{}
			}
			g.unsafe[r.Header.Revision] = true
		}
		g.rev = r.Header.Revision
	case *pb.CompactionResponse:
		g.rev = r.Header.Revision
		g.compacted = req.(*pb.CompactionRequest).Revision
	}
}

func (g *randomKV) next() any {
	switch n := g.r.IntN(100); {
	case n < 30:
		return g.put()
	case n < 42:
		return g.del()
	case n < 72:
		return g.rangeReq()
	case n < 95:
		return g.txn(0)
	default:
		return g.compact()
	}
}

func (g *randomKV) chance(percent int) bool { return g.r.IntN(100) < percent }

func (g *randomKV) key() string   { return g.keys[g.r.IntN(len(g.keys))] }
func (g *randomKV) value() string { return fmt.Sprintf("v%d", g.r.IntN(4)) }

// span returns a key and range end: one key, [ki, kj) possibly empty or
// reversed, the prefix of a key, from a key on, or every key.
func (g *randomKV) span() (key, end []byte) {
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
func (g *randomKV) revision() int64 {
	if !g.chance(30) {
		return 0
	}
	lo := max(g.compacted-1, 1)
	return lo + g.r.Int64N(g.rev+2-lo)
}

func (g *randomKV) put() *pb.PutRequest {
	r := &pb.PutRequest{Key: []byte(g.key()), Value: []byte(g.value()), PrevKv: g.chance(50)}
	if g.chance(5) {
		r.IgnoreValue, r.Value = true, nil
	}
	if g.chance(5) {
		r.IgnoreLease = true
	}
	return r
}

func (g *randomKV) del() *pb.DeleteRangeRequest {
	key, end := g.span()
	return &pb.DeleteRangeRequest{Key: key, RangeEnd: end, PrevKv: g.chance(50)}
}

func (g *randomKV) rangeReq() *pb.RangeRequest {
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
		pick := func() int64 { return g.r.Int64N(g.rev + 1) }
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

func (g *randomKV) compare() *pb.Compare {
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
		c.Target, c.TargetUnion = pb.Compare_CREATE, &pb.Compare_CreateRevision{CreateRevision: g.r.Int64N(g.rev + 1)}
	case 3:
		c.Target, c.TargetUnion = pb.Compare_MOD, &pb.Compare_ModRevision{ModRevision: g.r.Int64N(g.rev + 1)}
	default:
		c.Target, c.TargetUnion = pb.Compare_LEASE, &pb.Compare_Lease{Lease: 0}
	}
	return c
}

// txn builds a txn of up to two compares and up to three ops per branch;
// depth limits nesting. Ops may overlap, so some txns are rejected as
// duplicate keys, as they must be by both members.
func (g *randomKV) txn(depth int) *pb.TxnRequest {
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
		// key, and etcd v3.6.16 then panics applying the txn. Avoid it.
		walkOps(t, func(o *pb.RequestOp) {
			if p, ok := o.Request.(*pb.RequestOp_RequestPut); ok && (p.RequestPut.IgnoreValue || p.RequestPut.IgnoreLease) {
				p.RequestPut.IgnoreValue, p.RequestPut.IgnoreLease = false, false
				p.RequestPut.Value = []byte(g.value())
			}
		})
	}
	return t
}

func (g *randomKV) compact() any {
	rev := g.compacted + g.r.Int64N(g.rev+1-g.compacted)
	if g.chance(10) {
		rev = g.rev + 1
	}
	if g.unsafe[rev] {
		return g.rangeReq()
	}
	return &pb.CompactionRequest{Revision: rev, Physical: g.chance(50)}
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
