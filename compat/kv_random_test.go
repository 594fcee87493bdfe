package compat

// Seeded random KV differential test.
//
// What it proves: for a few fixed seeds, a random sequence of ~200 KV
// requests (put, delete, range, txn, compact) over a small key space, with
// random options (prev_kv, ignore_value, limits, sorts, filters, past and
// compacted revisions, serializable reads, compares on every target, nested
// txns) gets the same answers from a fresh Cairn member and a fresh etcd
// member, compared as in kv_diff_test.go. At the end, every revision still
// held is read back whole, so the histories match as well as the answers.
//
// The sequence stops at its first mismatch, since later answers may differ
// only because of it. The failure names the seed and the step; the
// requests are a pure function of the seed and etcd's answers, so a run
// with -run 'TestKVRandomDiff/seed=N' replays it.

import (
	"fmt"
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

const randomSteps = 200

func TestKVRandomDiff(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4, 5, 6} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			c := newChecker(t)
			g := &randomKV{r: rand.New(rand.NewPCG(seed, 0x5eed)), rev: 1}
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

// randomKV generates requests over keys k0..k7 and values v0..v3 (few
// values, so that sorting by value has ties). It tracks the current and
// compacted revisions from etcd's answers to aim reads at revisions that
// exist, are compacted or are in the future.
type randomKV struct {
	r         *rand.Rand
	rev       int64 // current revision
	compacted int64 // last successful compaction revision (0: none)
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

func (g *randomKV) key() string   { return fmt.Sprintf("k%d", g.r.IntN(8)) }
func (g *randomKV) value() string { return fmt.Sprintf("v%d", g.r.IntN(4)) }

// span returns a key and range end: one key, [ki, kj) possibly empty or
// reversed, the prefix "k", from a key on, or every key.
func (g *randomKV) span() (key, end []byte) {
	switch n := g.r.IntN(100); {
	case n < 35:
		return []byte(g.key()), nil
	case n < 70:
		return []byte(g.key()), []byte(g.key())
	case n < 80:
		return []byte("k"), []byte(prefixEnd("k"))
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
		c.Key, c.RangeEnd = []byte("k"), []byte(prefixEnd("k"))
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
	return t
}

func (g *randomKV) compact() *pb.CompactionRequest {
	rev := g.compacted + g.r.Int64N(g.rev+1-g.compacted)
	if g.chance(10) {
		rev = g.rev + 1
	}
	return &pb.CompactionRequest{Revision: rev, Physical: g.chance(50)}
}
