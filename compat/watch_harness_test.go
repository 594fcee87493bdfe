package compat

// The watch differential harness: a pair of fresh members, raw Watch
// streams opened in pairs (one on each member), every request sent to both,
// and every WatchResponse of each stream collected and compared per watch
// ID. Responses of different watchers on one stream interleave differently
// from run to run, so only the order within one watch ID (and within the
// responses that carry watch ID -1: refusals and progress responses) must
// match; field by field, after normalizeHeader.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// The two members of a pair, as indexes into per-member arrays.
const (
	etcdSide  = 0
	cairnSide = 1
)

const (
	// watchQuiet is how long both streams must stay silent, with equal
	// responses so far, for settle to return. It exceeds etcd's 100 ms
	// catch-up period.
	watchQuiet = 150 * time.Millisecond
	// watchSettle bounds how long settle waits for the streams to agree.
	watchSettle = 3 * time.Second
	// watchAwait bounds how long await waits for a response, long enough
	// for a lease to expire.
	watchAwait = 10 * time.Second
)

// watchEnv is one watch scenario: a fresh Cairn member and a fresh etcd
// member, raw KV, Lease and Watch clients on each, and the streams opened.
type watchEnv struct {
	t       *testing.T
	kv      [2]pb.KVClient
	lease   [2]pb.LeaseClient
	watch   [2]pb.WatchClient
	crashed <-chan struct{}
	crash   func() string

	// steps is what the scenario did so far, printed with a failure: the
	// reproduction. Only the test goroutine appends to it.
	steps   []string
	streams []*watchStreams
}

func newWatchEnv(t *testing.T, opts cluster.Options) *watchEnv {
	t.Helper()
	cairnEps, etcdEps := cluster.StartBothWith(t, opts)
	crashed, crash := cluster.EtcdCrash(etcdEps[0])
	e := &watchEnv{t: t, crashed: crashed, crash: crash}
	for side, ep := range [2]string{etcdSide: etcdEps[0], cairnSide: cairnEps[0]} {
		conn := dial(t, ep)
		e.kv[side] = pb.NewKVClient(conn)
		e.lease[side] = pb.NewLeaseClient(conn)
		e.watch[side] = pb.NewWatchClient(conn)
	}
	return e
}

func (e *watchEnv) logf(format string, args ...any) {
	e.steps = append(e.steps, fmt.Sprintf(format, args...))
}

// failf reports a mismatch with the steps that led to it.
func (e *watchEnv) failf(format string, args ...any) {
	e.t.Helper()
	e.t.Errorf("%s\nsteps so far:\n    %s", fmt.Sprintf(format, args...), strings.Join(e.steps, "\n    "))
}

func (e *watchEnv) checkCrash() {
	e.t.Helper()
	select {
	case <-e.crashed:
		e.t.Fatalf("etcd, the oracle, crashed (an etcd bug; Cairn is not at fault)\netcd log: %s\nsteps:\n    %s",
			e.crash(), strings.Join(e.steps, "\n    "))
	default:
	}
}

// do sends a KV request to both members and compares the answers.
func (e *watchEnv) do(req any) outcome {
	e.t.Helper()
	e.logf("%s", shorten(describe(req), 300))
	eo := call(e.kv[etcdSide], req, e.crashed)
	ko := call(e.kv[cairnSide], req, nil)
	e.checkCrash()
	if d := diffOutcomes(eo, ko); d != "" {
		e.failf("%s: Cairn differs from etcd\netcd:  %s\ncairn: %s\ndiff (-etcd +cairn):\n%s", describe(req), eo, ko, d)
	}
	return eo
}

