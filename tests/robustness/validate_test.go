package robustness

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// report collects violations; the test fails if there is any.
type report struct {
	violations   []string
	notes        []string
	inconclusive bool // porcupine ran out of time
}

func (r *report) violate(format string, args ...any) {
	if len(r.violations) < 200 {
		r.violations = append(r.violations, fmt.Sprintf(format, args...))
	}
}

func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// regState is one key's state in the porcupine model: its value ("" when
// absent: no client writes an empty value), the lease attached, and the
// leases revoked so far (sorted, comma-separated) among those this key's
// history uses.
type regState struct {
	value   string
	lease   int64
	revoked string
}

func (s regState) isRevoked(lease int64) bool {
	return slices.Contains(strings.Split(s.revoked, ","), strconv.FormatInt(lease, 10))
}

func (s regState) revoke(lease int64) regState {
	if s.isRevoked(lease) {
		return s
	}
	ids := append(strings.Split(s.revoked, ","), strconv.FormatInt(lease, 10))
	if s.revoked == "" {
		ids = ids[1:]
	}
	sort.Strings(ids)
	s.revoked = strings.Join(ids, ",")
	if s.lease == lease {
		s.value, s.lease = "", 0
	}
	return s
}

// kvModel is the porcupine model of the KV history: every key is a
// register, a lease revoke deletes the keys attached to it. revOf maps a
// value to the mod_revision it was written at (values are unique), as far
// as anything in the run observed it; it decides mod_revision compares.
func kvModel(revOf map[string]int64) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			leaseKeys := map[int64][]string{}
			for _, o := range history {
				op := o.Input.(*kvOp)
				if op.kind == "put" && op.lease != 0 {
					leaseKeys[op.lease] = append(leaseKeys[op.lease], op.key)
				}
			}
			for _, o := range history {
				op := o.Input.(*kvOp)
				if op.kind != "revoke" {
					byKey[op.key] = append(byKey[op.key], o)
					continue
				}
				seen := map[string]bool{}
				for _, k := range leaseKeys[op.lease] {
					if !seen[k] {
						seen[k] = true
						byKey[k] = append(byKey[k], o)
					}
				}
			}
			var out [][]porcupine.Operation
			for _, ops := range byKey {
				out = append(out, ops)
			}
			return out
		},
		Init: func() any { return regState{} },
		Step: func(state, input, _ any) (bool, any) {
			st, op := state.(regState), input.(*kvOp)
			present := st.value != ""
			switch op.kind {
			case "get":
				return op.found == present && op.got == st.value, st
			case "put":
				if op.lease != 0 && st.isRevoked(op.lease) {
					return op.unknown, st // a put with a revoked lease fails
				}
				return true, regState{value: op.value, lease: op.lease, revoked: st.revoked}
			case "txn":
				holds := op.expRev == 0 && !present || present && op.expRev != 0 && revOf[st.value] == op.expRev
				next := regState{value: op.value, revoked: st.revoked}
				switch {
				case op.unknown && holds:
					return true, next
				case op.unknown:
					return true, st
				case op.succeeded:
					return holds, next
				default:
					return !holds && op.found == present && op.got == st.value, st
				}
			case "delete":
				ok := op.unknown || (op.deleted == 1) == present
				return ok, regState{revoked: st.revoked}
			case "revoke":
				return true, st.revoke(op.lease)
			}
			return false, st
		},
		DescribeOperation: func(input, _ any) string {
			op := input.(*kvOp)
			if op.client == -1 {
				return fmt.Sprintf("lease %x expires", op.lease)
			}
			s := fmt.Sprintf("c%d %s %s", op.client, op.kind, op.key)
			switch op.kind {
			case "put":
				s += fmt.Sprintf(" %q lease=%x", op.value, op.lease)
			case "txn":
				s += fmt.Sprintf(" if mod=%d then %q", op.expRev, op.value)
			case "revoke":
				s += fmt.Sprintf(" %x", op.lease)
			}
			if op.unknown {
				return s + " -> ?"
			}
			return s + fmt.Sprintf(" -> rev=%d found=%v %q mod=%d ok=%v deleted=%d", op.rev, op.found, op.got, op.gotMod, op.succeeded, op.deleted)
		},
		DescribeState: func(state any) string {
			st := state.(regState)
			return fmt.Sprintf("%q lease=%x revoked=[%s]", st.value, st.lease, st.revoked)
		},
	}
}

