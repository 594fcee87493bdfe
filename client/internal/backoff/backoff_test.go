package backoff

import (
	"testing"
	"time"
)

func TestNextDoublesToTheCapWithJitter(t *testing.T) {
	tests := []struct {
		name     string
		b        Backoff
		wantBase []time.Duration // each delay is in [0.8 base, base]
	}{
		{"defaults", Backoff{}, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}},
		{"custom", Backoff{Min: 10 * time.Millisecond, Max: 25 * time.Millisecond}, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 25 * time.Millisecond, 25 * time.Millisecond}},
		{"max below min", Backoff{Min: time.Second, Max: time.Millisecond}, []time.Duration{time.Second, time.Second}},
	}
	for _, tt := range tests {
		for i, base := range tt.wantBase {
			got := tt.b.Next()
			if got > base || got < base*4/5 {
				t.Errorf("%s: delay %d = %v, want within [%v, %v]", tt.name, i, got, base*4/5, base)
			}
		}
		tt.b.Reset()
		if got, base := tt.b.Next(), tt.wantBase[0]; got > base || got < base*4/5 {
			t.Errorf("%s: after Reset delay = %v, want about %v", tt.name, got, base)
		}
	}
}
