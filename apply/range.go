package apply

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"math"
	"math/bits"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-kv/cairn/mvcc"
)

// Range serves a RangeRequest from rv with etcd's rules for limit, filters,
// sorting and keys_only (etcd's rpc.proto RangeRequest; etcd 3.7's
// server/etcdserver/txn/range.go for the order of limit, filter and sort).
//
// Memory is bounded by the response, not by the range: one scan visits
// every key (count is the number of keys in the range, regardless of limit
// and filters, as etcd's), filters run on the scan's uncopied key-values,
// and only what can end up in the response is copied. Key-descending reads
// scan in reverse; other sorts with a limit keep the best `limit` entries
// in a heap. Values are never copied for keys-only or count-only reads.
//
// Sorting ties: etcd sorts every match with sort.Sort and cuts to the
// limit. When the matches fit in the limit, Cairn sorts the same list with
// the same comparator, so the order is etcd's. When they do not, ties are
// broken by key, ascending; etcd's order then depends on sort.Sort's
// algorithm (the same for up to 12 matches, where it is an insertion sort).
func Range(ctx context.Context, rv ReadView, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	q := rangeQuery{r: r, end: gteRange(r.RangeEnd)}
	q.order, q.target = r.SortOrder, r.SortTarget
	if q.target != pb.RangeRequest_KEY && q.order == pb.RangeRequest_NONE {
		q.order = pb.RangeRequest_ASCEND
	}
	// etcd 3.7 serves keys_only from its index (FastKeysOnly), which knows
	// neither values nor leases, unless it sorts by value.
	q.fastKeysOnly = r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE
	var (
		rev  int64
		kvs  []*mvccpb.KeyValue
		more bool
		err  error
	)
	count := 0
	switch {
	case r.CountOnly:
		rev, err = rv.Scan(ctx, r.Key, q.end, mvcc.ScanOptions{Rev: r.Revision}, func(*mvcc.KeyValueRef) bool {
			count++
			return true
		})
	case isDefaultOrdering(q.target, q.order) || (q.target == pb.RangeRequest_KEY && q.order == pb.RangeRequest_DESCEND):
		rev, kvs, more, count, err = q.inKeyOrder(ctx, rv)
	case r.SortOrder == pb.RangeRequest_NONE && !hasRevisionFilters(r) && r.Limit > 0:
		// etcd cuts before it sorts here (its limit applies unless the
		// request's own order is not the default): the first limit+1
		// keys, sorted by the target, then cut to limit.
		rev, kvs, count, err = q.collect(ctx, rv, r.Limit+1)
		if err == nil {
			sortKVs(kvs, q.order, q.target)
			if int64(len(kvs)) > r.Limit {
				kvs, more = kvs[:r.Limit], true
			}
		}
	case r.Limit <= 0:
		// Unlimited: the response is every match; sort it in place.
		rev, kvs, count, err = q.collect(ctx, rv, math.MaxInt64)
		if err == nil {
			sortKVs(kvs, q.order, q.target)
		}
	default:
		rev, kvs, more, count, err = q.top(ctx, rv)
	}
	if err != nil {
		return nil, err
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	if kvs == nil {
		kvs = []*mvccpb.KeyValue{}
	}
	return &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rev}, Kvs: kvs, More: more, Count: int64(count)}, nil
}

// rangeQuery is one Range being served.
type rangeQuery struct {
	r            *pb.RangeRequest
	end          []byte
	order        pb.RangeRequest_SortOrder // NONE with a non-key target made ASCEND, as etcd
	target       pb.RangeRequest_SortTarget
	fastKeysOnly bool
	scratch      mvccpb.KeyValue // a candidate aliasing storage, for comparisons
}

// keep tells whether kv passes the request's revision filters.
func (q *rangeQuery) keep(kv *mvcc.KeyValueRef) bool {
	r := q.r
	return (r.MaxModRevision == 0 || kv.ModRevision <= r.MaxModRevision) &&
		(r.MinModRevision == 0 || kv.ModRevision >= r.MinModRevision) &&
		(r.MaxCreateRevision == 0 || kv.CreateRevision <= r.MaxCreateRevision) &&
		(r.MinCreateRevision == 0 || kv.CreateRevision >= r.MinCreateRevision)
}

