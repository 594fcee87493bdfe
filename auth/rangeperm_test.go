package auth

import "testing"

func ivs(pairs ...string) intervals {
	var out intervals
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, interval{bound(pairs[i]), bound(pairs[i+1])})
	}
	return out
}

// The cases of etcd's TestRangePermission and TestKeyPermission
// (range_perm_cache_test.go); an empty end is unbounded.
func TestIntervalsContains(t *testing.T) {
	for i, tc := range []struct {
		perms      intervals
		begin, end string
		want       bool
	}{
		{ivs("a", "c", "x", "z"), "a", "z", false},
		{ivs("a", "f", "c", "d", "f", "z"), "a", "z", true},
		{ivs("a", "d", "a", "b", "c", "f"), "a", "f", true},
		{ivs("a", "d", "a", "b", "c", "f"), "a", "", false},
		{ivs("a", ""), "a", "", true},
		{ivs("\x00", ""), "a", "", true},
		{ivs("\x00", ""), "\x00", "", true},
		{ivs("a", "b", "c", "d"), "a", "d", false}, // a gap at [b, c)
		{ivs("a", "b", "b", "c"), "a", "c", true},  // touching intervals join
		{ivs("b", "z"), "a", "c", false},           // starts before the permission
		{nil, "a", "b", false},
	} {
		sortIntervals(tc.perms)
		if got := tc.perms.contains(interval{bound(tc.begin), bound(tc.end)}); got != tc.want {
			t.Errorf("#%d: contains(%q, %q) = %t, want %t", i, tc.begin, tc.end, got, tc.want)
		}
	}
}

func TestIntervalsIntersectsPoint(t *testing.T) {
	for i, tc := range []struct {
		perms intervals
		key   string
		want  bool
	}{
		{ivs("a", "c", "x", "z"), "f", false},
		{ivs("a", "f", "c", "d", "f", "z"), "b", true},
		{ivs("a", "d", "a", "b", "c", "f"), "d", true},
		{ivs("a", "d", "a", "b", "c", "f"), "f", false},
		{ivs("a", "d", "a", "b", "c", ""), "f", true},
		{ivs("a", "d", "a", "b", "\x00", ""), "f", true},
		{ivs("a", "a\x00"), "a", true}, // a single-key permission
		{ivs("a", "a\x00"), "a\x00", false},
	} {
		sortIntervals(tc.perms)
		if got := tc.perms.intersects(pointInterval([]byte(tc.key))); got != tc.want {
			t.Errorf("#%d: intersects(%q) = %t, want %t", i, tc.key, got, tc.want)
		}
	}
}

// TestIsValidPermissionRange is etcd's TestRangeCheck.
func TestIsValidPermissionRange(t *testing.T) {
	for _, tc := range []struct {
		key, rangeEnd []byte
		want          bool
	}{
		{[]byte("a"), []byte(""), true},
		{[]byte("a"), nil, true},
		{[]byte("a"), []byte("b"), true},
		{[]byte("a"), []byte("a"), false},
		{[]byte("b"), []byte("a"), false},
		{[]byte(""), []byte("a"), false},
		{[]byte(""), []byte(""), false},
		{[]byte(""), []byte("\x00"), false},
		{[]byte("\x00"), []byte(""), true},
		{[]byte("a"), []byte("\x00"), true},
		{[]byte("\x00"), []byte("\x00"), true},
	} {
		if got := isValidPermissionRange(tc.key, tc.rangeEnd); got != tc.want {
			t.Errorf("isValidPermissionRange(%q, %q) = %t, want %t", tc.key, tc.rangeEnd, got, tc.want)
		}
	}
}
