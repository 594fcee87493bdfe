package lease

import (
	"encoding/binary"
	"fmt"
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
	// Expiry is when the lease expires; set only by a primary lessor's
	// Leases (Lookup reads the replicated state, which has none).
	Expiry time.Time
}

// Lessor holds every lease in memory (IDs, TTLs and checkpointed remaining
// TTLs; the attached keys stay on disk) and persists changes into apply's
// batches. While this member leads it is primary and also tracks when each
// lease expires.
//
// It is two parts with a lock each, so that apply never waits behind the
// leader's scans (CheckpointDue visits every lease once a second, Promote
// every lease once an election):
//   - the replicated state that apply changes and reads (lessor.go):
//     state.mu;
//   - the primary's soft state (primary.go): expiry times and their heap,
//     checkpoints in flight; primary.mu.
//
// Apply takes only state.mu. While the lessor is primary, each change apply
// makes is also queued (changes.mu, held for an append) and the soft state
// catches up with the queue, under its own lock, before it answers
// anything. Lock order: primary.mu, then state.mu, then changes.mu.
type Lessor struct {
	db     *pebble.DB
	now    func() time.Time
	minTTL int64

	state struct {
		sync.Mutex
		// leases holds each lease's TTLs by value: no allocation per lease.
		leases map[int64]record
		// primary mirrors primary.primary for apply, which queues its
		// changes only while it is set.
		primary bool
	}
	changes struct {
		sync.Mutex
		q []change
	}
	primary primaryState
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
	if le.state.leases, err = loadLeases(eng.DB); err != nil {
		return nil, err
	}
	return le, nil
}

// record is a lease as the replicated state holds it: its granted and its
// checkpointed remaining TTL, in seconds.
type record struct{ ttl, remaining int64 }

func (r record) lease(id int64) Lease { return Lease{ID: id, TTL: r.ttl, RemainingTTL: r.remaining} }

func loadLeases(db pebble.Reader) (map[int64]record, error) {
	leases := map[int64]record{}
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
		leases[id] = record{ttl: int64(binary.BigEndian.Uint64(v[:8])), remaining: int64(binary.BigEndian.Uint64(v[8:]))}
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
	le.primary.mu.Lock()
	defer le.primary.mu.Unlock()
	le.state.Lock()
	le.state.leases = leases
	le.state.Unlock()
	le.primary.releaseInflightLocked()
	if le.primary.primary {
		le.promoteLocked(extend)
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

func persist(b *pebble.Batch, l *Lease) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(l.TTL))
	v = binary.BigEndian.AppendUint64(v, uint64(l.RemainingTTL))
	return b.Set(leaseKey(l.ID), v, nil)
}

// LeaseExists reports whether lease id exists.
func (le *Lessor) LeaseExists(id int64) bool {
	le.state.Lock()
	defer le.state.Unlock()
	_, ok := le.state.leases[id]
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
	le.state.Lock()
	defer le.state.Unlock()
	if _, ok := le.state.leases[id]; ok {
		return Lease{}, ErrLeaseExists
	}
	l := Lease{ID: id, TTL: max(ttl, le.minTTL)}
	if err := persist(b, &l); err != nil {
		return Lease{}, err
	}
	le.state.leases[id] = record{ttl: l.TTL}
	le.queueLocked(change{kind: changeGrant, lease: l})
	return l, nil
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
	le.state.Lock()
	defer le.state.Unlock()
	l, ok := le.state.leases[id]
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
	delete(le.state.leases, id)
	le.queueLocked(change{kind: changeRevoke, lease: l.lease(id)})
	return nil
}

// Checkpoint records the remaining TTL of lease id (0: back to the full TTL).
func (le *Lessor) Checkpoint(b *pebble.Batch, id, remaining int64) error {
	le.state.Lock()
	defer le.state.Unlock()
	l, ok := le.state.leases[id]
	if !ok {
		return ErrLeaseNotFound
	}
	l.remaining = remaining
	le.state.leases[id] = l
	// A reset comes from a renewal: on a primary the lease then lives a
	// full TTL from now (never less than it had).
	lease := l.lease(id)
	le.queueLocked(change{kind: changeCheckpoint, lease: lease})
	return persist(b, &lease)
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
	le.state.Lock()
	defer le.state.Unlock()
	l, ok := le.state.leases[id]
	if !ok {
		return Lease{}, false
	}
	return l.lease(id), true
}

// changeKind is what apply did to a lease.
type changeKind uint8

const (
	changeGrant changeKind = iota
	changeRevoke
	changeCheckpoint
)

// change is one change apply made, for the primary's soft state: the
// lease as apply left it, and when.
type change struct {
	kind  changeKind
	lease Lease
	at    time.Time
}

// queueLocked queues c for the soft state, if the lessor is primary.
// state.mu is held.
func (le *Lessor) queueLocked(c change) {
	if !le.state.primary {
		return
	}
	c.at = le.now()
	le.changes.Lock()
	le.changes.q = append(le.changes.q, c)
	le.changes.Unlock()
}