// doBulk sends requests in order to each member, the two members in
// parallel, and compares the answers; for long setups.
func (e *watchEnv) doBulk(reqs []any) {
	e.t.Helper()
	e.logf("%d requests, from %s to %s", len(reqs), shorten(describe(reqs[0]), 300), shorten(describe(reqs[len(reqs)-1]), 300))
	var outs [2][]outcome
	var wg sync.WaitGroup
	for side := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var abort <-chan struct{}
			if side == etcdSide {
				abort = e.crashed
			}
			for _, r := range reqs {
				outs[side] = append(outs[side], call(e.kv[side], r, abort))
			}
		}()
	}
	wg.Wait()
	e.checkCrash()
	for i, r := range reqs {
		if d := diffOutcomes(outs[etcdSide][i], outs[cairnSide][i]); d != "" {
			e.failf("bulk request %d %s: Cairn differs from etcd\netcd:  %s\ncairn: %s\ndiff (-etcd +cairn):\n%s",
				i, describe(r), outs[etcdSide][i], outs[cairnSide][i], d)
			return
		}
	}
}

// doLease sends a Lease request with a client-chosen lease ID to both
// members and compares the answers.
func (e *watchEnv) doLease(req any) outcome {
	e.t.Helper()
	e.logf("%s", shorten(describe(req), 300))
	eo := callLease(e.lease[etcdSide], req, e.crashed)
	ko := callLease(e.lease[cairnSide], req, nil)
	e.checkCrash()
	if d := diffOutcomes(eo, ko); d != "" {
		e.failf("%s: Cairn differs from etcd\netcd:  %s\ncairn: %s\ndiff (-etcd +cairn):\n%s", describe(req), eo, ko, d)
	}
	return eo
}

// watchStreams is a pair of watch streams, one on each member, that get
// the same requests.
type watchStreams struct {
	env  *watchEnv
	name string
	side [2]*watchRecv
	// collapseProgress makes comparisons count a run of identical progress
	// responses as one: how many arrive depends on timers.
	collapseProgress bool
}

// watchRecv collects the responses of one stream.
type watchRecv struct {
	stream pb.Watch_WatchClient
	done   chan struct{}

	mu      sync.Mutex
	resps   []*pb.WatchResponse
	created int       // responses with Created set
	last    time.Time // when the last response arrived
	err     error     // what ended the stream

	// wake, if not nil, gets a value (without blocking) whenever a
	// response arrives or the stream ends, for a waiter to select on.
	wake chan struct{}
}

// open starts a pair of streams; they end with the test.
func (e *watchEnv) open(name string) *watchStreams {
	e.t.Helper()
	s := &watchStreams{env: e, name: name}
	for side := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := e.watch[side].Watch(ctx)
		if err != nil {
			cancel()
			e.t.Fatalf("open watch stream on %s: %v", sideName(side), err)
		}
		r := &watchRecv{stream: stream, done: make(chan struct{}), last: time.Now()}
		go r.run()
		e.t.Cleanup(func() {
			cancel()
			<-r.done
		})
		s.side[side] = r
	}
	e.streams = append(e.streams, s)
	return s
}

func (r *watchRecv) run() {
	defer close(r.done)
	for {
		resp, err := r.stream.Recv()
		r.mu.Lock()
		if err != nil {
			r.err = err
			r.mu.Unlock()
			r.poke()
			return
		}
		normalizeHeader(resp.Header)
		r.resps = append(r.resps, resp)
		if resp.Created {
			r.created++
		}
		r.last = time.Now()
		r.mu.Unlock()
		r.poke()
	}
}

// poke wakes a waiter on r.wake, if any.
func (r *watchRecv) poke() {
	if r.wake == nil {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// snapshot returns the responses so far and when the last one came.
func (r *watchRecv) snapshot() ([]*pb.WatchResponse, int, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*pb.WatchResponse(nil), r.resps...), r.created, r.last
}

func sideName(side int) string { return [2]string{"etcd", "cairn"}[side] }

func (s *watchStreams) send(req *pb.WatchRequest) {
	s.env.t.Helper()
	for side := range 2 {
		if err := s.side[side].stream.Send(req); err != nil {
			s.env.t.Fatalf("stream %s: send {%s} to %s: %v", s.name, msgText(req), sideName(side), err)
		}
	}
}

// create asks both members for a watcher and waits until each has
// answered with a created response (every create request gets one, also
// when it is refused), so later writes happen after the watcher exists.
func (s *watchStreams) create(cr *pb.WatchCreateRequest) {
	s.env.t.Helper()
	s.env.logf("stream %s: create {%s}", s.name, msgText(cr))
	var before [2]int
	for side := range 2 {
		_, before[side], _ = s.side[side].snapshot()
	}
	s.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}})
	s.awaitAll(fmt.Sprintf("the created response to {%s}", msgText(cr)), func(side int, _ []*pb.WatchResponse, created int) bool {
		return created > before[side]
	}, watchSettle)
}