// clone copies kv for the response.
func (q *rangeQuery) clone(kv *mvcc.KeyValueRef) *mvccpb.KeyValue {
	out := kv.Clone(q.fastKeysOnly)
	if q.fastKeysOnly {
		out.Lease = 0
	}
	return out
}

// cloneInto copies kv over dst, reusing dst's key and value buffers.
func (q *rangeQuery) cloneInto(dst *mvccpb.KeyValue, kv *mvcc.KeyValueRef) {
	dst.Key = append(dst.Key[:0], kv.Key...)
	dst.CreateRevision, dst.ModRevision, dst.Version = kv.CreateRevision, kv.ModRevision, kv.Version
	if q.fastKeysOnly {
		dst.Lease, dst.Value = 0, nil
		return
	}
	// Into dst's own value buffer: clearing it first made every eviction
	// allocate a value (8.8 MB of garbage per read of the rangemem
	// measurement, 1 KiB values, ties in the top 11).
	dst.Lease = kv.Lease
	dst.Value = append(dst.Value[:0], kv.Value...)
}

// inKeyOrder serves key-ascending and key-descending reads: one scan in
// that direction copies the first limit matches, and only counts the rest.
func (q *rangeQuery) inKeyOrder(ctx context.Context, rv ReadView) (rev int64, kvs []*mvccpb.KeyValue, more bool, count int, err error) {
	limit := q.r.Limit
	if limit <= 0 {
		limit = math.MaxInt64
	}
	so := mvcc.ScanOptions{Rev: q.r.Revision, Reverse: q.order == pb.RangeRequest_DESCEND}
	rev, err = rv.Scan(ctx, q.r.Key, q.end, so, func(kv *mvcc.KeyValueRef) bool {
		count++
		if !q.keep(kv) {
			return true
		}
		if int64(len(kvs)) < limit {
			kvs = append(kvs, q.clone(kv))
		} else {
			more = true
		}
		return true
	})
	return rev, kvs, more, count, err
}

// collect copies up to limit matches in key order.
func (q *rangeQuery) collect(ctx context.Context, rv ReadView, limit int64) (rev int64, kvs []*mvccpb.KeyValue, count int, err error) {
	rev, err = rv.Scan(ctx, q.r.Key, q.end, mvcc.ScanOptions{Rev: q.r.Revision}, func(kv *mvcc.KeyValueRef) bool {
		count++
		if q.keep(kv) && int64(len(kvs)) < limit {
			kvs = append(kvs, q.clone(kv))
		}
		return true
	})
	return rev, kvs, count, err
}

// top serves a sorted read with a limit: a heap keeps the best limit+1
// matches seen so far, so memory is the response's, whatever the range.
// When ties make the answer depend on the sort algorithm, exactTop
// reproduces etcd's.
func (q *rangeQuery) top(ctx context.Context, rv ReadView) (rev int64, kvs []*mvccpb.KeyValue, more bool, count int, err error) {
	h := &topHeap{q: q}
	limit := int(min(q.r.Limit, math.MaxInt32-1))
	keep := limit + 1 // one more, to see a tie at the cut
	matches := 0
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64) // of the numeric targets
	rev, err = rv.Scan(ctx, q.r.Key, q.end, mvcc.ScanOptions{Rev: q.r.Revision}, func(kv *mvcc.KeyValueRef) bool {
		count++
		if !q.keep(kv) {
			return true
		}
		matches++
		t := q.numTarget(kv)
		lo, hi = min(lo, t), max(hi, t)
		if len(h.entries) < keep {
			heap.Push(h, topEntry{kv: q.clone(kv), seq: matches})
			return true
		}
		// Compare before copying: the candidate comes after every kept
		// entry in key order, so it wins only if strictly better.
		q.scratch = mvccpb.KeyValue{Key: kv.Key, CreateRevision: kv.CreateRevision,
			ModRevision: kv.ModRevision, Version: kv.Version, Value: kv.Value}
		if q.before(&q.scratch, h.entries[0].kv) {
			// The evicted entry's buffers take the candidate: a scan
			// that keeps finding better entries makes no garbage.
			q.cloneInto(h.entries[0].kv, kv)
			h.entries[0].seq = matches
			heap.Fix(h, 0)
		}
		return true
	})
	if err != nil {
		return rev, nil, false, 0, err
	}
	if matches <= limit {
		// Every match is here: put them back in key order and sort them
		// as etcd does, so ties come out in etcd's order.
		sort.Slice(h.entries, func(i, j int) bool { return h.entries[i].seq < h.entries[j].seq })
		kvs = make([]*mvccpb.KeyValue, len(h.entries))
		for i, e := range h.entries {
			kvs[i] = e.kv
		}
		sortKVs(kvs, q.order, q.target)
		return rev, kvs, false, count, nil
	}
	sort.Slice(h.entries, func(i, j int) bool { return h.Less(j, i) })
	for i := 1; i < len(h.entries); i++ {
		if !q.before(h.entries[i-1].kv, h.entries[i].kv) && matches < math.MaxInt32 {
			// A tie among the best limit+1: which of the tied keys
			// etcd returns, and in which order, is sort.Sort's choice.
			// (Past 2^31 matches, ties stay in key order.)
			kvs, err = q.exactTop(ctx, rv, limit, matches, lo, hi)
			return rev, kvs, true, count, err
		}
	}
	kvs = make([]*mvccpb.KeyValue, limit)
	for i := range kvs {
		kvs[i] = h.entries[i].kv
	}
	return rev, kvs, true, count, nil
}

