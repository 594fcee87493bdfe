package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/cairn-kv/cairn/pkg/wait"
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
	if err := m.alive(); err != nil {
		return err
	}
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
	case <-m.dead:
		return ErrStopped
	}
}

// readLoop runs one ReadIndex round at a time for the reads waiting.
func (m *Member) readLoop() {
	defer m.wg.Done()
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
		round.err = m.readIndexRound()
		close(round.done)
	}
}

// readIndexRound asks Raft for a read index and waits until it is applied.
// Its context is unique across members and restarts (a request ID),
// so an answer to an earlier round, of this process or of a previous one,
// is never taken for this one's (etcd issue 20418 needed unique contexts
// in Raft's heartbeats too: raft v3.7.0). Getting the read index and
// waiting for the applied index to reach it share one deadline, the
// request timeout: if Raft answered but apply does not get there in time,
// the read fails with ErrTimeoutReadIndex, as etcd's.
func (m *Member) readIndexRound() error {
	deadline := m.clock.NewTimer(m.cfg.reqTimeout())
	defer deadline.Stop()
	// Every request of this round gets its own context; an answer to any
	// of them will do, as each was asked after the round began.
	var asked [][]byte
	for {
		rctx := binary.BigEndian.AppendUint64(nil, m.ids.next())
		asked = append(asked, rctx)
		if err := m.node.ReadIndex(context.Background(), rctx); err != nil {
			return ErrStopped
		}
		// Raft drops a read index asked while there is no leader (say,
		// right after start); ask again soon in that case.
		after := readIndexRetry
		if m.node.Status().Lead == 0 {
			after = 20 * time.Millisecond
		}
		retry := m.clock.NewTimer(after)
		for waiting := true; waiting; {
			select {
			case rs := <-m.node.ReadStates():
				if !slices.ContainsFunc(asked, func(c []byte) bool { return bytes.Equal(c, rs.Ctx) }) {
					continue // the answer to an earlier, abandoned round
				}
				retry.Stop()
				switch m.applied.WaitDeadline(m.stopping, deadline.C(), rs.Index) {
				case wait.ErrCanceled:
					return ErrStopped
				case wait.ErrDeadline:
					return ErrTimeoutReadIndex
				}
				return nil
			case <-retry.C():
				waiting = false
			case <-deadline.C():
				retry.Stop()
				return ErrTimeout
			case <-m.stopping:
				retry.Stop()
				return ErrStopped
			}
		}
	}
}
