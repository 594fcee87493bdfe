package compat

// The runner of the random differential test: it plays a sequence of steps
// (KV and Lease requests, watch opens and cancels) on a fresh Cairn member
// and a fresh etcd member, compares every answer as the KV harness does
// (harness_test.go), and at the end compares what every watcher received,
// per stream and watch ID, every revision still held, and every lease.
//
// A watch stream answers on its own time, so the runner puts barriers
// where timing would otherwise decide what a response holds, and compares
// only what a barrier has made certain:
//
//   - a watcher that starts in the past catches up asynchronously (etcd's
//     sync loop runs every 100 ms): after creating one, the runner sends
//     progress requests until one is answered, which etcd does only once
//     every watcher of the stream is synced, or until the watcher is
//     canceled by compaction (then the runner cancels it, as a client
//     would, so that the stream answers progress requests again);
//   - etcd reads a prev_kv when it sends the event, so before a compaction
//     every stream with a prev_kv watcher gets a barrier: a progress
//     request answered at the current revision, sent after every event
//     before it;
//   - a cancel could race the watcher's last events, so it follows a
//     barrier too;
//   - at the end a put of the key "fence" moves every watcher past its
//     start revision, and a barrier on every stream ends the sequence.
//
// A stream holding a watcher whose start revision is still ahead answers
// no progress request (etcd's progressIfSync); no write happened since
// such a watcher was created, and the runner put a barrier before creating
// it, so the stream holds no unsent event. A watcher that starts in the
// past is put on a new stream instead of such a stalled one.
//
// The progress responses of barriers (watch ID -1) are not compared, since
// a request sent while a watcher catches up is dropped: their number
// depends on timing. Everything else a stream sends is compared whole.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// watchOpen is the step that sends a create request on a watch stream.
// Streams are numbered in the order steps first name them.
type watchOpen struct {
	stream int
	req    *pb.WatchCreateRequest
}

// watchCancel is the step that sends a cancel request on a watch stream.
type watchCancel struct {
	stream int
	id     int64
}

const (
	// fenceKey is the key of the put that ends every sequence.
	fenceKey = "fence"
	// barrierWait bounds how long a barrier or a watch response is waited
	// for; etcd syncs a watcher within 100 ms.
	barrierWait = 5 * time.Second
	// progressResend is how often an unanswered progress request is sent
	// again while a watcher catches up.
	progressResend = 10 * time.Millisecond
)

// errInvalid marks a sequence the runner cannot compare: one that would
// crash etcd (a compaction at a revision in diffRun.unsafe) or that starts
// a watcher more than one revision ahead. The generator makes none; a
// shrunk sequence may.
var errInvalid = errors.New("sequence not comparable")

// divergence is where Cairn answered differently from etcd.
type divergence struct {
	step   int    // index of the step; the number of steps for end-of-sequence checks
	kind   string // what differed: a request type, "watch", "history", ...
	report string // the request, both answers and their difference
}

// etcdCrashError reports that etcd, the oracle, hit a fatal error.
type etcdCrashError struct {
	step   int
	reason string
}

func (e *etcdCrashError) Error() string {
	return fmt.Sprintf("etcd, the oracle, crashed at step %d (an etcd bug; Cairn is not at fault): %s", e.step, e.reason)
}

// diffRun plays one sequence on a fresh pair of members.
type diffRun struct {
	t       *testing.T
	conns   [2]*grpc.ClientConn
	kv      [2]pb.KVClient
	lease   [2]pb.LeaseClient
	watch   [2]pb.WatchClient
	crashed <-chan struct{}
	crash   func() string
	cleanup func()

	// What etcd reported: the current revision, the last compaction (0:
	// none), and the revisions etcd (v3.6.16, v3.7.4) cannot be compacted
	// at: those of a txn that deleted from a key on ("\x00" range end) and
	// put a key.
	// etcd's checkIntervals lets such a delete overlap a put, and
	// compacting at exactly that revision drops the put from etcd's
	// backend while its index keeps it; the next read of the key is a
	// fatal error (etcd-io/etcd#22376). Cairn keeps the value. Compacting
	// one revision later is safe.
	rev, compacted int64
	unsafe         map[int64]bool

	streams []*diffStream
	steps   []any // the steps run so far

	compared int // requests and responses compared
	events   int // watch events compared
}

