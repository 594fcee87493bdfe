package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Log-linear buckets: values below 2^subBits nanoseconds get one bucket
// each; above, every power of two is split into 2^(subBits-1) equal
// buckets, so a bucket is at most 1/128 of its value wide.
const (
	subBits     = 8
	subCount    = 1 << (subBits - 1)            // buckets per power of two above 256 ns
	maxTracked  = int64(1) << 40                // ~18 minutes; longer values count here
	numBuckets  = (40 - subBits + 2) * subCount // bucketOf(maxTracked-1) is the last
	maxDuration = time.Duration(maxTracked)
)

// Histogram counts durations in log-linear buckets. Record is safe for
// concurrent use and allocates nothing; the zero value is empty and ready.
type Histogram struct {
	counts [numBuckets]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64 // nanoseconds
	min    atomic.Int64 // nanoseconds + 1, so that 0 means unset
	max    atomic.Int64 // nanoseconds
}

// bucketOf returns the bucket that holds v nanoseconds (0 <= v < maxTracked).
func bucketOf(v int64) int {
	shift := max(0, bits.Len64(uint64(v))-subBits)
	return shift*subCount + int(v>>shift)
}

// bucketRange returns the lowest value and the width, in nanoseconds, of bucket i.
func bucketRange(i int) (low, width int64) {
	shift := max(0, i/subCount-1)
	return int64(i-shift*subCount) << shift, int64(1) << shift
}

// Record adds one duration. Negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := int64(min(max(d, 0), maxDuration-1))
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		old := h.min.Load()
		if old != 0 && old <= v+1 || h.min.CompareAndSwap(old, v+1) {
			break
		}
	}
	for {
		old := h.max.Load()
		if old >= v || h.max.CompareAndSwap(old, v) {
			break
		}
	}
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() int64 { return h.n.Load() }

// Min and Max return the exact extremes; 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(max(h.min.Load()-1, 0)) }
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the exact average; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// representative is the value reported for bucket i: its middle, kept
// within the exact extremes.
func (h *Histogram) representative(i int) int64 {
	low, width := bucketRange(i)
	v := low + (width-1)/2
	return min(max(v, h.min.Load()-1), h.max.Load())
}

// Quantile returns the smallest recorded value (to the bucket's precision)
// such that at least a fraction q of all values are at or below it, as the
// nearest-rank definition of a percentile. q is clamped to [0, 1]; 0 when
// empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(min(max(q, 0), 1) * float64(n)))
	rank = max(rank, 1)
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(h.representative(i))
		}
	}
	return h.Max()
}

// Stddev returns the standard deviation, from the buckets' representative values.
func (h *Histogram) Stddev() time.Duration {
	n := h.n.Load()
	if n < 2 {
		return 0
	}
	mean := float64(h.sum.Load()) / float64(n)
	var sq float64
	for i := range h.counts {
		if c := h.counts[i].Load(); c != 0 {
			d := float64(h.representative(i)) - mean
			sq += float64(c) * d * d
		}
	}
	return time.Duration(math.Sqrt(sq / float64(n)))
}

// Bar is one line of a text histogram: Count values were above the
// previous bar's bound and at most UpToMs milliseconds.
type Bar struct {
	UpToMs float64 `json:"up_to_ms"`
	Count  int64   `json:"count"`
}

// Bars groups the counts under bounds of 1, 2 and 5 times a power of ten
// (microseconds to seconds), from the first bound that holds the minimum
// to the first that holds the maximum.
func (h *Histogram) Bars() []Bar {
	if h.n.Load() == 0 {
		return nil
	}
	var bounds []int64 // nanoseconds
	for p := int64(1000); p <= maxTracked; p *= 10 {
		bounds = append(bounds, p, 2*p, 5*p)
	}
	lo, hi := h.min.Load()-1, h.max.Load()
	var bars []Bar
	b := 0
	for b < len(bounds)-1 && bounds[b] < lo {
		b++
	}
	first := b
	for ; b < len(bounds); b++ {
		bars = append(bars, Bar{UpToMs: float64(bounds[b]) / 1e6})
		if bounds[b] >= hi {
			break
		}
	}
	for i := range h.counts {
		c := h.counts[i].Load()
		if c == 0 {
			continue
		}
		v := h.representative(i)
		j := first
		for j < first+len(bars)-1 && bounds[j] < v {
			j++
		}
		bars[j-first].Count += c
	}
	return bars
}
