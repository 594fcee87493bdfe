package robustness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Traffic shape. Many keys with few operations each keep porcupine's
// search small: it is exponential in the concurrency within one key.
const (
	numKeys    = 24
	numClients = 6
	numWatches = 6
	// opTimeout bounds one request; longer than an election, so most
	// requests outlive a leader change.
	opTimeout = 1500 * time.Millisecond
	// clientRate caps each client's requests per second, so the history
	// of a long run stays checkable and the cluster is not CPU-bound.
	clientRate = 40
	// leaseTTL is long enough that a lease granted with it does not expire
	// during a run: it ends by an explicit revoke, which the history
	// records. Half the leases are short instead (shortTTL seconds plus
	// up to 3), kept alive now and then, and left to expire: the check
	// is that no lease expires before its TTL has passed since the last
	// acknowledged grant or keep-alive.
	leaseTTL = 3600
	shortTTL = 2
)

func keyName(i int) string { return fmt.Sprintf("k%02d", i) }

// kvOp is one KV request of the history: what was asked and what came
// back. Times are nanoseconds since the history started.
type kvOp struct {
	client int
	kind   string // "put", "get", "delete", "txn", "revoke"
	key    string
	value  string // put, txn: the new value (unique in the run)
	lease  int64  // put: attached lease; revoke: the lease
	expRev int64  // txn: compares mod_revision(key) == expRev, then puts, else gets

	call, ret int64
	unknown   bool // the client never learned the outcome
	rev       int64
	found     bool   // get, failed txn: the key exists
	got       string // get, failed txn: its value
	gotMod    int64  // get, failed txn: its mod_revision
	succeeded bool   // txn
	deleted   int64  // delete
}

// mutates says whether op, known, changed the store (took a revision).
func (op *kvOp) mutates() bool {
	switch op.kind {
	case "put":
		return true
	case "txn":
		return op.succeeded
	case "delete":
		return op.deleted > 0
	}
	return false
}

// compaction is one Compact request.
type compaction struct {
	rev       int64
	call, ret int64
	err       error
}

// history is what every client saw.
type history struct {
	start time.Time
	// keepAliveBound lets an acknowledged keep-alive raise the bound
	// below which a lease must not expire, as etcd's robustness tests do.
	// On unless CAIRN_ROBUSTNESS_KEEPALIVE_BOUND=0 (seed 9101 found a
	// deposed leader acknowledging keep-alives; fixed by ensureLeadership,
	// docs/robustness.md); the grant's bound always holds.
	keepAliveBound bool

	mu struct {
		sync.Mutex
		ops         []*kvOp
		compactions []compaction
		watches     []*watchSession
		lastRev     int64 // highest header revision seen
		leases      int   // granted
		// expiries lower-bounds each short lease's expiry: nanoseconds
		// since the start, the call of the last acknowledged grant or
		// keep-alive plus the TTL it returned.
		expiries map[int64]int64
		// goneAt is, per lease, the earliest time a response said the
		// lease was not found: by then it had expired or been revoked.
		// It bounds when a revoke with unknown outcome, or an expiry,
		// took effect, which keeps porcupine's search small.
		goneAt  map[int64]int64
		granted []int64
	}
}

func (h *history) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *history) add(op *kvOp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.ops = append(h.mu.ops, op)
	h.mu.lastRev = max(h.mu.lastRev, op.rev)
}

func (h *history) lastRev() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.lastRev
}

// definite says whether err means the request certainly had no effect.
func definite(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound) || errors.Is(err, rpctypes.ErrCompacted) ||
		errors.Is(err, rpctypes.ErrFutureRev)
}

