package server

import (
	"context"
	"encoding/binary"
	"sync"
	"time"
)

// readIndexRetry is how long a read round waits for Raft's answer before
// asking again (a request can be dropped while there is no leader).
const readIndexRetry = 500 * time.Millisecond

// readRound is one ReadIndex round that every read arriving before it
// starts shares.
type readRound struct {
	done chan struct{}
	err  error
}

// readBatcher coalesces concurrent linearizable reads into rounds.
type readBatcher struct {
	mu   sync.Mutex
	next *readRound
	kick chan struct{}
}

func (b *readBatcher) init() {
	b.next = &readRound{done: make(chan struct{})}
	b.kick = make(chan struct{}, 1)
}

// linearizableReadNotify returns once the member has applied everything
// committed before the call, so a local read then is linearizable.
func (m *Member) linearizableReadNotify(ctx context.Context) error {
	m.reads.mu.Lock()
	round := m.reads.next
	m.reads.mu.Unlock()
	select {
	case m.reads.kick <- struct{}{}:
	default:
	}
	select {
	case <-round.done:
		return round.err
	case <-ctx.Done():
		return m.ctxErr(ctx, ctx.Err())
	case <-m.stopping:
		return ErrStopped
	}
}

// readLoop runs one ReadIndex round at a time for the reads waiting.
func (m *Member) readLoop() {
	defer m.wg.Done()
	var seq uint64
	for {
		select {
		case <-m.reads.kick:
		case <-m.stopping:
			return
		}
		m.reads.mu.Lock()
		round := m.reads.next
		m.reads.next = &readRound{done: make(chan struct{})}
		m.reads.mu.Unlock()
		seq++
		round.err = m.readIndexRound(seq)
		close(round.done)
	}
}

// readIndexRound asks Raft for a read index and waits until it is applied.
func (m *Member) readIndexRound(seq uint64) error {
	rctx := binary.BigEndian.AppendUint64(nil, seq)
	deadline := time.NewTimer(m.cfg.reqTimeout())
	defer deadline.Stop()
	for {
		if err := m.node.ReadIndex(context.Background(), rctx); err != nil {
			return ErrStopped
		}
		// Raft drops a read index asked while there is no leader (say,
		// right after start); ask again soon in that case.
		wait := readIndexRetry
		if m.node.Status().Lead == 0 {
			wait = 20 * time.Millisecond
		}
		retry := time.NewTimer(wait)
		for waiting := true; waiting; {
			select {
			case rs := <-m.node.ReadStates():
				if binary.BigEndian.Uint64(rs.Ctx) != seq {
					continue // the answer to an earlier, abandoned round
				}
				retry.Stop()
				if !m.applied.Wait(m.stopping, rs.Index) {
					return ErrStopped
				}
				return nil
			case <-retry.C:
				waiting = false
			case <-deadline.C:
				retry.Stop()
				return ErrTimeout
			case <-m.stopping:
				retry.Stop()
				return ErrStopped
			}
		}
	}
}
