package mvcc

import (
	"bytes"
	"context"
	"math"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

// compactionChunk bounds the deletions of one compaction batch, so that
// compaction never holds up writes for long.
const compactionChunk = 1000

// compactor removes versions made unreadable by compaction, in the
// background and in bounded chunks. Reads never see its partial work: they
// refuse revisions below the compacted revision, and it only removes
// versions that no readable revision needs.
type compactor struct {
	s *Store

	mu struct {
		sync.Mutex
		target  int64 // newest requested compaction revision
		done    int64 // revision up to which old versions are removed
		changed chan struct{}
		closed  bool
	}
	kick chan struct{}
	wg   sync.WaitGroup
	stop chan struct{}
}

func newCompactor(s *Store, done int64) *compactor {
	c := &compactor{s: s, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	c.mu.done, c.mu.target = done, done
	c.mu.changed = make(chan struct{})
	c.wg.Add(1)
	go c.run()
	return c
}

func (c *compactor) schedule(rev int64) {
	c.mu.Lock()
	if rev > c.mu.target {
		c.mu.target = rev
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *compactor) close() {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	c.mu.closed = true
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
}

func (c *compactor) wait(ctx context.Context, rev int64) error {
	for {
		c.mu.Lock()
		done, ch := c.mu.done, c.mu.changed
		c.mu.Unlock()
		if done >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stop:
			return context.Canceled
		}
	}
}

func (c *compactor) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		c.mu.Lock()
		target, done := c.mu.target, c.mu.done
		c.mu.Unlock()
		if target <= done {
			continue
		}
		// The hash of what this compaction is about to remove, for HashKV.
		if err := c.s.compactionHash(context.Background(), target, done); err != nil {
			c.s.lg.Error("hash before compaction failed", "revision", target, "error", err)
		}
		if err := c.compact(target); err != nil {
			if err != errStopped {
				c.s.lg.Error("compaction failed", "revision", target, "error", err)
			}
			continue
		}
		c.mu.Lock()
		c.mu.done = target
		close(c.mu.changed)
		c.mu.changed = make(chan struct{})
		c.mu.Unlock()
		c.s.lg.Info("finished scheduled compaction", "compact-revision", target)
	}
}

type stoppedError struct{}

func (stoppedError) Error() string { return "mvcc: compactor stopped" }

var errStopped error = stoppedError{}

// compact removes, for every key, each version older than its newest
// version at or below rev (and that one too if it is a tombstone), and
// every event before rev.
func (c *compactor) compact(rev int64) error {
	db := c.s.eng.DB
	cursor := []byte{storage.KeyspaceVersions}
	upper := storage.KeyspaceEnd(storage.KeyspaceVersions)
	for cursor != nil {
		select {
		case <-c.stop:
			return errStopped
		default:
		}
		next, err := c.compactChunk(db, cursor, upper, rev)
		if err != nil {
			return err
		}
		cursor = next
	}
	b := db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(eventKey(0, 0), eventKey(rev, 0), nil); err != nil {
		return err
	}
	if err := b.Set(metaCompactDone, encodeInt(rev), nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}

// compactChunk compacts keys from cursor on until it has deleted about
// compactionChunk versions; it returns where to go on from, or nil at the end.
func (c *compactor) compactChunk(db *pebble.DB, cursor, upper []byte, rev int64) ([]byte, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: cursor, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	b := db.NewBatch()
	defer b.Close()
	deletes := 0
	var next []byte
	ok := it.First()
	for ok {
		if deletes >= compactionChunk {
			next = bytes.Clone(it.Key())
			break
		}
		k, _, _, err := decodeVersionKey(it.Key())
		if err != nil {
			return nil, err
		}
		prefix := versionKeyPrefix(nil, k)
		ok = it.SeekGE(versionKey(nil, k, rev, math.MaxInt64))
		first := true
		for ; ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
			if first {
				first = false
				v, err := it.ValueAndErr()
				if err != nil {
					return nil, err
				}
				rec, err := decodeRecord(v)
				if err != nil {
					return nil, err
				}
				if !rec.tombstone {
					continue
				}
			}
			if err := b.Delete(it.Key(), nil); err != nil {
				return nil, err
			}
			deletes++
		}
		if ok {
			continue // it is on the next key already
		}
		ok = it.SeekGE(nextKeyPrefix(prefix))
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if deletes > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			return nil, err
		}
	}
	return next, nil
}
