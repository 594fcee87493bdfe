package lease

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

// Lease is a snapshot of one lease.
type Lease struct {
	ID int64
	// TTL is the granted TTL in seconds.
	TTL int64
	// RemainingTTL is the last checkpointed remaining TTL in seconds, 0 if none.
	RemainingTTL int64
	// Expiry is when the lease expires; zero unless this member is primary.
	Expiry time.Time
}

type lease struct {
	Lease
	index int // in the expiry heap, -1 if absent
}

// Lessor holds every lease in memory (IDs, TTLs and expiry times; the
// attached keys stay on disk) and persists changes into apply's batches.
type Lessor struct {
	db     *pebble.DB
	now    func() time.Time
	minTTL int64

	mu      sync.Mutex
	leases  map[int64]*lease
	expiry  expiryHeap // primary only
	primary bool
	// inflight holds the leases of a checkpoint proposal not yet applied;
	// renewing one waits for it (see Renew).
	inflight map[int64]chan struct{}
}

// Config configures a Lessor.
type Config struct {
	// MinTTL is the smallest TTL in seconds; smaller grants are raised to
	// it (etcd: 1.5 election timeouts, rounded up).
	MinTTL int64
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Open loads the leases from storage. The lessor starts as a non-primary:
// Promote makes it track expiry.
func Open(eng *storage.Engine, cfg Config) (*Lessor, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	le := &Lessor{db: eng.DB, now: cfg.Now, minTTL: cfg.MinTTL}
	var err error
	if le.leases, err = loadLeases(eng.DB); err != nil {
		return nil, err
	}
	return le, nil
}

func loadLeases(db pebble.Reader) (map[int64]*lease, error) {
	leases := map[int64]*lease{}
	it, err := db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceLeases},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceLeases),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 9 || len(v) != 16 {
			return nil, fmt.Errorf("lease: corrupt lease record %x", k)
		}
		id := int64(binary.BigEndian.Uint64(k[1:]))
		leases[id] = &lease{Lease: Lease{ID: id, TTL: int64(binary.BigEndian.Uint64(v[:8])), RemainingTTL: int64(binary.BigEndian.Uint64(v[8:]))}, index: -1}
	}
	return leases, it.Error()
}

// Restore reloads the leases from storage after a snapshot replaced them.
// A primary lessor restarts their expiry as Promote does.
func (le *Lessor) Restore(extend time.Duration) error {
	leases, err := loadLeases(le.db)
	if err != nil {
		return err
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	le.leases = leases
	le.expiry = le.expiry[:0]
	for id, ch := range le.inflight {
		close(ch)
		delete(le.inflight, id)
	}
	if le.primary {
		for _, l := range le.leases {
			le.refreshLocked(l, extend)
		}
	}
	return nil
}

func leaseKey(id int64) []byte {
	return storage.AppendUint64([]byte{storage.KeyspaceLeases}, uint64(id))
}

func attachPrefix(id int64) []byte {
	return storage.AppendUint64([]byte{storage.KeyspaceAttach}, uint64(id))
}

func attachKey(id int64, key []byte) []byte { return storage.AppendEscaped(attachPrefix(id), key) }

func persist(b *pebble.Batch, l *lease) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(l.TTL))
	v = binary.BigEndian.AppendUint64(v, uint64(l.RemainingTTL))
	return b.Set(leaseKey(l.ID), v, nil)
}

// LeaseExists reports whether lease id exists.
func (le *Lessor) LeaseExists(id int64) bool {
	le.mu.Lock()
	defer le.mu.Unlock()
	_, ok := le.leases[id]
	return ok
}