// eventKey names one event of the store: a revision and a key.
type eventKey struct {
	rev int64
	key string
}

// replay is every event any watcher (or the final read-back) saw, by
// revision and key: the reference the watchers are checked against.
type replay struct {
	events map[eventKey]event
	revs   map[int64]bool
	// firstSeen is when a value was first observed anywhere.
	firstSeen map[string]int64
}

// checker validates one run.
type checker struct {
	r       *report
	ops     []*kvOp
	watches []*watchSession
	comps   []compaction
	// expiries: lease -> the earliest its expiry may happen (see
	// history.mu.expiries); each becomes a revoke with unknown outcome.
	expiries map[int64]int64
	// goneAt: lease -> when a response first said it was not found.
	goneAt  map[int64]int64
	final   []event // events from the final read-back watch
	finalLo int64   // the final watch's start revision
	lastRev int64   // the cluster's final revision

	revOf  map[string]int64  // value -> mod_revision
	keyOf  map[string]string // value -> key, for every value a client tried to write
	replay replay

	illegal *porcupine.LinearizationInfo // set when porcupine rejects the history
}

// observe records that value was written at rev, seen at time at.
func (c *checker) observe(value string, rev, at int64, where string) {
	if old, ok := c.revOf[value]; ok && old != rev {
		c.r.violate("value %q seen at mod_revision %d and %d (%s)", value, old, rev, where)
		return
	}
	c.revOf[value] = rev
	if t, ok := c.replay.firstSeen[value]; !ok || at < t {
		c.replay.firstSeen[value] = at
	}
}

func (c *checker) addEvent(e event, where string) {
	k := eventKey{e.modRev, e.key}
	if old, ok := c.replay.events[k]; ok {
		if old.typ != e.typ || old.value != e.value {
			c.r.violate("revision %d key %s: %s %q in one place, %s %q in another (%s)", k.rev, k.key, old.typ, old.value, e.typ, e.value, where)
		}
		return
	}
	c.replay.events[k] = e
	c.replay.revs[k.rev] = true
}

// run performs every check.
func (c *checker) run(timeout time.Duration) {
	c.revOf, c.keyOf = map[string]int64{}, map[string]string{}
	c.replay = replay{events: map[eventKey]event{}, revs: map[int64]bool{}, firstSeen: map[string]int64{}}
	for _, op := range c.ops {
		if op.value != "" {
			c.keyOf[op.value] = op.key
		}
	}
	// Observations: responses, then watch events.
	for _, op := range c.ops {
		if op.unknown {
			continue
		}
		if op.kind == "put" || op.kind == "txn" && op.succeeded {
			c.observe(op.value, op.rev, op.ret, "write response")
		}
		if op.found {
			c.observe(op.got, op.gotMod, op.ret, "read")
		}
	}
	for _, w := range c.watches {
		for _, r := range w.resps {
			for _, e := range r.events {
				c.checkEvent(e, fmt.Sprintf("watcher %d", w.watcher))
				c.addEvent(e, fmt.Sprintf("watcher %d", w.watcher))
				if e.typ == mvccpb.PUT {
					c.observe(e.value, e.modRev, r.at, fmt.Sprintf("watcher %d", w.watcher))
				}
			}
		}
	}
	for _, e := range c.final {
		c.checkEvent(e, "final watch")
		c.addEvent(e, "final watch")
		if e.typ == mvccpb.PUT {
			c.observe(e.value, e.modRev, math.MaxInt64-1, "final watch")
		}
	}
	c.checkRevisions()
	c.checkEventChains()
	c.checkWatches()
	c.checkAcknowledged()
	c.checkLinearizable(timeout)
}

// checkEvent checks one event on its own.
func (c *checker) checkEvent(e event, where string) {
	if e.typ != mvccpb.PUT {
		return
	}
	if k, ok := c.keyOf[e.value]; !ok || k != e.key {
		c.r.violate("%s: event put %s=%q at %d, a value no client wrote to that key", where, e.key, e.value, e.modRev)
	}
	if (e.version == 1) != (e.createRev == e.modRev) {
		c.r.violate("%s: event put %s at %d has version %d and create_revision %d", where, e.key, e.modRev, e.version, e.createRev)
	}
	if e.hasPrev && e.prevMod >= e.modRev {
		c.r.violate("%s: event put %s at %d has a prev_kv at %d", where, e.key, e.modRev, e.prevMod)
	}
}

