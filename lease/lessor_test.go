package lease

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func open(t *testing.T, dir string, clk *fakeClock) (*Lessor, *storage.Engine) {
	t.Helper()
	eng, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	le, err := Open(eng, Config{MinTTL: 2, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return le, eng
}

// apply runs fn in one committed batch, as the apply loop does.
func apply(t *testing.T, eng *storage.Engine, fn func(b *pebble.Batch) error) {
	t.Helper()
	b := eng.DB.NewIndexedBatch()
	if err := fn(b); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
}

func TestGrantRules(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	le, eng := open(t, t.TempDir(), clk)
	defer eng.Close()
	b := eng.DB.NewIndexedBatch()
	defer b.Close()
	tests := []struct {
		id, ttl int64
		wantTTL int64
		wantErr error
	}{
		{id: 1, ttl: 10, wantTTL: 10},
		{id: 2, ttl: 1, wantTTL: 2}, // raised to the minimum TTL
		{id: 1, ttl: 10, wantErr: ErrLeaseExists},
		{id: 0, ttl: 10, wantErr: ErrLeaseNotFound},
		{id: 3, ttl: MaxLeaseTTL + 1, wantErr: ErrLeaseTTLTooLarge},
	}
	for _, tt := range tests {
		l, err := le.Grant(b, tt.id, tt.ttl)
		if !errors.Is(err, tt.wantErr) || (err == nil && l.TTL != tt.wantTTL) {
			t.Errorf("Grant(%d, %d) = TTL %d, %v; want TTL %d, %v", tt.id, tt.ttl, l.TTL, err, tt.wantTTL, tt.wantErr)
		}
	}
}

func TestExpiryRenewAndCheckpointSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	le, eng := open(t, dir, clk)
	le.Promote(0)
	apply(t, eng, func(b *pebble.Batch) error {
		for id := int64(1); id <= 3; id++ {
			if _, err := le.Grant(b, id, 10); err != nil {
				return err
			}
		}
		return le.Attach(b, 1, []byte("k"))
	})
	clk.advance(6 * time.Second)
	if ttl, reset, _, err := le.Renew(2); err != nil || reset || ttl != 10 {
		t.Fatalf("Renew(2) = %d, %v, %v; want 10, false, nil", ttl, reset, err)
	}
	// Leases 1 and 3 ran down past half their TTL; 2 was just renewed.
	due := le.CheckpointDue(10)
	if fmt.Sprint(due) != "map[1:4 3:4]" {
		t.Fatalf("CheckpointDue = %v, want map[1:4 3:4]", due)
	}
	// While the checkpoint is in flight, a renewal of lease 1 must wait.
	if _, _, wait, _ := le.Renew(1); wait == nil {
		t.Fatal("Renew of a lease with a checkpoint in flight did not wait")
	}
	apply(t, eng, func(b *pebble.Batch) error { return le.Checkpoint(b, 1, due[1]) })
	le.CheckpointDone([]int64{1, 3})
	clk.advance(5 * time.Second)
	if got := fmt.Sprint(le.Expired(10)); got != "[1 3]" {
		t.Fatalf("Expired = %s, want [1 3]", got)
	}
	if _, _, _, err := le.Renew(3); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Renew of an expired lease: %v, want ErrLeaseNotFound", err)
	}
	keys, err := Keys(eng.DB, 1)
	if err != nil || fmt.Sprintf("%q", keys) != `["k"]` {
		t.Fatalf("Keys(1) = %q, %v", keys, err)
	}
	eng.Close()

	// After a restart, lease 1 continues from its checkpoint (4 s), the
	// others from their full TTL; nothing expires at once.
	le, eng = open(t, dir, clk)
	defer eng.Close()
	le.Promote(0)
	for id, want := range map[int64]time.Duration{1: 4 * time.Second, 2: 10 * time.Second, 3: 10 * time.Second} {
		if got, ok := le.Remaining(id); !ok || got != want {
			t.Errorf("after restart, Remaining(%d) = %v, %v; want %v", id, got, ok, want)
		}
	}
	if got := le.Expired(10); len(got) != 0 {
		t.Fatalf("Expired right after restart = %v, want none", got)
	}
	// A renewal of a checkpointed lease must first clear the checkpoint.
	if _, reset, _, err := le.Renew(1); err != nil || !reset {
		t.Fatalf("Renew(1) after checkpoint = reset %v, %v; want reset", reset, err)
	}
	apply(t, eng, func(b *pebble.Batch) error { return le.Checkpoint(b, 1, 0) })
	if ttl, reset, _, err := le.Renew(1); err != nil || reset || ttl != 10 {
		t.Fatalf("Renew(1) after reset = %d, %v, %v; want 10", ttl, reset, err)
	}
	apply(t, eng, func(b *pebble.Batch) error { return le.Revoke(b, 1) })
	if _, ok := le.Lookup(1); ok {
		t.Fatal("lease 1 still there after Revoke")
	}
	if keys, _ := Keys(eng.DB, 1); len(keys) != 0 {
		t.Fatalf("attachments left after Revoke: %q", keys)
	}
}