// cancel asks both members to cancel watcher id and lets the streams settle.
func (s *watchStreams) cancel(id int64) {
	s.env.t.Helper()
	s.env.logf("stream %s: cancel %d", s.name, id)
	s.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}})
	s.env.settle()
}

// progress sends a WatchProgressRequest to both members and lets the
// streams settle.
func (s *watchStreams) progress() {
	s.env.t.Helper()
	s.env.logf("stream %s: progress request", s.name)
	s.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
	s.env.settle()
}

// await waits until, on both members, the responses for watch ID id
// satisfy cond.
func (s *watchStreams) await(what string, id int64, cond func([]*pb.WatchResponse) bool) {
	s.env.t.Helper()
	s.awaitAll(what, func(_ int, resps []*pb.WatchResponse, _ int) bool {
		return cond(s.groups(resps)[id])
	}, watchAwait)
}

func (s *watchStreams) awaitAll(what string, cond func(side int, resps []*pb.WatchResponse, created int) bool, limit time.Duration) {
	s.env.t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var ok [2]bool
		for side := range 2 {
			resps, created, _ := s.side[side].snapshot()
			ok[side] = cond(side, resps, created)
		}
		if ok[etcdSide] && ok[cairnSide] {
			return
		}
		s.env.checkCrash()
		if time.Now().After(deadline) {
			var missing []string
			for side := range 2 {
				if !ok[side] {
					missing = append(missing, sideName(side))
				}
			}
			s.env.failf("stream %s: no %s from %s after %v\n%s", s.name, what, strings.Join(missing, " and "), limit, s.dump())
			s.env.t.FailNow()
		}
		<-tick.C
	}
}

// settle waits until every stream pair holds the same responses on both
// members and has been silent for watchQuiet since the last response and
// since settle was called, or watchSettle has passed (check then reports
// the difference).
func (e *watchEnv) settle() {
	e.t.Helper()
	start := time.Now()
	deadline := start.Add(watchSettle)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		e.checkCrash()
		settled := time.Since(start) >= watchQuiet
		for _, s := range e.streams {
			if !settled || !s.settled() {
				settled = false
				break
			}
		}
		if settled || time.Now().After(deadline) {
			return
		}
		<-tick.C
	}
}

func (s *watchStreams) settled() bool {
	er, _, elast := s.side[etcdSide].snapshot()
	kr, _, klast := s.side[cairnSide].snapshot()
	if time.Since(elast) < watchQuiet || time.Since(klast) < watchQuiet {
		return false
	}
	return groupsEqual(s.groups(er), s.groups(kr))
}