// diffStream is a watch stream on each member.
type diffStream struct {
	recv [2]*watchRecv
	stop [2]context.CancelFunc
	wake chan struct{} // both receivers poke it
	// live holds the watchers etcd reported created and not yet canceled.
	live map[int64]liveWatcher
	// barrierRev is the revision of the last barrier: every event up to
	// it has been sent.
	barrierRev int64
	// origin names the step that created each watch ID, for reports.
	origin map[int64][]int
}

type liveWatcher struct {
	start  int64 // start revision; for 0, the revision after the created response's
	prevKV bool
}

func newDiffRun(t *testing.T) *diffRun {
	t.Helper()
	cairnEps, etcdEps, cleanup := cluster.StartBothWithCleanup(t, cluster.Options{})
	crashed, crash := cluster.EtcdCrash(etcdEps[0])
	r := &diffRun{t: t, crashed: crashed, crash: crash, cleanup: cleanup, rev: 1, unsafe: map[int64]bool{}}
	for side, ep := range [2]string{etcdSide: etcdEps[0], cairnSide: cairnEps[0]} {
		conn, err := grpc.NewClient(ep,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)))
		if err != nil {
			cleanup()
			t.Fatalf("dial %s: %v", ep, err)
		}
		r.conns[side] = conn
		r.kv[side] = pb.NewKVClient(conn)
		r.lease[side] = pb.NewLeaseClient(conn)
		r.watch[side] = pb.NewWatchClient(conn)
	}
	return r
}

// close ends the streams, the connections and both members.
func (r *diffRun) close() {
	for _, s := range r.streams {
		for side := range 2 {
			s.stop[side]()
			<-s.recv[side].done
		}
	}
	for _, c := range r.conns {
		if c != nil {
			c.Close()
		}
	}
	r.cleanup()
}

// run plays steps, then the end-of-sequence checks, and returns the first
// divergence.
func (r *diffRun) run(steps []any) (*divergence, error) {
	for _, s := range steps {
		if d, err := r.step(s); d != nil || err != nil {
			return d, err
		}
	}
	return r.finish()
}

// step plays one step on both members and compares the answers.
func (r *diffRun) step(s any) (*divergence, error) {
	r.steps = append(r.steps, s)
	i := len(r.steps) - 1
	switch x := s.(type) {
	case *pb.CompactionRequest:
		if r.unsafe[x.Revision] {
			return nil, fmt.Errorf("step %d: compaction at revision %d, which crashes etcd: %w", i, x.Revision, errInvalid)
		}
		for _, st := range r.streams {
			if st.hasPrevKV() {
				if d, err := r.barrier(i, st); d != nil || err != nil {
					return d, err
				}
			}
		}
		return r.check(i, s)
	case *pb.RangeRequest, *pb.PutRequest, *pb.DeleteRangeRequest, *pb.TxnRequest,
		*pb.LeaseGrantRequest, *pb.LeaseRevokeRequest, *pb.LeaseTimeToLiveRequest, *pb.LeaseLeasesRequest:
		return r.check(i, s)
	case *pb.LeaseKeepAliveRequest:
		return r.keepAlive(i, x)
	case watchOpen:
		return r.watchOpen(i, x)
	case watchCancel:
		return r.watchCancel(i, x)
	default:
		panic(fmt.Sprintf("diffRun.step: unexpected step %T", s))
	}
}

// check sends a KV or Lease request to etcd, then to Cairn, compares the
// answers and notes what etcd's answer says of the state.
func (r *diffRun) check(i int, req any) (*divergence, error) {
	var e, k outcome
	switch req.(type) {
	case *pb.LeaseGrantRequest, *pb.LeaseRevokeRequest, *pb.LeaseTimeToLiveRequest, *pb.LeaseLeasesRequest:
		e = callLease(r.lease[etcdSide], req, r.crashed)
		k = callLease(r.lease[cairnSide], req, nil)
		alignRemainingTTL(e.resp, k.resp)
	default:
		e = call(r.kv[etcdSide], req, r.crashed)
		k = call(r.kv[cairnSide], req, nil)
	}
	if err := r.crashErr(i); err != nil {
		return nil, err
	}
	r.compared++
	if trace {
		r.t.Logf("step %d: %s\n  -> %s", i, describe(req), e)
	}
	if d := diffOutcomes(e, k); d != "" {
		return r.diverged(i, kindOf(req), fmt.Sprintf("request: %s\netcd:    %s\ncairn:   %s\ndiff (-etcd +cairn):\n%s", describe(req), e, k, d)), nil
	}
	r.observe(req, e)
	return nil, nil
}

