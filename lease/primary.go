package lease

import (
	"container/heap"
	"sort"
	"sync"
	"time"
)

// primaryState is the soft state of a primary lessor: when each lease
// expires, the heap of expiries, and the checkpoints in flight. Nothing
// here is replicated or persisted: a new primary rebuilds it (Promote).
type primaryState struct {
	mu      sync.Mutex
	primary bool
	leases  map[int64]*expiring
	expiry  expiryHeap
	// inflight holds the leases of a checkpoint proposal not yet applied;
	// renewing one waits for it (see Renew).
	inflight map[int64]chan struct{}
}

// expiring is one lease as the primary tracks it: its TTLs as apply last
// left them, and its Expiry.
type expiring struct {
	Lease
	index int // in the expiry heap
}

func (l *Lease) effectiveTTL() int64 {
	if l.RemainingTTL > 0 {
		return l.RemainingTTL
	}
	return l.TTL
}

// Promote makes this lessor primary: every lease expires its remaining TTL
// (the checkpointed one, else the full TTL) plus extend from now.
func (le *Lessor) Promote(extend time.Duration) {
	le.primary.mu.Lock()
	defer le.primary.mu.Unlock()
	le.promoteLocked(extend)
}

// promoteLocked rebuilds the soft state from the replicated one, which it
// copies under state.mu (once per election, or per snapshot installed).
// primary.mu is held.
func (le *Lessor) promoteLocked(extend time.Duration) {
	le.state.Lock()
	leases := make([]Lease, 0, len(le.state.leases))
	for id, l := range le.state.leases {
		leases = append(leases, l.lease(id))
	}
	le.state.primary = true
	// Every change queued so far is in the copy.
	le.changes.Lock()
	le.changes.q = nil
	le.changes.Unlock()
	le.state.Unlock()

	p := &le.primary
	p.primary = true
	now := le.now()
	p.leases = make(map[int64]*expiring, len(leases))
	p.expiry = make(expiryHeap, 0, len(leases))
	for _, l := range leases {
		e := &expiring{Lease: l, index: len(p.expiry)}
		e.Expiry = now.Add(extend + time.Duration(e.effectiveTTL())*time.Second)
		p.leases[l.ID] = e
		p.expiry = append(p.expiry, e)
	}
	heap.Init(&p.expiry)
}

// Demote stops expiry tracking (another member leads).
func (le *Lessor) Demote() {
	le.primary.mu.Lock()
	defer le.primary.mu.Unlock()
	le.state.Lock()
	le.state.primary = false
	le.changes.Lock()
	le.changes.q = nil
	le.changes.Unlock()
	le.state.Unlock()
	p := &le.primary
	p.primary, p.leases, p.expiry = false, nil, nil
}

// IsPrimary reports whether this lessor tracks expiry.
func (le *Lessor) IsPrimary() bool {
	le.primary.mu.Lock()
	defer le.primary.mu.Unlock()
	return le.primary.primary
}

// catchUpLocked applies the changes apply queued since the last call to
// the soft state. primary.mu is held.
func (le *Lessor) catchUpLocked() {
	le.changes.Lock()
	q := le.changes.q
	le.changes.q = nil
	le.changes.Unlock()
	p := &le.primary
	if !p.primary {
		return
	}
	for _, c := range q {
		e, ok := p.leases[c.lease.ID]
		switch c.kind {
		case changeGrant:
			if ok {
				continue
			}
			e = &expiring{Lease: c.lease}
			e.Expiry = c.at.Add(time.Duration(e.effectiveTTL()) * time.Second)
			p.leases[e.ID] = e
			heap.Push(&p.expiry, e)
		case changeRevoke:
			if ok {
				heap.Remove(&p.expiry, e.index)
				delete(p.leases, e.ID)
			}
		case changeCheckpoint:
			if !ok {
				continue
			}
			e.RemainingTTL = c.lease.RemainingTTL
			if e.RemainingTTL == 0 {
				// A reset comes from a renewal: the lease lives a full
				// TTL from when it applied (never less than it had).
				if exp := c.at.Add(time.Duration(e.TTL) * time.Second); exp.After(e.Expiry) {
					e.Expiry = exp
					heap.Fix(&p.expiry, e.index)
				}
			}
		}
	}
}