// exactTop answers as etcd's sort.Sort over every match would, for a
// sorted read with ties at the top. For a numeric
// target (its matches' targets within [lo, hi]) it sorts a proxy per
// match, its target and position, with the same comparisons as etcd, so
// the permutation is etcd's, then copies the limit winners in a second
// scan. A proxy is packed in 4 bytes when the target's spread and the
// match count fit in 32 bits together (100,000 matches over a million
// revisions do), else 8, else 12. Sorting by value needs the values to
// compare: it copies every match as etcd does.
func (q *rangeQuery) exactTop(ctx context.Context, rv ReadView, limit, matches int, lo, hi int64) ([]*mvccpb.KeyValue, error) {
	if q.target == pb.RangeRequest_VALUE {
		_, kvs, _, err := q.collect(ctx, rv, math.MaxInt64)
		if err != nil {
			return nil, err
		}
		sortKVs(kvs, q.order, q.target)
		return kvs[:min(limit, len(kvs))], nil
	}
	var (
		winners []int32
		err     error
	)
	seqBits := uint(bits.Len(uint(matches)))
	switch width := seqBits + uint(bits.Len64(uint64(hi-lo))); {
	case hi < lo:
		return nil, nil
	case width <= packedWidths[0]:
		winners, err = sortPacked[uint32](ctx, q, rv, limit, matches, lo, hi, seqBits)
	case width <= packedWidths[1]:
		winners, err = sortPacked[uint64](ctx, q, rv, limit, matches, lo, hi, seqBits)
	default:
		winners, err = sortProxies(ctx, q, rv, limit, matches)
	}
	if err != nil {
		return nil, err
	}
	pos := make(map[int32]int, len(winners))
	for i, seq := range winners {
		pos[seq] = i
	}
	kvs := make([]*mvccpb.KeyValue, len(pos))
	seq := int32(0)
	_, err = rv.Scan(ctx, q.r.Key, q.end, mvcc.ScanOptions{Rev: q.r.Revision}, func(kv *mvcc.KeyValueRef) bool {
		if q.keep(kv) {
			if i, ok := pos[seq]; ok {
				kvs[i] = q.clone(kv)
			}
			seq++
		}
		return true
	})
	return kvs, err
}

// packedWidths are the widths of exactTop's packed proxies; tests lower
// them to reach the wider proxies.
var packedWidths = [2]uint{32, 64}

// errRangeChanged is returned if a read's scans of one view disagree,
// which a consistent view rules out.
var errRangeChanged = errors.New("apply: the range changed between scans of one view")

// numTarget is kv's numeric sort target (mod revision unless the target
// is the version or the create revision).
func (q *rangeQuery) numTarget(kv *mvcc.KeyValueRef) int64 {
	switch q.target {
	case pb.RangeRequest_VERSION:
		return kv.Version
	case pb.RangeRequest_CREATE:
		return kv.CreateRevision
	}
	return kv.ModRevision
}

// sortProxyOrder sorts p as etcd sorts its matches (sort.Sort, reversed
// for descending) and returns the positions of the first limit.
func sortProxyOrder(q *rangeQuery, p sort.Interface, limit int, seqAt func(i int) int32) []int32 {
	s := p
	if q.order == pb.RangeRequest_DESCEND {
		s = sort.Reverse(s)
	}
	sort.Sort(s)
	out := make([]int32, min(limit, p.Len()))
	for i := range out {
		out[i] = seqAt(i)
	}
	return out
}

