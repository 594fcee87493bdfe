package adt

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTreeStab(t *testing.T) {
	var tr Tree[string]
	for _, iv := range []struct{ begin, end string }{
		{"a", "c"}, {"b", "d"}, {"b", "d"}, {"c", ""}, {"x", "z"}, {"a", "b"},
	} {
		tr.Insert(Interval{Begin: []byte(iv.begin), End: []byte(iv.end)}, iv.begin+"-"+iv.end)
	}
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"", nil},
		{"a", []string{"a-c", "a-b"}},
		{"b", []string{"a-c", "b-d", "b-d"}},
		{"c", []string{"b-d", "b-d", "c-"}},
		{"d", []string{"c-"}},
		{"y", []string{"c-", "x-z"}},
		{"z", []string{"c-"}},
	} {
		var got []string
		tr.Stab([]byte(tc.key), func(e *Entry[string]) { got = append(got, e.Value) })
		slices.Sort(got)
		slices.Sort(tc.want)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Stab(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// TestTreeRandom checks Stab against a linear scan through random inserts
// and deletes.
func TestTreeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() []byte { return []byte(fmt.Sprintf("%03d", rng.IntN(200))) }
	var tr Tree[int]
	live := map[*Entry[int]]bool{}
	for step := range 2000 {
		if rng.IntN(3) > 0 || len(live) == 0 {
			b, e := key(), key()
			if string(b) > string(e) {
				b, e = e, b
			}
			if rng.IntN(10) == 0 {
				e = nil
			}
			live[tr.Insert(Interval{Begin: b, End: e}, step)] = true
		} else {
			for e := range live {
				tr.Delete(e)
				tr.Delete(e) // twice: no effect
				delete(live, e)
				break
			}
		}
		if tr.Len() != len(live) {
			t.Fatalf("step %d: Len %d, want %d", step, tr.Len(), len(live))
		}
		k := key()
		var got, want []int
		tr.Stab(k, func(e *Entry[int]) { got = append(got, e.Value) })
		for e := range live {
			if e.Interval.Contains(k) {
				want = append(want, e.Value)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: Stab(%s) = %v, want %v", step, k, got, want)
		}
	}
	n := 0
	tr.Visit(func(*Entry[int]) { n++ })
	if n != len(live) {
		t.Fatalf("Visit saw %d entries, want %d", n, len(live))
	}
}

func BenchmarkTreeStab(b *testing.B) {
	var tr Tree[int]
	for j := range 1000 {
		tr.Insert(Interval{Begin: []byte(fmt.Sprintf("k%05d", j*9)), End: []byte(fmt.Sprintf("k%05d", j*9+9))}, j)
	}
	b.ResetTimer()
	for i := range b.N {
		tr.Stab([]byte(fmt.Sprintf("k%05d", i%9000)), func(*Entry[int]) {})
	}
}
