package storage

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// openGate is Pebble's compaction scheduler (a limit on concurrent
// compactions, as its default ConcurrencyLimitScheduler, whose constructor
// it does not export) that holds compactions back until Open has returned.
//
// pebble.Open flushes the memtables it replayed from its logs, and that
// flush schedules compactions; Open then waits for every running
// compaction before it scans for obsolete files (DB.scanObsoleteFiles).
// After a crash under heavy load that is an L0 compaction of tens of MB:
// on a 300k-key store it made Open take 1.0–1.7 s instead of tens of ms
// (issue 15's crash restart). With the gate the same compactions start in
// the background as soon as Open returns.
type openGate struct {
	db   pebble.DBForCompaction
	stop chan struct{}
	poke chan struct{}

	mu       sync.Mutex
	shut     bool // until open
	gone     bool // after Unregister
	running  int
	granting bool
	cond     *sync.Cond
}

func newOpenGate() *openGate {
	g := &openGate{shut: true, stop: make(chan struct{}), poke: make(chan struct{}, 1)}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// open lets compactions run and starts those that wait.
func (g *openGate) open() {
	g.mu.Lock()
	g.shut = false
	g.mu.Unlock()
	g.UpdateGetAllowedWithoutPermission()
}

// Register implements pebble.CompactionScheduler: it starts the granter
// that, every 100 ms or when poked, starts waiting compactions up to the
// DB's limit (as Pebble's default scheduler).
func (g *openGate) Register(_ int, db pebble.DBForCompaction) {
	g.db = db
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-g.poke:
			case <-g.stop:
				return
			}
			g.grant()
		}
	}()
}

// Unregister implements pebble.CompactionScheduler: no grant runs after it.
func (g *openGate) Unregister() {
	close(g.stop)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gone = true
	for g.granting {
		g.cond.Wait()
	}
}

// TrySchedule implements pebble.CompactionScheduler.
func (g *openGate) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut || g.gone || g.db.GetAllowedWithoutPermission() <= g.running {
		return false, nil
	}
	g.running++
	return true, g
}

// UpdateGetAllowedWithoutPermission implements pebble.CompactionScheduler.
func (g *openGate) UpdateGetAllowedWithoutPermission() {
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

// Started, MeasureCPU and CumulativeStats implement
// pebble.CompactionGrantHandle; Done ends a granted compaction.
func (g *openGate) Started()                                  {}
func (g *openGate) MeasureCPU(pebble.CompactionGoroutineKind) {}
func (g *openGate) CumulativeStats(pebble.CompactionGrantHandleStats) {
}
func (g *openGate) Done() {
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
	g.UpdateGetAllowedWithoutPermission()
}

// grant starts waiting compactions while the DB allows more.
func (g *openGate) grant() {
	g.mu.Lock()
	for g.granting {
		g.cond.Wait()
	}
	if g.shut || g.gone {
		g.mu.Unlock()
		return
	}
	n := g.db.GetAllowedWithoutPermission() - g.running
	if n <= 0 {
		g.mu.Unlock()
		return
	}
	g.granting = true
	g.mu.Unlock()
	for ; n > 0; n-- {
		if waiting, _ := g.db.GetWaitingCompaction(); !waiting {
			break
		}
		g.mu.Lock()
		g.running++ // before Schedule: the compaction may end (Done) at once
		g.mu.Unlock()
		if !g.db.Schedule(g) {
			g.mu.Lock()
			g.running--
			g.mu.Unlock()
			break
		}
	}
	g.mu.Lock()
	g.granting = false
	g.cond.Broadcast()
	g.mu.Unlock()
}

var _ pebble.CompactionScheduler = (*openGate)(nil)
var _ pebble.CompactionGrantHandle = (*openGate)(nil)