// Apply never waits for the primary's soft state: with its lock held (as
// CheckpointDue's scan of every lease holds it), grants, checkpoints,
// revokes and lookups still complete; the soft state then catches up with
// them, at the times they were applied.
func TestApplyDoesNotWaitForPrimary(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	le, eng := open(t, t.TempDir(), clk)
	defer eng.Close()
	le.Promote(0)
	apply(t, eng, func(b *pebble.Batch) error { _, err := le.Grant(b, 1, 10); return err })
	clk.advance(3 * time.Second)

	le.primary.mu.Lock() // a scan in progress
	done := make(chan error, 1)
	go func() {
		b := eng.DB.NewIndexedBatch()
		defer b.Close()
		err := errors.Join(
			func() error { _, err := le.Grant(b, 2, 5); return err }(),
			func() error { _, err := le.Grant(b, 3, 5); return err }(),
			le.Checkpoint(b, 1, 0), // a renewal's reset: a full TTL from now
			le.Revoke(b, 3),
		)
		if !le.LeaseExists(2) || le.LeaseExists(3) {
			err = errors.Join(err, errors.New("LeaseExists does not see apply's changes"))
		}
		if err == nil {
			err = b.Commit(nil)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("apply waited for the primary's lock")
	}
	le.primary.mu.Unlock()

	for id, want := range map[int64]time.Duration{1: 10 * time.Second, 2: 5 * time.Second} {
		if got, ok := le.Remaining(id); !ok || got != want {
			t.Errorf("Remaining(%d) = %v, %v; want %v", id, got, ok, want)
		}
	}
	if _, ok := le.Remaining(3); ok {
		t.Error("revoked lease 3 still tracked")
	}
	clk.advance(5 * time.Second)
	if got := fmt.Sprint(le.Expired(10)); got != "[2]" {
		t.Fatalf("Expired = %s, want [2]", got)
	}
	if got := len(le.Leases()); got != 2 {
		t.Fatalf("Leases lists %d, want 2", got)
	}
}

// A follower's lessor queues nothing for a soft state it does not have.
func TestNoQueueWhileNotPrimary(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	le, eng := open(t, t.TempDir(), clk)
	defer eng.Close()
	apply(t, eng, func(b *pebble.Batch) error {
		for id := int64(1); id <= 100; id++ {
			if _, err := le.Grant(b, id, 10); err != nil {
				return err
			}
		}
		return nil
	})
	if n := len(le.changes.q); n != 0 {
		t.Fatalf("%d changes queued on a non-primary lessor", n)
	}
	le.Promote(time.Second)
	if got, ok := le.Remaining(50); !ok || got != 11*time.Second {
		t.Fatalf("Remaining(50) after Promote(1s) = %v, %v; want 11s", got, ok)
	}
	le.Demote()
	if got, ok := le.Remaining(50); !ok || got != 10*time.Second {
		t.Fatalf("Remaining(50) after Demote = %v, %v; want its TTL, 10s", got, ok)
	}
}