// kvClient runs one client's requests until ctx ends.
func (h *history) kvClient(ctx context.Context, id int, cli *clientv3.Client, rng *rand.Rand) {
	var leases []int64
	modRev := map[string]int64{} // the last mod_revision this client saw per key
	tick := time.NewTicker(time.Second / clientRate)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		op := &kvOp{client: id, key: keyName(rng.Intn(numKeys)), value: fmt.Sprintf("c%d-%d", id, i)}
		rctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		op.call = h.now()
		var err error
		switch p := rng.Intn(100); {
		case p < 30:
			op.kind, op.value = "get", ""
			var r *clientv3.GetResponse
			if r, err = cli.Get(rctx, op.key); err == nil {
				op.rev = r.Header.Revision
				if len(r.Kvs) > 0 {
					op.found, op.got, op.gotMod = true, string(r.Kvs[0].Value), r.Kvs[0].ModRevision
				}
			}
		case p < 55:
			op.kind = "put"
			var r *clientv3.PutResponse
			if r, err = cli.Put(rctx, op.key, op.value); err == nil {
				op.rev = r.Header.Revision
			}
		case p < 70:
			op.kind, op.expRev = "txn", modRev[op.key]
			var r *clientv3.TxnResponse
			r, err = cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(op.key), "=", op.expRev)).
				Then(clientv3.OpPut(op.key, op.value)).Else(clientv3.OpGet(op.key)).Commit()
			if err == nil {
				op.rev, op.succeeded = r.Header.Revision, r.Succeeded
				if !r.Succeeded {
					if kvs := r.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
						op.found, op.got, op.gotMod = true, string(kvs[0].Value), kvs[0].ModRevision
					}
				}
			}
		case p < 78:
			op.kind, op.value = "delete", ""
			var r *clientv3.DeleteResponse
			if r, err = cli.Delete(rctx, op.key); err == nil {
				op.rev, op.deleted = r.Header.Revision, r.Deleted
			}
		case p < 88 && len(leases) > 0:
			op.kind, op.lease = "put", leases[rng.Intn(len(leases))]
			var r *clientv3.PutResponse
			if r, err = cli.Put(rctx, op.key, op.value, clientv3.WithLease(clientv3.LeaseID(op.lease))); err == nil {
				op.rev = r.Header.Revision
			}
		case p < 94 && len(leases) < 2:
			// A grant touches no key: not part of the KV history.
			ttl, short := int64(leaseTTL), rng.Intn(2) == 0
			if short {
				ttl = int64(shortTTL + rng.Intn(4))
			}
			r, err := cli.Grant(rctx, ttl)
			cancel()
			if err == nil {
				leases = append(leases, int64(r.ID))
				h.mu.Lock()
				h.mu.leases++
				h.mu.granted = append(h.mu.granted, int64(r.ID))
				if short {
					h.mu.expiries[int64(r.ID)] = op.call + r.TTL*int64(time.Second)
				}
				h.mu.Unlock()
			}
			continue
		case p < 97 && len(leases) > 0:
			id := leases[rng.Intn(len(leases))]
			r, err := cli.KeepAliveOnce(rctx, clientv3.LeaseID(id))
			cancel()
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				leases = slices.DeleteFunc(leases, func(l int64) bool { return l == id })
				h.leaseGone(id, h.now())
			}
			if err == nil && r.TTL > 0 && h.keepAliveBound {
				h.mu.Lock()
				if _, ok := h.mu.expiries[id]; ok {
					h.mu.expiries[id] = max(h.mu.expiries[id], op.call+r.TTL*int64(time.Second))
				}
				h.mu.Unlock()
			}
			continue
		case p < 100 && len(leases) > 0:
			op.kind, op.lease, op.key, op.value = "revoke", leases[0], "", ""
			leases = leases[1:]
			var r *clientv3.LeaseRevokeResponse
			if r, err = cli.Revoke(rctx, clientv3.LeaseID(op.lease)); err == nil {
				op.rev = r.Header.Revision
			}
		default:
			cancel()
			continue
		}
		cancel()
		op.ret = h.now()
		notFound := errors.Is(err, rpctypes.ErrLeaseNotFound)
		if notFound { // expired
			leases = slices.DeleteFunc(leases, func(l int64) bool { return l == op.lease })
			h.leaseGone(op.lease, op.ret)
		}
		switch {
		case err == nil:
		case op.kind == "revoke" && notFound:
			// It may answer clientv3's retry of a revoke that did
			// happen: its outcome is unknown, but it is over.
			op.unknown, op.rev = true, 0
		case op.kind == "get" || definite(err):
			continue // no effect
		default:
			op.unknown, op.ret, op.rev = true, math.MaxInt64, 0
		}
		switch {
		case op.unknown:
		case op.kind == "put" || op.kind == "txn" && op.succeeded:
			modRev[op.key] = op.rev
		case op.kind == "get" || op.kind == "txn":
			modRev[op.key] = op.gotMod
		case op.kind == "delete":
			modRev[op.key] = 0
		}
		h.add(op)
	}
}

// leaseGone records that a response at time at said lease was not found.
func (h *history) leaseGone(lease, at int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.mu.goneAt[lease]; !ok || at < t {
		h.mu.goneAt[lease] = at
	}
}

// probeLeases asks, after the traffic, for every lease not yet known to be
// gone; a lease not found is gone by the time of the answer.
func (h *history) probeLeases(cli *clientv3.Client) {
	h.mu.Lock()
	var ids []int64
	for _, id := range h.mu.granted {
		if _, ok := h.mu.goneAt[id]; !ok {
			ids = append(ids, id)
		}
	}
	h.mu.Unlock()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		r, err := cli.TimeToLive(ctx, clientv3.LeaseID(id))
		cancel()
		if err == nil && r.TTL == -1 {
			h.leaseGone(id, h.now())
		}
	}
}