func (r *diffRun) crashErr(i int) error {
	select {
	case <-r.crashed:
		return &etcdCrashError{step: i, reason: r.crash()}
	default:
		return nil
	}
}

func (r *diffRun) diverged(i int, kind, report string) *divergence {
	where := fmt.Sprintf("step %d", i)
	if i >= len(r.steps) {
		where = "end of sequence"
	}
	return &divergence{step: i, kind: kind, report: fmt.Sprintf("%s (%s): Cairn differs from etcd\n%s", where, kind, report)}
}

// kindOf names a step's type, as "Txn" for a *pb.TxnRequest.
func kindOf(req any) string {
	return strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", req), "*etcdserverpb."), "Request")
}

// observe notes the current revision, compactions and unsafe revisions
// from etcd's answer.
func (r *diffRun) observe(req any, e outcome) {
	if e.resp == nil {
		return
	}
	rev := r.rev
	if h, ok := e.resp.(interface{ GetHeader() *pb.ResponseHeader }); ok && h.GetHeader() != nil {
		rev = max(rev, h.GetHeader().Revision)
	}
	switch x := req.(type) {
	case *pb.TxnRequest:
		if rev > r.rev && deletesFromKeyAndPuts(x) {
			r.unsafe[rev] = true
		}
	case *pb.CompactionRequest:
		r.compacted = x.Revision
	}
	r.rev = rev
}

// keepAlive sends one LeaseKeepAliveRequest on a new stream to each
// member and compares the answers.
func (r *diffRun) keepAlive(i int, req *pb.LeaseKeepAliveRequest) (*divergence, error) {
	var outs [2]outcome
	for side := range 2 {
		outs[side] = func() outcome {
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			stream, err := r.lease[side].LeaseKeepAlive(ctx)
			if err != nil {
				return outcome{err: status.Convert(err)}
			}
			if err := stream.Send(req); err != nil {
				return outcome{err: status.Convert(err)}
			}
			resp, err := stream.Recv()
			if err != nil {
				return outcome{err: status.Convert(err)}
			}
			normalizeHeader(resp.Header)
			return outcome{resp: resp}
		}()
	}
	if err := r.crashErr(i); err != nil {
		return nil, err
	}
	r.compared++
	if d := diffOutcomes(outs[etcdSide], outs[cairnSide]); d != "" {
		return r.diverged(i, "LeaseKeepAlive", fmt.Sprintf("request: %s\netcd:    %s\ncairn:   %s\ndiff (-etcd +cairn):\n%s",
			describe(req), outs[etcdSide], outs[cairnSide], d)), nil
	}
	return nil, nil
}

// openStream opens a watch stream on each member.
func (r *diffRun) openStream() (*diffStream, error) {
	s := &diffStream{wake: make(chan struct{}, 1), live: map[int64]liveWatcher{}, origin: map[int64][]int{}}
	for side := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := r.watch[side].Watch(ctx)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("open a watch stream on %s: %w", sideName(side), err)
		}
		s.stop[side] = cancel
		s.recv[side] = &watchRecv{stream: stream, done: make(chan struct{}), last: time.Now(), wake: s.wake}
		go s.recv[side].run()
	}
	r.streams = append(r.streams, s)
	return s, nil
}

func (r *diffRun) stream(n int) (*diffStream, error) {
	for len(r.streams) <= n {
		if _, err := r.openStream(); err != nil {
			return nil, err
		}
	}
	return r.streams[n], nil
}

func (s *diffStream) send(req *pb.WatchRequest) error {
	for side := range 2 {
		if err := s.recv[side].stream.Send(req); err != nil {
			return fmt.Errorf("send {%s} to %s: %w", msgText(req), sideName(side), err)
		}
	}
	return nil
}

func (s *diffStream) sendProgress(side int) error {
	return s.recv[side].stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
}