// checkEventChains checks each key's events against the event before it
// in the replay: a put's version and create_revision, and the prev_kv of
// every event any watcher got, follow from it. Only where the replay is
// gapless, so that "the event before" is known.
func (c *checker) checkEventChains() {
	if !c.gapless() {
		c.r.note("event chains: not checked, the replay has gaps")
		return
	}
	byKey := map[string][]event{}
	for _, e := range c.replay.events {
		byKey[e.key] = append(byKey[e.key], e)
	}
	for _, evs := range byKey {
		sort.Slice(evs, func(i, j int) bool { return evs[i].modRev < evs[j].modRev })
	}
	// before returns the replay's event on e's key just before e.
	before := func(e event) (event, bool) {
		evs := byKey[e.key]
		i := sort.Search(len(evs), func(i int) bool { return evs[i].modRev >= e.modRev })
		if i == 0 {
			return event{}, false
		}
		return evs[i-1], true
	}
	var versions, prevs int
	for _, evs := range byKey {
		for i := 1; i < len(evs); i++ {
			prev, e := evs[i-1], evs[i]
			if e.typ != mvccpb.PUT {
				continue
			}
			versions++
			if prev.typ == mvccpb.PUT && (e.version != prev.version+1 || e.createRev != prev.createRev) {
				c.r.violate("put %s at %d: version %d created at %d, after a put at %d with version %d created at %d", e.key, e.modRev, e.version, e.createRev, prev.modRev, prev.version, prev.createRev)
			}
			if prev.typ == mvccpb.DELETE && e.version != 1 {
				c.r.violate("put %s at %d: version %d after a delete at %d", e.key, e.modRev, e.version, prev.modRev)
			}
		}
	}
	for i, w := range c.watches {
		for _, r := range w.resps {
			for _, e := range r.events {
				prev, ok := before(e)
				if !ok || !w.prevKV {
					continue
				}
				prevs++
				switch {
				case prev.typ == mvccpb.PUT && !e.hasPrev:
					// etcd may omit prev_kv once the previous version is
					// compacted; no fault.
				case prev.typ == mvccpb.PUT && (e.prevMod != prev.modRev || e.prevValue != prev.value):
					c.r.violate("watch session %d: %s %s at %d has prev_kv %q at %d, but the event before it is put %q at %d", i, e.typ, e.key, e.modRev, e.prevValue, e.prevMod, prev.value, prev.modRev)
				case prev.typ == mvccpb.DELETE && e.hasPrev:
					c.r.violate("watch session %d: %s %s at %d has prev_kv %q at %d, but the key was deleted at %d", i, e.typ, e.key, e.modRev, e.prevValue, e.prevMod, prev.modRev)
				}
			}
		}
	}
	c.r.note("event chains: %d versions and %d prev_kvs checked against the event before them", versions, prevs)
}

// checkRevisions: each revision has one writer; a request that starts
// after another returned sees at least its revision, and a write that
// starts after another write returned gets a higher one.
func (c *checker) checkRevisions() {
	writer := map[int64]*kvOp{}
	var known []*kvOp
	for _, op := range c.ops {
		if op.unknown {
			continue
		}
		known = append(known, op)
		if op.found && op.gotMod > op.rev {
			c.r.violate("c%d %s %s at header revision %d read mod_revision %d", op.client, op.kind, op.key, op.rev, op.gotMod)
		}
		if op.mutates() {
			if o, ok := writer[op.rev]; ok {
				c.r.violate("revision %d written twice: c%d %s %s and c%d %s %s", op.rev, o.client, o.kind, o.key, op.client, op.kind, op.key)
			}
			writer[op.rev] = op
			if e, ok := c.replay.events[eventKey{op.rev, op.key}]; ok {
				if op.kind == "delete" && e.typ != mvccpb.DELETE || op.kind != "delete" && (e.typ != mvccpb.PUT || e.value != op.value) {
					c.r.violate("c%d %s %s %q acknowledged at revision %d, but watchers saw %s %q there", op.client, op.kind, op.key, op.value, op.rev, e.typ, e.value)
				}
			}
		}
	}
	byRet := slices.Clone(known)
	sort.Slice(byRet, func(i, j int) bool { return byRet[i].ret < byRet[j].ret })
	sort.Slice(known, func(i, j int) bool { return known[i].call < known[j].call })
	var maxRev, maxWrite int64
	var maxOp, maxWriteOp *kvOp
	j := 0
	for _, op := range known {
		for ; j < len(byRet) && byRet[j].ret < op.call; j++ {
			if byRet[j].rev > maxRev {
				maxRev, maxOp = byRet[j].rev, byRet[j]
			}
			if byRet[j].mutates() && byRet[j].rev > maxWrite {
				maxWrite, maxWriteOp = byRet[j].rev, byRet[j]
			}
		}
		if op.rev < maxRev {
			c.r.violate("c%d %s %s returned header revision %d, but c%d %s %s had returned %d before it started", op.client, op.kind, op.key, op.rev, maxOp.client, maxOp.kind, maxOp.key, maxRev)
		}
		if op.mutates() && op.rev <= maxWrite {
			c.r.violate("c%d %s %s wrote at revision %d, but c%d %s %s had written at %d before it started", op.client, op.kind, op.key, op.rev, maxWriteOp.client, maxWriteOp.kind, maxWriteOp.key, maxWrite)
		}
	}
}