// compactor compacts to a revision a little behind the newest it has seen,
// every interval, until ctx ends.
func (h *history) compactor(ctx context.Context, cli *clientv3.Client, every time.Duration) {
	var prev int64
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev := prev
		prev = h.lastRev()
		if rev <= 1 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, opTimeout)
		c := compaction{rev: rev, call: h.now()}
		_, c.err = cli.Compact(rctx, rev)
		cancel()
		c.ret = h.now()
		h.mu.Lock()
		h.mu.compactions = append(h.mu.compactions, c)
		h.mu.Unlock()
	}
}

// watchSession is one Watch call and everything it delivered.
type watchSession struct {
	watcher  int
	key, end string // the range; end "" for one key
	startRev int64
	prevKV   bool
	resps    []watchResp
}

type watchResp struct {
	at          int64 // receive time
	rev         int64 // header revision
	progress    bool
	compactRev  int64
	canceled    bool
	cancelCause string
	events      []event
}

type event struct {
	typ                        mvccpb.Event_EventType
	key, value                 string
	modRev, createRev, version int64
	lease                      int64
	hasPrev                    bool
	prevValue                  string
	prevMod                    int64
}

func (w *watchSession) contains(key string) bool {
	if w.end == "" {
		return key == w.key
	}
	return key >= w.key && (w.end == "\x00" || key < w.end)
}

// watcher runs watch sessions of one shape until ctx ends; a session ends
// on a cancel (compaction) or, for the restarting shapes, after a while.
func (h *history) watcher(ctx context.Context, id int, cli *clientv3.Client, rng *rand.Rand) {
	for first := true; ctx.Err() == nil; first = false {
		s := &watchSession{watcher: id, prevKV: id%2 == 0}
		lifetime := time.Duration(math.MaxInt64)
		switch id % numWatches {
		case 0: // the whole key space, from the first revision
			s.key, s.end = "k", clientv3.GetPrefixRangeEnd("k")
			if first {
				s.startRev = 1
			}
		case 1:
			s.key, s.end = "k0", clientv3.GetPrefixRangeEnd("k0")
		case 2:
			s.key = keyName(3)
		case 3:
			s.key, s.end = keyName(5), keyName(15)
			lifetime = time.Duration(2+rng.Intn(5)) * time.Second
		case 4: // restarts often from a past, maybe compacted, revision
			s.key, s.end = "k", clientv3.GetPrefixRangeEnd("k")
			lifetime = time.Duration(1+rng.Intn(3)) * time.Second
		case 5:
			s.key, s.end = "k1", clientv3.GetPrefixRangeEnd("k1")
			lifetime = time.Duration(3+rng.Intn(5)) * time.Second
		}
		if s.startRev == 0 {
			// A past revision: up to 300 back from the newest seen, so
			// some are below a compaction (the compactor trails by
			// about 3 s of writes).
			last := h.lastRev()
			if last == 0 {
				rctx, cancel := context.WithTimeout(ctx, opTimeout)
				r, err := cli.Get(rctx, "k")
				cancel()
				if err != nil {
					continue
				}
				last = r.Header.Revision
			}
			s.startRev = max(1, last-int64(rng.Intn(300)))
		}
		h.mu.Lock()
		h.mu.watches = append(h.mu.watches, s)
		h.mu.Unlock()
		h.watch(ctx, s, cli, lifetime, id == 5)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watch runs one session.
func (h *history) watch(ctx context.Context, s *watchSession, cli *clientv3.Client, lifetime time.Duration, requestProgress bool) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if lifetime < time.Hour {
		t := time.AfterFunc(lifetime, cancel)
		defer t.Stop()
	}
	opts := []clientv3.OpOption{clientv3.WithRev(s.startRev), clientv3.WithProgressNotify()}
	if s.end != "" {
		opts = append(opts, clientv3.WithRange(s.end))
	}
	if s.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if requestProgress {
		go func() {
			for wctx.Err() == nil {
				select {
				case <-wctx.Done():
				case <-time.After(300 * time.Millisecond):
					cli.RequestProgress(wctx)
				}
			}
		}()
	}
	for wr := range cli.Watch(wctx, s.key, opts...) {
		r := watchResp{at: h.now(), rev: wr.Header.Revision, progress: wr.IsProgressNotify(),
			compactRev: wr.CompactRevision, canceled: wr.Canceled, cancelCause: wr.CancelReason}
		for _, e := range wr.Events {
			ev := event{typ: e.Type, key: string(e.Kv.Key), value: string(e.Kv.Value), modRev: e.Kv.ModRevision,
				createRev: e.Kv.CreateRevision, version: e.Kv.Version, lease: e.Kv.Lease}
			if e.PrevKv != nil {
				ev.hasPrev, ev.prevValue, ev.prevMod = true, string(e.PrevKv.Value), e.PrevKv.ModRevision
			}
			r.events = append(r.events, ev)
		}
		h.mu.Lock()
		s.resps = append(s.resps, r)
		h.mu.Unlock()
		if wr.Canceled {
			return
		}
	}
}
