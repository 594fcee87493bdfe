package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Shape of BenchmarkWatchPutLatency: putWatchStreams raw streams of
// putWatchPoints point watchers and putWatchRanges range watchers each;
// point watcher k watches "pl/k", range watcher j the putRangeWidth keys
// from "pl/(j*putRangeWidth)". One client then makes putLatencyPuts puts,
// one at a time, to "pl/i" for i in order, so each put is an event for one
// point watcher and one range watcher.
const (
	putWatchStreams = 10
	putWatchPoints  = 900 // per stream: 9,000 point watchers
	putWatchRanges  = 100 // per stream: 1,000 range watchers
	putRangeWidth   = 9
	putLatencyPuts  = putWatchStreams * putWatchPoints
)

func putLatencyKey(i int) string { return fmt.Sprintf("pl/%05d", i) }

// BenchmarkWatchPutLatency measures what watchers cost the write path: the
// p50 and p99 of serial puts with no watcher (watchers=0) and with 10,000
// watchers, 1,000 of them range watchers (watchers=10000), each on a
// member of its own. Every watcher must get exactly its events, in order.
// Run with -benchtime 1x.
func BenchmarkWatchPutLatency(b *testing.B) {
	for _, watchers := range []int{0, putWatchStreams * (putWatchPoints + putWatchRanges)} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			benchWatchPutLatency(b, watchers > 0)
		})
	}
}

func benchWatchPutLatency(b *testing.B, watch bool) {
	ep := startMember(b)
	cli := dial(b, ep, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var streams []*rawStream
	if watch {
		conns := dial(b, ep, putWatchStreams)
		for s := range putWatchStreams {
			var specs []watchSpec
			for k := range putWatchPoints {
				// Every key is put once.
				spec := watchSpec{key: putLatencyKey(s*putWatchPoints + k), want: 1}
				specs = append(specs, spec)
			}
			for j := range putWatchRanges {
				first := (s*putWatchRanges + j) * putRangeWidth
				spec := watchSpec{key: putLatencyKey(first), end: putLatencyKey(first + putRangeWidth), want: putRangeWidth}
				specs = append(specs, spec)
			}
			streams = append(streams, openRawStream(b, ctx, conns[s], specs))
		}
		createAll(b, streams)
	}
	lat := make([]time.Duration, putLatencyPuts)
	for i := range putLatencyPuts {
		began := time.Now()
		if _, err := cli.Put(ctx, putLatencyKey(i), value); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(began)
	}
	reportLatency(b, "put", lat)
	deadline := time.After(eventsTimeout)
	for _, st := range streams {
		st.waitEvents(b, deadline)
		st.check(b)
	}
}
