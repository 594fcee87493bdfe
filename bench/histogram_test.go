package bench

import (
	"math"
	"testing"
	"time"
)

func TestBucketRangeHoldsValue(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 123456789, maxTracked - 1} {
		i := bucketOf(v)
		low, width := bucketRange(i)
		if v < low || v >= low+width {
			t.Errorf("value %d: bucket %d is [%d, %d), want it to hold the value", v, i, low, low+width)
		}
		if v >= 256 && float64(width)/float64(v) > 1.0/128 {
			t.Errorf("value %d: bucket width %d, want at most 1/128 of the value", v, width)
		}
		if i >= numBuckets {
			t.Errorf("value %d: bucket %d, want below numBuckets %d", v, i, numBuckets)
		}
	}
}

func TestQuantile(t *testing.T) {
	// 1..1000 µs, once each.
	var uniform Histogram
	for i := 1; i <= 1000; i++ {
		uniform.Record(time.Duration(i) * time.Microsecond)
	}
	// 99 fast requests and one slow one.
	var outlier Histogram
	for range 99 {
		outlier.Record(time.Millisecond)
	}
	outlier.Record(time.Second)

	for _, tc := range []struct {
		name string
		h    *Histogram
		q    float64
		want time.Duration
	}{
		{"uniform p0", &uniform, 0, time.Microsecond},
		{"uniform p50", &uniform, 0.5, 500 * time.Microsecond},
		{"uniform p90", &uniform, 0.9, 900 * time.Microsecond},
		{"uniform p99", &uniform, 0.99, 990 * time.Microsecond},
		{"uniform p99.9", &uniform, 0.999, 999 * time.Microsecond},
		{"uniform p100", &uniform, 1, 1000 * time.Microsecond},
		{"outlier p50", &outlier, 0.5, time.Millisecond},
		{"outlier p99", &outlier, 0.99, time.Millisecond},
		{"outlier p99.9", &outlier, 0.999, time.Second},
		{"empty p50", &Histogram{}, 0.5, 0},
	} {
		got := tc.h.Quantile(tc.q)
		if diff := math.Abs(float64(got - tc.want)); diff > float64(tc.want)/128 {
			t.Errorf("%s: got %v, want %v (within 1/128)", tc.name, got, tc.want)
		}
	}
	if got, want := uniform.Min(), time.Microsecond; got != want {
		t.Errorf("min: got %v, want %v", got, want)
	}
	if got, want := uniform.Max(), time.Millisecond; got != want {
		t.Errorf("max: got %v, want %v", got, want)
	}
	if got, want := uniform.Mean(), 500500*time.Nanosecond; got != want {
		t.Errorf("mean: got %v, want %v", got, want)
	}
	// The population standard deviation of 1..1000 µs is 288.675 µs.
	if got, want := uniform.Stddev(), 288675*time.Nanosecond; math.Abs(float64(got-want)) > float64(want)/100 {
		t.Errorf("stddev: got %v, want %v (within 1%%)", got, want)
	}
}

func TestRecordClamps(t *testing.T) {
	var h Histogram
	h.Record(-time.Second)
	h.Record(time.Hour)
	if got := h.Min(); got != 0 {
		t.Errorf("min after a negative value: got %v, want 0", got)
	}
	if got, want := h.Max(), maxDuration-1; got != want {
		t.Errorf("max after an hour: got %v, want %v", got, want)
	}
}

func TestBars(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{300 * time.Microsecond, 800 * time.Microsecond, 1500 * time.Microsecond, 1500 * time.Microsecond, 4 * time.Millisecond} {
		h.Record(d)
	}
	want := []Bar{{0.5, 1}, {1, 1}, {2, 2}, {5, 1}}
	got := h.Bars()
	if len(got) != len(want) {
		t.Fatalf("bars: got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bar %d: got %v, want %v", i, got[i], want[i])
		}
	}
}