// Grant creates lease id with ttl seconds (raised to the minimum TTL) in
// batch b. It returns ErrLeaseNotFound for id 0, ErrLeaseTTLTooLarge and
// ErrLeaseExists as etcd.
func (le *Lessor) Grant(b *pebble.Batch, id, ttl int64) (Lease, error) {
	if id == NoLease {
		return Lease{}, ErrLeaseNotFound
	}
	if ttl > MaxLeaseTTL {
		return Lease{}, ErrLeaseTTLTooLarge
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if _, ok := le.leases[id]; ok {
		return Lease{}, ErrLeaseExists
	}
	l := &lease{Lease: Lease{ID: id, TTL: max(ttl, le.minTTL)}, index: -1}
	if err := persist(b, l); err != nil {
		return Lease{}, err
	}
	le.leases[id] = l
	if le.primary {
		le.refreshLocked(l, 0)
	}
	return l.Lease, nil
}

// Keys lists the keys attached to lease id, in key order, from reader r
// (the apply batch, to see attachments made earlier in it).
func Keys(r pebble.Reader, id int64) ([][]byte, error) {
	prefix := attachPrefix(id)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: storage.AppendUint64([]byte{storage.KeyspaceAttach}, uint64(id)+1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		k, _, err := storage.DecodeEscaped(it.Key()[len(prefix):])
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, it.Error()
}

// Revoke removes lease id and its attachments in batch b (an indexed
// batch). The caller deletes its keys (from Keys) in the same batch, in one
// revision.
func (le *Lessor) Revoke(b *pebble.Batch, id int64) error {
	// Point deletes, one per attachment left (the caller's key deletes
	// detach theirs already), not a range deletion: range tombstones pile
	// up in the memtable and slow every later read of it (10k revokes went
	// from 2,242/s to 260/s with them). Read before the lock: no I/O under it.
	keys, err := Keys(b, id)
	if err != nil {
		return err
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	l, ok := le.leases[id]
	if !ok {
		return ErrLeaseNotFound
	}
	if err := b.Delete(leaseKey(id), nil); err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(attachKey(id, k), nil); err != nil {
			return err
		}
	}
	delete(le.leases, id)
	if l.index >= 0 {
		heap.Remove(&le.expiry, l.index)
	}
	return nil
}

// Checkpoint records the remaining TTL of lease id (0: back to the full TTL).
func (le *Lessor) Checkpoint(b *pebble.Batch, id, remaining int64) error {
	le.mu.Lock()
	defer le.mu.Unlock()
	l, ok := le.leases[id]
	if !ok {
		return ErrLeaseNotFound
	}
	l.RemainingTTL = remaining
	if le.primary && remaining == 0 {
		// A reset comes from a renewal: the lease lives a full TTL from
		// now (never less than it had).
		if exp := le.now().Add(time.Duration(l.TTL) * time.Second); exp.After(l.Expiry) {
			l.Expiry = exp
			if l.index >= 0 {
				heap.Fix(&le.expiry, l.index)
			}
		}
	}
	return persist(b, l)
}

// Attach records key as attached to lease id; Detach removes it.
func (le *Lessor) Attach(b *pebble.Batch, id int64, key []byte) error {
	return b.Set(attachKey(id, key), nil, nil)
}

// Detach removes the attachment of key to lease id.
func (le *Lessor) Detach(b *pebble.Batch, id int64, key []byte) error {
	return b.Delete(attachKey(id, key), nil)
}

// Lookup returns lease id.
func (le *Lessor) Lookup(id int64) (Lease, bool) {
	le.mu.Lock()
	defer le.mu.Unlock()
	l, ok := le.leases[id]
	if !ok {
		return Lease{}, false
	}
	return l.Lease, true
}

// Leases lists every lease, soonest expiry first (as etcd lists them),
// then by ID.
func (le *Lessor) Leases() []Lease {
	le.mu.Lock()
	out := make([]Lease, 0, len(le.leases))
	for _, l := range le.leases {
		out = append(out, l.Lease)
	}
	le.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Expiry.Equal(out[j].Expiry) {
			return out[i].Expiry.Before(out[j].Expiry)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Promote makes this lessor primary: every lease expires its remaining TTL
// (the checkpointed one, else the full TTL) plus extend from now.
func (le *Lessor) Promote(extend time.Duration) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.primary = true
	le.expiry = le.expiry[:0]
	for _, l := range le.leases {
		l.index = -1
		le.refreshLocked(l, extend)
	}
}

// Demote stops expiry tracking (another member leads).
func (le *Lessor) Demote() {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.primary = false
	for _, l := range le.leases {
		l.index, l.Expiry = -1, time.Time{}
	}
	le.expiry = le.expiry[:0]
}

// IsPrimary reports whether this lessor tracks expiry.
func (le *Lessor) IsPrimary() bool {
	le.mu.Lock()
	defer le.mu.Unlock()
	return le.primary
}

// Renew restarts lease id's TTL from now and returns the TTL. needsReset
// reports a checkpointed remaining TTL that the caller must first clear
// through Raft (Checkpoint with 0), so a restart cannot bring it back; wait
// is non-nil while a checkpoint of the lease is on its way through Raft:
// the caller waits for it, then renews again (else the checkpoint, made
// before this renewal, would land after it and come back on a restart).
func (le *Lessor) Renew(id int64) (ttl int64, needsReset bool, wait <-chan struct{}, err error) {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.primary {
		return 0, false, nil, ErrNotPrimary
	}
	l, ok := le.leases[id]
	if !ok || (!l.Expiry.IsZero() && !le.now().Before(l.Expiry)) {
		// An expired lease is as good as revoked: its revoke is on its way.
		return 0, false, nil, ErrLeaseNotFound
	}
	if ch, ok := le.inflight[id]; ok {
		return 0, false, ch, nil
	}
	if l.RemainingTTL > 0 {
		return 0, true, nil, nil
	}
	le.refreshLocked(l, 0)
	return l.TTL, false, nil, nil
}

// Remaining is lease id's remaining time to live.
func (le *Lessor) Remaining(id int64) (time.Duration, bool) {
	le.mu.Lock()
	defer le.mu.Unlock()
	l, ok := le.leases[id]
	if !ok {
		return 0, false
	}
	if l.Expiry.IsZero() {
		return time.Duration(l.effectiveTTL()) * time.Second, true
	}
	return l.Expiry.Sub(le.now()), true
}

// Expired returns up to limit leases whose expiry has passed, earliest first.
func (le *Lessor) Expired(limit int) []int64 {
	le.mu.Lock()
	defer le.mu.Unlock()
	now := le.now()
	var out []int64
	// The heap's order is only partial: pop, collect, push back.
	var popped []*lease
	for len(le.expiry) > 0 && len(out) < limit {
		l := le.expiry[0]
		if now.Before(l.Expiry) {
			break
		}
		heap.Pop(&le.expiry)
		popped = append(popped, l)
		out = append(out, l.ID)
	}
	for _, l := range popped {
		heap.Push(&le.expiry, l)
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
// waits for the checkpoint first.
func (le *Lessor) CheckpointDue(limit int) map[int64]int64 {
	le.mu.Lock()
	defer le.mu.Unlock()
	now := le.now()
	out := map[int64]int64{}
	defer func() {
		if le.inflight == nil {
			le.inflight = map[int64]chan struct{}{}
		}
		for id := range out {
			if _, ok := le.inflight[id]; !ok {
				le.inflight[id] = make(chan struct{})
			}
		}
	}()
	for _, l := range le.leases {
		if len(out) >= limit {
			break
		}
		if l.Expiry.IsZero() {
			continue
		}
		// Rounded up, as etcd does: a checkpoint never shortens a lease.
		left := int64((l.Expiry.Sub(now) + time.Second - 1) / time.Second)
		if left <= 0 {
			continue // expiring: the revoke is on its way
		}
		if l.effectiveTTL()-left >= max(1, l.TTL/2) {
			out[l.ID] = left
		}
	}
	return out
}

// CheckpointDone ends the in-flight state of leases CheckpointDue returned
// (applied or not) and wakes the renewals waiting on them.
func (le *Lessor) CheckpointDone(ids []int64) {
	le.mu.Lock()
	defer le.mu.Unlock()
	for _, id := range ids {
		if ch, ok := le.inflight[id]; ok {
			close(ch)
			delete(le.inflight, id)
		}
	}
}

func (l *lease) effectiveTTL() int64 {
	if l.RemainingTTL > 0 {
		return l.RemainingTTL
	}
	return l.TTL
}

func (le *Lessor) refreshLocked(l *lease, extend time.Duration) {
	l.Expiry = le.now().Add(extend + time.Duration(l.effectiveTTL())*time.Second)
	if l.index >= 0 {
		heap.Fix(&le.expiry, l.index)
	} else {
		heap.Push(&le.expiry, l)
	}
}

// expiryHeap orders leases by expiry.
type expiryHeap []*lease

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].Expiry.Before(h[j].Expiry) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	l := x.(*lease)
	l.index = len(*h)
	*h = append(*h, l)
}
func (h *expiryHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	l.index = -1
	*h = old[:len(old)-1]
	return l
}
