package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchDrainWait bounds how long the watch command waits, after its last
// put, for the events still on their way; longer runs wait as long again
// as their puts took, up to watchDrainMax.
const (
	watchDrainWait = 5 * time.Second
	watchDrainMax  = 60 * time.Second
)

// watch runs the watch command: cfg.Watchers watchers of one key, spread
// over cfg.Streams streams, then cfg.Total puts to that key by cfg.Clients
// clients (paced by cfg.Rate). Each put's latency goes in res as for put;
// res.Watch gets the watchers' creation time and, for every event, the
// delay from its put's acknowledgement to its receipt.
func (l *load) watch(ctx context.Context, res *Result) error {
	cfg := l.cfg
	key := string(formatKey(nil, 0, cfg.KeySize))
	val := randomValue(cfg.ValSize)
	got, err := l.conns[0].Get(ctx, key)
	if err != nil {
		return fmt.Errorf("bench: watch: read the start revision: %w", err)
	}
	base := got.Header.Revision

	// acks[i] is when the put that made revision base+1+i was
	// acknowledged, in nanoseconds since epoch, plus one (0: not yet).
	epoch := time.Now()
	acks := make([]atomic.Int64, cfg.Total)
	var (
		events    Histogram // put acknowledged -> event received
		received  atomic.Int64
		early     atomic.Int64 // events received before their put's acknowledgement
		lastEvent atomic.Int64 // nanoseconds since epoch
		werrs     errorTally
	)

	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	streams := make([]clientv3.Watcher, cfg.Streams)
	for i := range streams {
		streams[i] = clientv3.NewWatcher(l.conns[i%len(l.conns)])
		defer streams[i].Close()
	}
	var (
		creates  Histogram
		created  sync.WaitGroup
		watching sync.WaitGroup
	)
	createStart := time.Now()
	for j := range cfg.Watchers {
		created.Add(1)
		watching.Go(func() {
			t0 := time.Now()
			ch := streams[j%len(streams)].Watch(wctx, key, clientv3.WithRev(base+1), clientv3.WithCreatedNotify())
			first := true
			defer func() {
				if first {
					created.Done()
				}
			}()
			for resp := range ch {
				at := time.Since(epoch)
				if first && resp.Created {
					creates.Record(time.Since(t0))
					first = false
					created.Done()
				}
				if err := resp.Err(); err != nil {
					if wctx.Err() == nil {
						werrs.add(err)
					}
					continue
				}
				for _, ev := range resp.Events {
					received.Add(1)
					i := ev.Kv.ModRevision - base - 1
					if i < 0 || i >= int64(len(acks)) {
						continue // another client's write
					}
					if ack := acks[i].Load(); ack == 0 || time.Duration(ack-1) > at {
						early.Add(1)
						events.Record(0)
					} else {
						events.Record(at - time.Duration(ack-1))
					}
				}
				for {
					old := lastEvent.Load()
					if old >= int64(at) || lastEvent.CompareAndSwap(old, int64(at)) {
						break
					}
				}
			}
		})
	}
	created.Wait()
	createTime := time.Since(createStart)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench: watch: creating watchers: %w", err)
	}
	if creates.Count() < int64(cfg.Watchers) {
		return fmt.Errorf("bench: watch: only %d of %d watchers were created: %w",
			creates.Count(), cfg.Watchers, errors.New(fmt.Sprint(werrs.snapshot())))
	}

	l.onAck = func(_, rev int64, at time.Time) {
		if i := rev - base - 1; i >= 0 && i < int64(len(acks)) {
			acks[i].Store(int64(at.Sub(epoch)) + 1)
		}
	}
	putStart := time.Since(epoch)
	w := workload{op: func(ctx context.Context, w *worker, n int64) (int64, error) {
		resp, err := w.c.Put(ctx, key, val)
		if err != nil {
			return 0, err
		}
		return resp.Header.Revision, nil
	}}
	if err := l.drive(ctx, res, w); err != nil {
		return err
	}

	// Wait for the events still in flight: every watcher sees every
	// successful put.
	want := int64(cfg.Watchers) * res.OK
	wait := min(max(watchDrainWait, time.Duration(res.Seconds*float64(time.Second))), watchDrainMax)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
drain:
	for received.Load() < want {
		select {
		case <-tick.C:
		case <-deadline.C:
			break drain
		case <-ctx.Done():
			break drain
		}
	}
	cancelWatch()
	watching.Wait()

	wr := &WatchResult{
		Watchers:       cfg.Watchers,
		Streams:        cfg.Streams,
		CreateSeconds:  createTime.Seconds(),
		Create:         summarize(&creates),
		Expected:       want,
		Received:       received.Load(),
		BeforeAck:      early.Load(),
		EventLatency:   summarize(&events),
		EventHistogram: events.Bars(),
	}
	wr.StreamErrors, wr.StreamErrorMsgs = werrs.snapshot()
	if span := time.Duration(lastEvent.Load()) - putStart; span > 0 {
		wr.EventsPerSec = float64(wr.Received) / span.Seconds()
	}
	res.Watch = wr
	return nil
}