// checkWatches checks every watch session against the replay.
func (c *checker) checkWatches() {
	compacted := map[int64]bool{}
	for _, cp := range c.comps {
		compacted[cp.rev] = true // with or without a response
	}
	// Revisions sorted, to walk the replay in order.
	var all []eventKey
	for k := range c.replay.events {
		all = append(all, k)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].rev != all[j].rev {
			return all[i].rev < all[j].rev
		}
		return all[i].key < all[j].key
	})
	for i, w := range c.watches {
		name := fmt.Sprintf("watch session %d (watcher %d, [%s,%q) from %d)", i, w.watcher, w.key, w.end, w.startRev)
		var got []eventKey
		seen := map[eventKey]bool{}
		var lastEv, lastProgress int64
		for _, r := range w.resps {
			if len(r.events) > 0 && r.events[0].modRev <= lastEv {
				c.r.violate("%s: a response starts at revision %d after an event at %d", name, r.events[0].modRev, lastEv)
			}
			for _, e := range r.events {
				k := eventKey{e.modRev, e.key}
				switch {
				case !w.contains(e.key):
					c.r.violate("%s: event for %s, outside the range", name, e.key)
				case e.modRev < w.startRev:
					c.r.violate("%s: event at %d, before the start revision", name, e.modRev)
				case seen[k]:
					c.r.violate("%s: event %s at %d twice", name, e.key, e.modRev)
				case e.modRev < lastEv:
					c.r.violate("%s: event at %d after one at %d", name, e.modRev, lastEv)
				case e.modRev <= lastProgress:
					c.r.violate("%s: event at %d after a progress notification at %d", name, e.modRev, lastProgress)
				}
				seen[k] = true
				got = append(got, k)
				lastEv = max(lastEv, e.modRev)
			}
			if r.progress {
				if r.rev < lastEv || r.rev < lastProgress {
					c.r.violate("%s: progress notification at %d after an event at %d or a notification at %d", name, r.rev, lastEv, lastProgress)
				}
				lastProgress = max(lastProgress, r.rev)
			}
			if r.canceled {
				if r.compactRev == 0 {
					c.r.violate("%s: canceled without a compaction: %q", name, r.cancelCause)
					continue
				}
				resume := max(w.startRev, lastEv+1, lastProgress+1)
				if !compacted[r.compactRev] {
					c.r.violate("%s: compaction error at %d, a revision nobody compacted", name, r.compactRev)
				}
				if r.compactRev <= resume {
					c.r.violate("%s: compaction error at %d for a watch that resumes at %d", name, r.compactRev, resume)
				}
			}
		}
		// Reliable: every event of the range between the start and the
		// last revision the session reached.
		last := max(lastEv, lastProgress)
		var want []eventKey
		for _, k := range all {
			if k.rev >= w.startRev && k.rev <= last && w.contains(k.key) {
				want = append(want, k)
			}
		}
		if !slices.Equal(got, want) {
			missing := 0
			for _, k := range want {
				if !seen[k] {
					if missing < 5 {
						c.r.violate("%s: missed event %s at %d (it reached %d)", name, k.key, k.rev, last)
					}
					missing++
				}
			}
			if missing == 0 {
				c.r.violate("%s: events out of order: got %v, want %v", name, got, want)
			}
		}
	}
}