// Leases lists every lease, soonest expiry first (as etcd lists them),
// then by ID. Expiry is set only on a primary lessor.
func (le *Lessor) Leases() []Lease {
	le.primary.mu.Lock()
	var out []Lease
	if le.catchUpLocked(); le.primary.primary {
		out = make([]Lease, 0, len(le.primary.leases))
		for _, e := range le.primary.leases {
			out = append(out, e.Lease)
		}
	} else {
		le.state.Lock()
		out = make([]Lease, 0, len(le.state.leases))
		for id, l := range le.state.leases {
			out = append(out, l.lease(id))
		}
		le.state.Unlock()
	}
	le.primary.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Expiry.Equal(out[j].Expiry) {
			return out[i].Expiry.Before(out[j].Expiry)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Renew restarts lease id's TTL from now and returns the TTL. needsReset
// reports a checkpointed remaining TTL that the caller must first clear
// through Raft (Checkpoint with 0), so a restart cannot bring it back; wait
// is non-nil while a checkpoint of the lease is on its way through Raft:
// the caller waits for it, then renews again (else the checkpoint, made
// before this renewal, would land after it and come back on a restart).
func (le *Lessor) Renew(id int64) (ttl int64, needsReset bool, wait <-chan struct{}, err error) {
	le.primary.mu.Lock()
	defer le.primary.mu.Unlock()
	le.catchUpLocked()
	p := &le.primary
	if !p.primary {
		return 0, false, nil, ErrNotPrimary
	}
	e, ok := p.leases[id]
	if !ok || !le.now().Before(e.Expiry) {
		// An expired lease is as good as revoked: its revoke is on its way.
		return 0, false, nil, ErrLeaseNotFound
	}
	if ch, ok := p.inflight[id]; ok {
		return 0, false, ch, nil
	}
	if e.RemainingTTL > 0 {
		return 0, true, nil, nil
	}
	e.Expiry = le.now().Add(time.Duration(e.TTL) * time.Second)
	heap.Fix(&p.expiry, e.index)
	return e.TTL, false, nil, nil
}

// Remaining is lease id's remaining time to live: until its expiry on a
// primary lessor, else its checkpointed remaining TTL or its TTL.
func (le *Lessor) Remaining(id int64) (time.Duration, bool) {
	le.primary.mu.Lock()
	defer le.primary.mu.Unlock()
	if le.catchUpLocked(); le.primary.primary {
		e, ok := le.primary.leases[id]
		if !ok {
			return 0, false
		}
		return e.Expiry.Sub(le.now()), true
	}
	le.state.Lock()
	defer le.state.Unlock()
	l, ok := le.state.leases[id]
	if !ok {
		return 0, false
	}
	lease := l.lease(id)
	return time.Duration(lease.effectiveTTL()) * time.Second, true
}

// Expired returns up to limit leases whose expiry has passed, earliest first.
func (le *Lessor) Expired(limit int) []int64 {
	le.primary.mu.Lock()
	defer le.primary.mu.Unlock()
	le.catchUpLocked()
	p := &le.primary
	now := le.now()
	var out []int64
	// The heap's order is only partial: pop, collect, push back.
	var popped []*expiring
	for len(p.expiry) > 0 && len(out) < limit {
		e := p.expiry[0]
		if now.Before(e.Expiry) {
			break
		}
		heap.Pop(&p.expiry)
		popped = append(popped, e)
		out = append(out, e.ID)
	}
	for _, e := range popped {
		heap.Push(&p.expiry, e)
	}
	return out
}

// CheckpointDue lists up to limit leases whose remaining TTL has run down
// by half their TTL (and at least a second) since it was last recorded,
// with the remaining TTL to record, in seconds. Leases kept alive (clients
// renew every third of the TTL) never qualify, so keep-alives stay off
// Raft; a lease left alone is checkpointed at half-life and a restart then
// continues from there instead of granting the full TTL again.
//
// The returned leases count as in flight until CheckpointDone: renewing one
// waits for the checkpoint first. It visits every lease, under the soft
// state's lock only: apply goes on meanwhile.
func (le *Lessor) CheckpointDue(limit int) map[int64]int64 {
	le.primary.mu.Lock()
	defer le.primary.mu.Unlock()
	le.catchUpLocked()
	p := &le.primary
	now := le.now()
	out := map[int64]int64{}
	for _, e := range p.leases {
		if len(out) >= limit {
			break
		}
		// Rounded up, as etcd does: a checkpoint never shortens a lease.
		left := int64((e.Expiry.Sub(now) + time.Second - 1) / time.Second)
		if left <= 0 {
			continue // expiring: the revoke is on its way
		}
		if e.effectiveTTL()-left >= max(1, e.TTL/2) {
			out[e.ID] = left
		}
	}
	if p.inflight == nil {
		p.inflight = map[int64]chan struct{}{}
	}
	for id := range out {
		if _, ok := p.inflight[id]; !ok {
			p.inflight[id] = make(chan struct{})
		}
	}
	return out
}

// CheckpointDone ends the in-flight state of leases CheckpointDue returned
// (applied or not) and wakes the renewals waiting on them.
func (le *Lessor) CheckpointDone(ids []int64) {
	le.primary.mu.Lock()
	defer le.primary.mu.Unlock()
	for _, id := range ids {
		if ch, ok := le.primary.inflight[id]; ok {
			close(ch)
			delete(le.primary.inflight, id)
		}
	}
}

// releaseInflightLocked ends every checkpoint in flight. primary.mu is held.
func (p *primaryState) releaseInflightLocked() {
	for id, ch := range p.inflight {
		close(ch)
		delete(p.inflight, id)
	}
}

// expiryHeap orders leases by expiry.
type expiryHeap []*expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].Expiry.Before(h[j].Expiry) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*expiring)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