// ids returns the stream's live watch IDs in order.
func (s *diffStream) ids() []int64 {
	ids := make([]int64, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// stalled reports whether a watcher of s starts after rev: then etcd
// answers no progress request on s.
func (s *diffStream) stalled(rev int64) bool {
	for _, w := range s.live {
		if w.start > rev {
			return true
		}
	}
	return false
}

func (s *diffStream) hasPrevKV() bool {
	for _, w := range s.live {
		if w.prevKV {
			return true
		}
	}
	return false
}

// await waits until cond holds for both members' responses after marks,
// calling resend for a member that does not satisfy it yet every
// progressResend (if resend is not nil). It returns whether each member
// satisfied cond within barrierWait.
func (s *diffStream) await(marks [2]int, cond func(side int, resps []*pb.WatchResponse) bool, resend func(side int) error) ([2]bool, error) {
	deadline := time.NewTimer(barrierWait)
	defer deadline.Stop()
	tick := time.NewTicker(progressResend)
	defer tick.Stop()
	var ok [2]bool
	for {
		for side := range 2 {
			if !ok[side] {
				resps, _, _ := s.recv[side].snapshot()
				ok[side] = cond(side, resps[min(marks[side], len(resps)):])
			}
		}
		if ok[etcdSide] && ok[cairnSide] {
			return ok, nil
		}
		select {
		case <-s.wake:
		case <-tick.C:
			if resend != nil {
				for side := range 2 {
					if !ok[side] {
						if err := resend(side); err != nil {
							return ok, err
						}
					}
				}
			}
		case <-deadline.C:
			return ok, nil
		}
	}
}

func (s *diffStream) marks() [2]int {
	var m [2]int
	for side := range 2 {
		resps, _, _ := s.recv[side].snapshot()
		m[side] = len(resps)
	}
	return m
}

// after returns each member's responses after marks that match f.
func (s *diffStream) after(marks [2]int, f func(*pb.WatchResponse) bool) [2][]*pb.WatchResponse {
	var out [2][]*pb.WatchResponse
	for side := range 2 {
		resps, _, _ := s.recv[side].snapshot()
		for _, x := range resps[min(marks[side], len(resps)):] {
			if f(x) {
				out[side] = append(out[side], x)
			}
		}
	}
	return out
}

func isProgressAll(x *pb.WatchResponse) bool { return x.WatchId == -1 && isProgress(x) }

// barrier sends a progress request on s and waits for the answer at the
// current revision from both members: then every event up to it has been
// sent. A stream without watchers, a stalled one, and one that had a
// barrier at this revision need none.
func (r *diffRun) barrier(i int, s *diffStream) (*divergence, error) {
	if len(s.live) == 0 || s.stalled(r.rev) || s.barrierRev == r.rev {
		return nil, nil
	}
	marks := s.marks()
	for side := range 2 {
		if err := s.sendProgress(side); err != nil {
			return nil, err
		}
	}
	atRev := func(_ int, resps []*pb.WatchResponse) bool {
		for _, x := range resps {
			if isProgressAll(x) && x.Header.GetRevision() == r.rev {
				return true
			}
		}
		return false
	}
	ok, err := s.await(marks, atRev, s.sendProgress)
	if err != nil {
		return nil, err
	}
	if err := r.crashErr(i); err != nil {
		return nil, err
	}
	if !ok[etcdSide] || !ok[cairnSide] {
		got := s.after(marks, func(*pb.WatchResponse) bool { return true })
		return r.diverged(i, "watch progress", fmt.Sprintf(
			"stream %d, watchers %v: no progress response at revision %d within %v (etcd %v, cairn %v)\netcd's responses since the request:\n%s\ncairn's:\n%s",
			r.streamIndex(s), s.ids(), r.rev, barrierWait, ok[etcdSide], ok[cairnSide], renderResps(got[etcdSide]), renderResps(got[cairnSide]))), nil
	}
	s.barrierRev = r.rev
	return nil, nil
}

func (r *diffRun) streamIndex(s *diffStream) int {
	for i, x := range r.streams {
		if x == s {
			return i
		}
	}
	return -1
}

// watchOpen creates a watcher on both members, compares the created
// responses and, for a watcher starting in the past, waits until it has
// caught up.
func (r *diffRun) watchOpen(i int, w watchOpen) (*divergence, error) {
	cr := w.req
	if cr.StartRevision > r.rev+1 {
		return nil, fmt.Errorf("step %d: watch from revision %d, with the store at %d: %w", i, cr.StartRevision, r.rev, errInvalid)
	}
	s, err := r.stream(w.stream)
	if err != nil {
		return nil, err
	}
	past := cr.StartRevision > 0 && cr.StartRevision <= r.rev
	switch {
	case past && s.stalled(r.rev):
		// Catching up is awaited with progress requests, which a stalled
		// stream does not answer.
		if s, err = r.openStream(); err != nil {
			return nil, err
		}
	case !past:
		// The new watcher may stall s: first make sure s sent everything.
		if d, err := r.barrier(i, s); d != nil || err != nil {
			return d, err
		}
	}
	var marks [2]int
	for side := range 2 {
		_, marks[side], _ = s.recv[side].snapshot()
	}
	if err := s.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}}); err != nil {
		return nil, err
	}
	var (
		created [2]*pb.WatchResponse
		after   [2]int // the index of the response after the created one
	)
	ok, err := s.await([2]int{}, func(side int, resps []*pb.WatchResponse) bool {
		n := 0
		for j, x := range resps {
			if x.Created {
				if n++; n > marks[side] {
					created[side], after[side] = x, j+1
					return true
				}
			}
		}
		return false
	}, nil)
	if err != nil {
		return nil, err
	}
	if err := r.crashErr(i); err != nil {
		return nil, err
	}
	r.compared++
	if !ok[etcdSide] || !ok[cairnSide] || !proto.Equal(created[etcdSide], created[cairnSide]) {
		return r.diverged(i, "watch create", fmt.Sprintf("stream %d: create {%s}\netcd:  %s\ncairn: %s\ndiff (-etcd +cairn):\n%s",
			r.streamIndex(s), msgText(cr), renderCreated(created[etcdSide]), renderCreated(created[cairnSide]),
			cmp.Diff(created[etcdSide], created[cairnSide], cmpOpts...))), nil
	}
	resp := created[etcdSide]
	if resp.Canceled {
		return nil, nil // refused
	}
	start := cr.StartRevision
	if start == 0 {
		start = resp.Header.GetRevision() + 1
	}
	s.live[resp.WatchId] = liveWatcher{start: start, prevKV: cr.PrevKv}
	s.origin[resp.WatchId] = append(s.origin[resp.WatchId], i)
	if past {
		return r.catchUp(i, s, resp.WatchId, after)
	}
	return nil, nil
}