// check settles the streams and reports every stream pair whose responses
// differ, per watch ID.
func (e *watchEnv) check() {
	e.t.Helper()
	e.settle()
	for _, s := range e.streams {
		er, _, _ := s.side[etcdSide].snapshot()
		kr, _, _ := s.side[cairnSide].snapshot()
		eg, kg := s.groups(er), s.groups(kr)
		if trace {
			var b strings.Builder
			for _, id := range groupIDs(eg, nil) {
				fmt.Fprintf(&b, "  watch ID %d:\n%s\n", id, renderResps(eg[id]))
			}
			e.t.Logf("stream %s, etcd's responses after:\n    %s\n%s", s.name, strings.Join(e.steps, "\n    "), b.String())
		}
		for _, id := range groupIDs(eg, kg) {
			if msgsEqual(eg[id], kg[id]) {
				continue
			}
			// The first pair that differs, field by field.
			i := 0
			for i < len(eg[id]) && i < len(kg[id]) && proto.Equal(eg[id][i], kg[id][i]) {
				i++
			}
			var first *pb.WatchResponse
			var second *pb.WatchResponse
			if i < len(eg[id]) {
				first = eg[id][i]
			}
			if i < len(kg[id]) {
				second = kg[id][i]
			}
			e.failf("stream %s, watch ID %d: Cairn's responses differ from etcd's from response %d on\netcd:\n%s\ncairn:\n%s\nresponse %d (-etcd +cairn):\n%s",
				s.name, id, i, renderResps(eg[id]), renderResps(kg[id]), i, shorten(cmp.Diff(first, second, cmpOpts...), 3000))
		}
		for side := range 2 {
			s.side[side].mu.Lock()
			err := s.side[side].err
			s.side[side].mu.Unlock()
			if err != nil {
				e.failf("stream %s on %s ended: %v", s.name, sideName(side), err)
			}
		}
	}
}

// groups splits responses by watch ID, in arrival order.
func (s *watchStreams) groups(resps []*pb.WatchResponse) map[int64][]*pb.WatchResponse {
	g := map[int64][]*pb.WatchResponse{}
	for _, r := range resps {
		seq := g[r.WatchId]
		if s.collapseProgress && len(seq) > 0 && isProgress(r) && proto.Equal(seq[len(seq)-1], r) {
			continue
		}
		g[r.WatchId] = append(seq, r)
	}
	return g
}

// isProgress reports whether r is a progress response: no events, not a
// created, canceled or compaction response.
func isProgress(r *pb.WatchResponse) bool {
	return len(r.Events) == 0 && !r.Created && !r.Canceled && r.CompactRevision == 0 && !r.Fragment
}

func groupIDs(a, b map[int64][]*pb.WatchResponse) []int64 {
	var ids []int64
	for id := range a {
		ids = append(ids, id)
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// dump prints both members' responses on s, per watch ID.
func (s *watchStreams) dump() string {
	var b strings.Builder
	for side := range 2 {
		resps, _, _ := s.side[side].snapshot()
		g := s.groups(resps)
		fmt.Fprintf(&b, "%s:\n", sideName(side))
		for _, id := range groupIDs(g, nil) {
			fmt.Fprintf(&b, "  watch ID %d:\n%s\n", id, renderResps(g[id]))
		}
	}
	return b.String()
}

// renderResps prints responses one a line, numbered, in a short form:
// long values are cut and long event lists elided in the middle.
func renderResps(rs []*pb.WatchResponse) string {
	if len(rs) == 0 {
		return "    (none)"
	}
	lines := make([]string, len(rs))
	for i, r := range rs {
		lines[i] = fmt.Sprintf("    %d: %s", i, renderResp(r))
	}
	return strings.Join(lines, "\n")
}

func renderResp(r *pb.WatchResponse) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rev=%d id=%d", r.Header.GetRevision(), r.WatchId)
	if h := r.Header; h == nil || h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm == 0 {
		if h == nil {
			b.WriteString(" header=nil")
		} else {
			fmt.Fprintf(&b, " header={%s}", msgText(h))
		}
	}
	for _, f := range []struct {
		set  bool
		name string
	}{{r.Created, "created"}, {r.Canceled, "canceled"}, {r.Fragment, "fragment"}} {
		if f.set {
			b.WriteString(" " + f.name)
		}
	}
	if r.CompactRevision != 0 {
		fmt.Fprintf(&b, " compact_revision=%d", r.CompactRevision)
	}
	if r.CancelReason != "" {
		fmt.Fprintf(&b, " cancel_reason=%q", r.CancelReason)
	}
	if len(r.Events) > 0 {
		fmt.Fprintf(&b, " %d events:", len(r.Events))
	}
	for i, ev := range r.Events {
		if len(r.Events) > 6 && i == 3 {
			fmt.Fprintf(&b, " …%d more…", len(r.Events)-5)
		}
		if len(r.Events) > 6 && i >= 3 && i < len(r.Events)-2 {
			continue
		}
		fmt.Fprintf(&b, " [%s %s", ev.Type, renderKV(ev.Kv))
		if ev.PrevKv != nil {
			fmt.Fprintf(&b, " prev=%s", renderKV(ev.PrevKv))
		}
		b.WriteString("]")
	}
	return b.String()
}

func renderKV(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "<nil>"
	}
	v := fmt.Sprintf("%q", kv.Value)
	if len(kv.Value) > 24 {
		v = fmt.Sprintf("%q…(%d bytes)", kv.Value[:8], len(kv.Value))
	}
	s := fmt.Sprintf("%q create=%d mod=%d ver=%d value=%s", kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version, v)
	if kv.Lease != 0 {
		s += fmt.Sprintf(" lease=%d", kv.Lease)
	}
	return s
}