// checkAcknowledged: every acknowledged write is in the final store or
// was seen by a watcher (older than the last compaction).
func (c *checker) checkAcknowledged() {
	var inFinal, inWatch, unverified int
	for _, op := range c.ops {
		if op.unknown || !op.mutates() {
			continue
		}
		e, ok := c.replay.events[eventKey{op.rev, op.key}]
		switch {
		case !ok && op.rev >= c.finalLo:
			c.r.violate("acknowledged c%d %s %s %q at revision %d is not in the final store", op.client, op.kind, op.key, op.value, op.rev)
		case !ok:
			unverified++
		case op.kind == "delete" && e.typ == mvccpb.DELETE, op.kind != "delete" && e.value == op.value:
			if op.rev >= c.finalLo {
				inFinal++
			} else {
				inWatch++
			}
		}
	}
	c.r.note("acknowledged writes: %d in the final store, %d (compacted since) seen by watchers, %d compacted and never watched", inFinal, inWatch, unverified)
}

// gapless says whether the replay has an event at every revision from 2
// to the final one, so a write nobody saw did not happen.
func (c *checker) gapless() bool {
	for rev := int64(2); rev <= c.lastRev; rev++ {
		if !c.replay.revs[rev] {
			return false
		}
	}
	return true
}

// checkLinearizable patches the outcome of writes whose client never
// learned it, from what others observed, and runs porcupine.
func (c *checker) checkLinearizable(timeout time.Duration) {
	gapless := c.gapless()
	var ops []porcupine.Operation
	var patched, dropped, unknown int
	revoked := map[int64]bool{} // by an acknowledged revoke
	revokes := map[int64]bool{} // by any revoke request
	for _, op := range c.ops {
		if op.unknown && (op.kind == "put" || op.kind == "txn") {
			if rev, ok := c.revOf[op.value]; ok {
				p := *op
				p.unknown, p.rev, p.ret, p.succeeded = false, rev, c.replay.firstSeen[op.value], true
				if p.ret < p.call {
					c.r.violate("c%d %s %s %q observed before it was sent", op.client, op.kind, op.key, op.value)
					p.ret = p.call
				}
				op = &p
				patched++
			} else if gapless {
				dropped++
				continue
			}
		}
		if op.kind == "revoke" && op.unknown {
			// Over, effective or not, once the lease was gone.
			if t, ok := c.goneAt[op.lease]; ok && op.ret == math.MaxInt64 {
				p := *op
				p.ret = max(t, op.call+1)
				op = &p
			}
		}
		if op.kind == "revoke" {
			revokes[op.lease] = true
			if !op.unknown {
				revoked[op.lease] = true
			}
		}
		if op.unknown {
			unknown++
		}
		ops = append(ops, porcupine.Operation{ClientId: op.client, Input: op, Call: op.call, Output: nil, Return: op.ret})
	}
	for id, at := range c.expiries {
		ret := int64(math.MaxInt64)
		if t, ok := c.goneAt[id]; ok {
			ret = t
		}
		// After an acknowledged revoke, or gone before it could expire
		// (revoked), an expiry changes nothing.
		if ret <= at && !revokes[id] {
			c.r.violate("lease %x was not found %v before its TTL ran out, and nobody revoked it", id, time.Duration(at-ret))
		}
		if revoked[id] || ret <= at {
			continue
		}
		op := &kvOp{client: -1, kind: "revoke", lease: id, call: at, ret: ret, unknown: true}
		ops = append(ops, porcupine.Operation{ClientId: -1, Input: op, Call: op.call, Return: op.ret})
	}
	c.r.note("linearizability: %d operations (%d outcomes learned from observers, %d never happened, %d unknown; replay gapless: %v)", len(ops), patched, dropped, unknown, gapless)
	res, info := porcupine.CheckOperationsVerbose(kvModel(c.revOf), ops, timeout)
	switch res {
	case porcupine.Ok:
		c.r.note("linearizability: ok")
	case porcupine.Illegal:
		c.r.violate("the KV history is not linearizable")
		c.illegal = &info
	default:
		c.r.note("linearizability: check did not finish in %v (inconclusive)", timeout)
		c.r.inconclusive = true
	}
}