func renderCreated(x *pb.WatchResponse) string {
	if x == nil {
		return "(no created response)"
	}
	return renderResp(x)
}

// catchUp waits until the watcher id, which starts in the past, has caught
// up on both members, or both canceled it for compaction; then the runner
// cancels it too. marks index each member's response after the watcher's
// created response: both members send the compaction cancel after it, and
// the answers to progress requests sent from now on come after it too.
func (r *diffRun) catchUp(i int, s *diffStream, id int64, marks [2]int) (*divergence, error) {
	for side := range 2 {
		if err := s.sendProgress(side); err != nil {
			return nil, err
		}
	}
	compactedCancel := func(x *pb.WatchResponse) bool { return x.WatchId == id && x.CompactRevision != 0 }
	ok, err := s.await(marks, func(_ int, resps []*pb.WatchResponse) bool {
		for _, x := range resps {
			if isProgressAll(x) || compactedCancel(x) {
				return true
			}
		}
		return false
	}, s.sendProgress)
	if err != nil {
		return nil, err
	}
	if err := r.crashErr(i); err != nil {
		return nil, err
	}
	got := s.after(marks, func(x *pb.WatchResponse) bool { return isProgressAll(x) || compactedCancel(x) })
	var compacted [2]bool
	for side := range 2 {
		for _, x := range got[side] {
			compacted[side] = compacted[side] || compactedCancel(x)
		}
	}
	if !ok[etcdSide] || !ok[cairnSide] || compacted[etcdSide] != compacted[cairnSide] {
		all := s.after(marks, func(*pb.WatchResponse) bool { return true })
		return r.diverged(i, "watch catch-up", fmt.Sprintf(
			"stream %d, watch ID %d from revision %d (compacted at %d): caught up or canceled: etcd %v (canceled %v), cairn %v (canceled %v)\netcd's responses since the create:\n%s\ncairn's:\n%s",
			r.streamIndex(s), id, s.live[id].start, r.compacted, ok[etcdSide], compacted[etcdSide], ok[cairnSide], compacted[cairnSide],
			renderResps(all[etcdSide]), renderResps(all[cairnSide]))), nil
	}
	if !compacted[etcdSide] {
		s.barrierRev = r.rev
		return nil, nil
	}
	// A watcher canceled by compaction keeps its ID, and keeps the stream
	// from answering progress requests, until the client cancels it.
	return r.cancel(i, s, id)
}

// watchCancel cancels a watcher on both members, after a barrier so that
// its last events are not raced.
func (r *diffRun) watchCancel(i int, c watchCancel) (*divergence, error) {
	s, err := r.stream(c.stream)
	if err != nil {
		return nil, err
	}
	if d, err := r.barrier(i, s); d != nil || err != nil {
		return d, err
	}
	return r.cancel(i, s, c.id)
}