// Builders for watch create requests.

// watchKey watches one key.
func watchKey(k string) *pb.WatchCreateRequest { return &pb.WatchCreateRequest{Key: []byte(k)} }

// watchRange watches [k, end); end "\x00" means every key >= k.
func watchRange(k, end string) *pb.WatchCreateRequest {
	return &pb.WatchCreateRequest{Key: []byte(k), RangeEnd: []byte(end)}
}

func watchPrefix(k string) *pb.WatchCreateRequest { return watchRange(k, prefixEnd(k)) }

// watchAll watches every key (an empty key is "\x00", the smallest).
func watchAll() *pb.WatchCreateRequest { return watchRange("", "\x00") }

// from sets the start revision.
func from(rev int64, cr *pb.WatchCreateRequest) *pb.WatchCreateRequest {
	cr.StartRevision = rev
	return cr
}

// withPrevKV asks for the previous key-value of each event.
func withPrevKV(cr *pb.WatchCreateRequest) *pb.WatchCreateRequest {
	cr.PrevKv = true
	return cr
}

// withID sets a client-chosen watch ID.
func withID(id int64, cr *pb.WatchCreateRequest) *pb.WatchCreateRequest {
	cr.WatchId = id
	return cr
}

func withFilters(cr *pb.WatchCreateRequest, fs ...pb.WatchCreateRequest_FilterType) *pb.WatchCreateRequest {
	cr.Filters = fs
	return cr
}

// Conditions for await.

// hasEventsAt holds once a response with events at header revision rev arrived.
func hasEventsAt(rev int64) func([]*pb.WatchResponse) bool {
	return func(rs []*pb.WatchResponse) bool {
		for _, r := range rs {
			if len(r.Events) > 0 && r.Header.GetRevision() == rev {
				return true
			}
		}
		return false
	}
}

// hasProgressAt holds once a progress response at header revision rev arrived.
func hasProgressAt(rev int64) func([]*pb.WatchResponse) bool {
	return func(rs []*pb.WatchResponse) bool {
		for _, r := range rs {
			if isProgress(r) && r.Header.GetRevision() == rev {
				return true
			}
		}
		return false
	}
}

// withProgressNotify asks for periodic progress responses while idle.
func withProgressNotify(cr *pb.WatchCreateRequest) *pb.WatchCreateRequest {
	cr.ProgressNotify = true
	return cr
}

// withFragment lets the member split large responses.
func withFragment(cr *pb.WatchCreateRequest) *pb.WatchCreateRequest {
	cr.Fragment = true
	return cr
}

// closeSend closes the client side of both streams; responses keep coming.
func (s *watchStreams) closeSend() {
	s.env.t.Helper()
	s.env.logf("stream %s: close send side", s.name)
	for side := range 2 {
		if err := s.side[side].stream.CloseSend(); err != nil {
			s.env.t.Fatalf("stream %s: CloseSend on %s: %v", s.name, sideName(side), err)
		}
	}
}
