package mvcc

import (
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

// DefaultLiveCacheBytes is the default bound of the live-record cache.
const DefaultLiveCacheBytes = 16 << 20

// liveEntryOverhead is what one cached key costs beyond its bytes: the
// map slot (control byte, string header, liveMeta) at Go's map load
// factor and the key's allocation rounding, as measured in heap profiles
// of a member under load.
const liveEntryOverhead = 96

// liveMeta is what a put needs of its key's live record: the revisions,
// version and lease the new version follows on from (not the value: a
// put event's previous value is read by the watchers that ask for it).
type liveMeta struct {
	createRev, version, lease int64
}

// liveCache holds the live records' metadata of recently written keys, so
// that the lookup a put makes before it writes rarely reads Pebble. It
// holds committed state only: the apply loop's Batch keeps its own
// uncommitted changes (pending) and hands them over at Commit. While
// complete is set (the store was empty when the cache started and the
// cache has never evicted since), a key absent from it has no live
// record, so creating a key costs no read either.
//
// Memory is bounded by max bytes of keys plus a fixed overhead per entry;
// over the bound it evicts entries (Go's map order, effectively random)
// and is no longer complete. Everything that changes live records outside
// a Batch (a snapshot install through Store.Restore) clears it.
type liveCache struct {
	mu       sync.Mutex
	max      int64
	bytes    int64
	m        map[string]liveMeta
	complete bool
}

func newLiveCache(max int64) *liveCache {
	return &liveCache{max: max, m: map[string]liveMeta{}}
}

// get returns key's live metadata; known says whether the answer is
// authoritative (found, or absent from a complete cache).
func (c *liveCache) get(key []byte) (meta liveMeta, found, known bool) {
	if c.max <= 0 {
		return liveMeta{}, false, false
	}
	c.mu.Lock()
	meta, found = c.m[string(key)]
	known = found || c.complete
	c.mu.Unlock()
	return meta, found, known
}

// apply records the committed changes of a batch, in order.
func (c *liveCache) apply(changes []liveChange) {
	if c.max <= 0 || len(changes) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range changes {
		ch := &changes[i]
		_, had := c.m[ch.key]
		if ch.deleted {
			if had {
				delete(c.m, ch.key)
				c.bytes -= int64(len(ch.key)) + liveEntryOverhead
			}
			continue
		}
		c.m[ch.key] = ch.meta
		if !had {
			c.bytes += int64(len(ch.key)) + liveEntryOverhead
		}
	}
	if c.bytes > c.max {
		c.evictLocked()
	}
}

// evictLocked drops entries until the cache is a quarter under its bound
// (so eviction runs once per many commits, not at each), and gives up
// completeness. It copies what stays into a new map: Go's maps keep the
// slots of deleted entries, so one that only ever deleted would grow with
// the churn, not with what it holds.
func (c *liveCache) evictLocked() {
	c.complete = false
	target := c.max - c.max/4
	for k := range c.m {
		if c.bytes <= target {
			break
		}
		delete(c.m, k)
		c.bytes -= int64(len(k)) + liveEntryOverhead
	}
	m := make(map[string]liveMeta, len(c.m))
	for k, v := range c.m {
		m[k] = v
	}
	c.m = m
}

// reset empties the cache; complete says whether the store has no live
// key now (absence then stays authoritative).
func (c *liveCache) reset(complete bool) {
	c.mu.Lock()
	c.m = map[string]liveMeta{}
	c.bytes = 0
	c.complete = complete && c.max > 0
	c.mu.Unlock()
}

// noLiveKeys reports whether the store holds no live record.
func noLiveKeys(r pebble.Reader) (bool, error) {
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceLatest},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceLatest),
	})
	if err != nil {
		return false, err
	}
	empty := !it.First()
	if err := it.Close(); err != nil {
		return false, err
	}
	return empty, nil
}

// liveChange is one uncommitted change of a key's live record.
type liveChange struct {
	key     string
	meta    liveMeta
	deleted bool
}

// pendingLive is a Batch's uncommitted live-record changes: the log in
// order (for Commit and for RollbackTo) and the latest per key.
type pendingLive struct {
	log    []liveChange
	latest map[string]int // index into log
}

func (p *pendingLive) get(key []byte) (liveChange, bool) {
	if p.latest == nil {
		return liveChange{}, false
	}
	i, ok := p.latest[string(key)]
	if !ok {
		return liveChange{}, false
	}
	return p.log[i], true
}

func (p *pendingLive) add(ch liveChange) {
	if p.latest == nil {
		p.latest = map[string]int{}
	}
	p.latest[ch.key] = len(p.log)
	p.log = append(p.log, ch)
}

// truncate forgets the changes after the first n.
func (p *pendingLive) truncate(n int) {
	if n >= len(p.log) {
		return
	}
	p.log = p.log[:n]
	p.latest = map[string]int{}
	for i, ch := range p.log {
		p.latest[ch.key] = i
	}
}