// sortPacked is exactTop's sort with each proxy packed in one word: the
// target less lo above seqBits bits of position. Comparing the words
// shifted right by seqBits compares the targets, as etcd does, so the
// permutation is the same as with unpacked proxies.
func sortPacked[T uint32 | uint64](ctx context.Context, q *rangeQuery, rv ReadView, limit, matches int, lo, hi int64, seqBits uint) ([]int32, error) {
	p := packedProxies[T]{w: make([]T, 0, matches), shift: seqBits}
	changed := false
	_, err := rv.Scan(ctx, q.r.Key, q.end, mvcc.ScanOptions{Rev: q.r.Revision}, func(kv *mvcc.KeyValueRef) bool {
		if !q.keep(kv) {
			return true
		}
		t, seq := q.numTarget(kv)-lo, len(p.w)
		if t < 0 || t > hi-lo || seq >= matches {
			changed = true
			return false
		}
		p.w = append(p.w, T(t)<<seqBits|T(seq))
		return true
	})
	if err == nil && (changed || len(p.w) != matches) {
		err = errRangeChanged
	}
	if err != nil {
		return nil, err
	}
	mask := T(1)<<seqBits - 1
	return sortProxyOrder(q, p, limit, func(i int) int32 { return int32(p.w[i] & mask) }), nil
}

// packedProxies are sortPacked's proxies.
type packedProxies[T uint32 | uint64] struct {
	w     []T
	shift uint
}

func (p packedProxies[T]) Len() int           { return len(p.w) }
func (p packedProxies[T]) Swap(i, j int)      { p.w[i], p.w[j] = p.w[j], p.w[i] }
func (p packedProxies[T]) Less(i, j int) bool { return p.w[i]>>p.shift < p.w[j]>>p.shift }