// cancel sends a cancel request for id and, when etcd holds such a
// watcher, waits for both canceled responses and compares them.
func (r *diffRun) cancel(i int, s *diffStream, id int64) (*divergence, error) {
	marks := s.marks()
	if err := s.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}}); err != nil {
		return nil, err
	}
	if _, live := s.live[id]; !live {
		return nil, nil // etcd sends nothing; anything Cairn sends is compared at the end
	}
	delete(s.live, id)
	canceled := func(x *pb.WatchResponse) bool { return x.WatchId == id && x.Canceled && x.CompactRevision == 0 }
	ok, err := s.await(marks, func(_ int, resps []*pb.WatchResponse) bool {
		for _, x := range resps {
			if canceled(x) {
				return true
			}
		}
		return false
	}, nil)
	if err != nil {
		return nil, err
	}
	if err := r.crashErr(i); err != nil {
		return nil, err
	}
	r.compared++
	if !ok[etcdSide] || !ok[cairnSide] {
		got := s.after(marks, func(*pb.WatchResponse) bool { return true })
		return r.diverged(i, "watch cancel", fmt.Sprintf("stream %d: cancel %d: canceled response from etcd %v, cairn %v\netcd's responses since:\n%s\ncairn's:\n%s",
			r.streamIndex(s), id, ok[etcdSide], ok[cairnSide], renderResps(got[etcdSide]), renderResps(got[cairnSide]))), nil
	}
	return nil, nil
}

// finish runs the end-of-sequence checks: the fence put and a barrier on
// every stream, then what each watcher received, every revision still
// held, and every lease.
func (r *diffRun) finish() (*divergence, error) {
	end := len(r.steps)
	if d, err := r.check(end, put(fenceKey, "end")); d != nil || err != nil {
		return d, err
	}
	for _, s := range r.streams {
		if d, err := r.barrier(end, s); d != nil || err != nil {
			return d, err
		}
	}
	for n, s := range r.streams {
		if d := r.compareStream(end, n, s); d != nil {
			return d, nil
		}
	}
	for rev := max(r.compacted, 1); rev <= r.rev; rev++ {
		req := &pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: rev}
		if d, err := r.check(end, req); d != nil || err != nil {
			if d != nil {
				d.kind = "history"
			}
			return d, err
		}
	}
	checks := []any{&pb.LeaseLeasesRequest{}}
	for _, id := range append(append([]int64(nil), leasePool...), unknownLease) {
		checks = append(checks, &pb.LeaseTimeToLiveRequest{ID: id, Keys: true})
	}
	for _, req := range checks {
		if d, err := r.check(end, req); d != nil || err != nil {
			if d != nil {
				d.kind = "leases"
			}
			return d, err
		}
	}
	return nil, nil
}

// compareStream compares, per watch ID, every response stream n received
// on both members, barrier progress responses aside.
func (r *diffRun) compareStream(end, n int, s *diffStream) *divergence {
	var groups [2]map[int64][]*pb.WatchResponse
	for side := range 2 {
		resps, _, _ := s.recv[side].snapshot()
		groups[side] = map[int64][]*pb.WatchResponse{}
		for _, x := range resps {
			if !isProgressAll(x) {
				groups[side][x.WatchId] = append(groups[side][x.WatchId], x)
			}
		}
		s.recv[side].mu.Lock()
		err := s.recv[side].err
		s.recv[side].mu.Unlock()
		if err != nil {
			return r.diverged(end, "watch", fmt.Sprintf("stream %d on %s ended: %v", n, sideName(side), err))
		}
	}
	eg, kg := groups[etcdSide], groups[cairnSide]
	for _, id := range groupIDs(eg, kg) {
		r.compared += len(eg[id])
		for _, x := range eg[id] {
			r.events += len(x.Events)
		}
		if msgsEqual(eg[id], kg[id]) {
			continue
		}
		j := 0
		for j < len(eg[id]) && j < len(kg[id]) && proto.Equal(eg[id][j], kg[id][j]) {
			j++
		}
		var first, second *pb.WatchResponse
		if j < len(eg[id]) {
			first = eg[id][j]
		}
		if j < len(kg[id]) {
			second = kg[id][j]
		}
		return r.diverged(end, "watch", fmt.Sprintf(
			"stream %d, watch ID %d (created at step %v): responses differ from response %d on\netcd:\n%s\ncairn:\n%s\nresponse %d (-etcd +cairn):\n%s",
			n, id, s.origin[id], j, renderResps(eg[id]), renderResps(kg[id]), j, shorten(cmp.Diff(first, second, cmpOpts...), 3000)))
	}
	return nil
}