// sortProxies is exactTop's sort with unpacked 12-byte proxies, for
// targets spread too far to pack.
func sortProxies(ctx context.Context, q *rangeQuery, rv ReadView, limit, matches int) ([]int32, error) {
	p := proxies{targets: make([]int64, 0, matches), seqs: make([]int32, 0, matches)}
	_, err := rv.Scan(ctx, q.r.Key, q.end, mvcc.ScanOptions{Rev: q.r.Revision}, func(kv *mvcc.KeyValueRef) bool {
		if q.keep(kv) {
			p.seqs = append(p.seqs, int32(len(p.targets)))
			p.targets = append(p.targets, q.numTarget(kv))
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return sortProxyOrder(q, p, limit, func(i int) int32 { return p.seqs[i] }), nil
}

// proxies stand for the matches in exactTop's sort: targets[i] is the
// sort target of the match at position seqs[i] in key order.
type proxies struct {
	targets []int64
	seqs    []int32
}

func (p proxies) Len() int { return len(p.targets) }
func (p proxies) Swap(i, j int) {
	p.targets[i], p.targets[j] = p.targets[j], p.targets[i]
	p.seqs[i], p.seqs[j] = p.seqs[j], p.seqs[i]
}
func (p proxies) Less(i, j int) bool { return p.targets[i] < p.targets[j] }

// before tells whether a sorts strictly before b in the response order
// (ties are not before).
func (q *rangeQuery) before(a, b *mvccpb.KeyValue) bool {
	c := compareTarget(q.target, a, b)
	if q.order == pb.RangeRequest_DESCEND {
		return c > 0
	}
	return c < 0
}

type topEntry struct {
	kv  *mvccpb.KeyValue
	seq int // position among the matches in key order, for ties
}

// topHeap is a heap whose root is the kept entry that sorts last.
type topHeap struct {
	q       *rangeQuery
	entries []topEntry
}

func (h *topHeap) Len() int { return len(h.entries) }

// Less orders the heap worst first: i sorts after j.
func (h *topHeap) Less(i, j int) bool {
	a, b := h.entries[i], h.entries[j]
	if h.q.before(b.kv, a.kv) {
		return true
	}
	if h.q.before(a.kv, b.kv) {
		return false
	}
	return a.seq > b.seq
}
func (h *topHeap) Swap(i, j int) { h.entries[i], h.entries[j] = h.entries[j], h.entries[i] }
func (h *topHeap) Push(x any)    { h.entries = append(h.entries, x.(topEntry)) }
func (h *topHeap) Pop() any {
	e := h.entries[len(h.entries)-1]
	h.entries = h.entries[:len(h.entries)-1]
	return e
}

func compareTarget(target pb.RangeRequest_SortTarget, a, b *mvccpb.KeyValue) int {
	switch target {
	case pb.RangeRequest_VERSION:
		return cmpInt(a.Version, b.Version)
	case pb.RangeRequest_CREATE:
		return cmpInt(a.CreateRevision, b.CreateRevision)
	case pb.RangeRequest_MOD:
		return cmpInt(a.ModRevision, b.ModRevision)
	case pb.RangeRequest_VALUE:
		return bytes.Compare(a.Value, b.Value)
	}
	return bytes.Compare(a.Key, b.Key)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isDefaultOrdering is etcd's txn.IsDefaultOrdering: mvcc's key order.
func isDefaultOrdering(target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) bool {
	return order == pb.RangeRequest_NONE || (target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND)
}

// hasRevisionFilters is etcd's txn.HasRevisionFilters.
func hasRevisionFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 ||
		r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// sortKVs sorts as etcd does (order already normalized): sort.Sort, not a
// stable sort, is deliberate, so that ties come out in etcd's order for
// the same input.
func sortKVs(kvs []*mvccpb.KeyValue, order pb.RangeRequest_SortOrder, target pb.RangeRequest_SortTarget) {
	if isDefaultOrdering(target, order) {
		return
	}
	var s sort.Interface = kvSorter{kvs, target}
	if order == pb.RangeRequest_DESCEND {
		s = sort.Reverse(s)
	}
	sort.Sort(s)
}

type kvSorter struct {
	kvs    []*mvccpb.KeyValue
	target pb.RangeRequest_SortTarget
}

func (s kvSorter) Len() int      { return len(s.kvs) }
func (s kvSorter) Swap(i, j int) { s.kvs[i], s.kvs[j] = s.kvs[j], s.kvs[i] }
func (s kvSorter) Less(i, j int) bool {
	return compareTarget(s.target, s.kvs[i], s.kvs[j]) < 0
}

// RangeChunk reads one chunk of a RangeStream of r: up to limit keys of
// [key, r.RangeEnd) in key order at rev, with no count (RangeStream
// refuses revision filters and sort orders, as etcd's). more tells whether
// keys remain after the chunk; storeRev is the view's current revision.
// As etcd's chunks (each a unary Range), with sort order NONE and a
// non-key sort target a chunk is the next limit+1 keys sorted by that
// target and cut to limit (so etcd's stream repeats or skips keys, and
// Cairn's the same ones), and keys_only leaves values and leases out
// unless that target is the value.
func RangeChunk(ctx context.Context, rv ReadView, r *pb.RangeRequest, key []byte, rev, limit int64) (kvs []*mvccpb.KeyValue, more bool, storeRev int64, err error) {
	q := rangeQuery{fastKeysOnly: r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE}
	sorted := r.SortOrder == pb.RangeRequest_NONE && r.SortTarget != pb.RangeRequest_KEY
	storeRev, err = rv.Scan(ctx, key, gteRange(r.RangeEnd), mvcc.ScanOptions{Rev: rev}, func(kv *mvcc.KeyValueRef) bool {
		if int64(len(kvs)) == limit {
			more = true
			if !sorted {
				return false
			}
			// etcd sorts limit+1 keys, then cuts (as Range does here).
			kvs = append(kvs, q.clone(kv))
			return false
		}
		kvs = append(kvs, q.clone(kv))
		return true
	})
	if err != nil {
		return nil, false, storeRev, err
	}
	if sorted {
		sortKVs(kvs, pb.RangeRequest_ASCEND, r.SortTarget)
		kvs = kvs[:min(int64(len(kvs)), limit)]
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	return kvs, more, storeRev, nil
}

// CountRange counts the keys of [key, rangeEnd) at rev without copying
// any (rangeEnd as in a RangeRequest).
func CountRange(ctx context.Context, rv ReadView, key, rangeEnd []byte, rev int64) (int64, error) {
	n := int64(0)
	_, err := rv.Scan(ctx, key, gteRange(rangeEnd), mvcc.ScanOptions{Rev: rev}, func(*mvcc.KeyValueRef) bool {
		n++
		return true
	})
	return n, err
}
