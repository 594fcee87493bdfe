package v2http

import (
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		path, file, dir string
		depth           int
	}{
		{"/a", "_cairn/v2/k/001/a", "_cairn/v2/k/001/a/", 1},
		{"/a/b", "_cairn/v2/k/002/a/b", "_cairn/v2/k/002/a/b/", 2},
		{"/a/_h/c", "_cairn/v2/k/003/a/_h/c", "_cairn/v2/k/003/a/_h/c/", 3},
	} {
		if got := fileKey(tc.path); got != tc.file {
			t.Errorf("fileKey(%q) = %q, want %q", tc.path, got, tc.file)
		}
		if got := dirKey(tc.path); got != tc.dir {
			t.Errorf("dirKey(%q) = %q, want %q", tc.path, got, tc.dir)
		}
		if got := depth(tc.path); got != tc.depth {
			t.Errorf("depth(%q) = %d, want %d", tc.path, got, tc.depth)
		}
		for _, k := range []struct {
			key string
			dir bool
		}{{tc.file, false}, {tc.dir, true}} {
			p, dir, ok := pathOf([]byte(k.key))
			if !ok || p != tc.path || dir != k.dir {
				t.Errorf("pathOf(%q) = %q, %v, %v; want %q, %v, true", k.key, p, dir, ok, tc.path, k.dir)
			}
		}
	}
	if got, want := depthPrefix("/", 1), "_cairn/v2/k/001/"; got != want {
		t.Errorf("depthPrefix(/, 1) = %q, want %q", got, want)
	}
	if got, want := depthPrefix("/a/b", 3), "_cairn/v2/k/003/a/b/"; got != want {
		t.Errorf("depthPrefix(/a/b, 3) = %q, want %q", got, want)
	}
	if got, want := prefixes("/a/b/c"), []string{"/a", "/a/b", "/a/b/c"}; len(got) != 3 || got[0] != want[0] || got[2] != want[2] {
		t.Errorf("prefixes = %q, want %q", got, want)
	}
	for _, bad := range []string{"other/key", "_cairn/v2/act", "_cairn/v2/k/00"} {
		if _, _, ok := pathOf([]byte(bad)); ok {
			t.Errorf("pathOf(%q) accepted a key that is no node", bad)
		}
	}
}

func TestValueEncoding(t *testing.T) {
	exp := time.Unix(1700000000, 123)
	for _, tc := range []struct {
		name     string
		key      string
		created  int64
		expire   time.Time
		value    string
		wantCrt  int64
		wantVal  string
		wantTTL  bool
		modified int64
	}{
		{"new file", "_cairn/v2/k/001/f", 0, time.Time{}, "v", 7, "v", false, 7},
		{"updated file keeps its created index", "_cairn/v2/k/001/f", 3, exp, "", 3, "", true, 9},
		{"binary value", "_cairn/v2/k/001/f", 0, time.Time{}, "\x00\xff\x01", 5, "\x00\xff\x01", false, 5},
		{"dir", "_cairn/v2/k/001/d/", 0, exp, "", 4, "", true, 4},
	} {
		kv := &mvccpb.KeyValue{Key: []byte(tc.key), Value: []byte(encodeValue(tc.created, tc.expire, tc.value)), ModRevision: tc.modified}
		n, err := decodeNode(kv)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n.created != tc.wantCrt || n.value != tc.wantVal || n.modified != tc.modified || n.expire.IsZero() == tc.wantTTL {
			t.Errorf("%s: got %+v", tc.name, n)
		}
		if tc.wantTTL && !n.expire.Equal(tc.expire) {
			t.Errorf("%s: expire %v, want %v", tc.name, n.expire, tc.expire)
		}
	}
	for _, bad := range []string{"", "\x02", "\x01", "\x01\x80"} {
		if _, err := decodeNode(&mvccpb.KeyValue{Key: []byte("_cairn/v2/k/001/f"), Value: []byte(bad)}); err == nil {
			t.Errorf("decodeNode(%q) accepted a malformed value", bad)
		}
	}
}

// TestExpirationAndTTL: the TTL is the seconds left rounded up, as
// v2store's expirationAndTTL.
func TestExpirationAndTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		left time.Duration
		want int64
	}{{5 * time.Second, 5}, {4*time.Second + time.Nanosecond, 5}, {time.Millisecond, 1}, {0, 0}, {-300 * time.Millisecond, 0}, {-1500 * time.Millisecond, -1}} {
		exp, ttl := expirationAndTTL(now.Add(tc.left), now)
		if ttl != tc.want || exp == nil || exp.Location() != time.UTC {
			t.Errorf("%v left: ttl %d (expiration %v), want %d in UTC", tc.left, ttl, exp, tc.want)
		}
	}
	if exp, ttl := expirationAndTTL(time.Time{}, now); exp != nil || ttl != 0 {
		t.Errorf("permanent node: %v, %d", exp, ttl)
	}
}

func TestCompareFailCause(t *testing.T) {
	n := &inode{value: "v", modified: 10}
	for _, tc := range []struct {
		prevValue string
		prevIndex uint64
		want      string
	}{
		{"v", 10, ""},
		{"", 0, ""},
		{"x", 0, "[x != v]"},
		{"x", 10, "[x != v]"},
		{"", 3, "[3 != 10]"},
		{"x", 3, "[x != v] [3 != 10]"},
	} {
		err := compareFail(n, tc.prevValue, tc.prevIndex, 11)
		got := ""
		if err != nil {
			e := err.(*Error)
			if e.ErrorCode != ecodeTestFailed || e.Index != 11 {
				t.Errorf("%q/%d: %+v", tc.prevValue, tc.prevIndex, e)
			}
			got = e.Cause
		}
		if got != tc.want {
			t.Errorf("compare %q/%d: cause %q, want %q", tc.prevValue, tc.prevIndex, got, tc.want)
		}
	}
}

// TestWatchMatches follows watcherHub.notify (live) and EventHistory.scan
// (history).
func TestWatchMatches(t *testing.T) {
	set := func(k string) candidate { return candidate{ev: &Event{Action: actionSet, Node: &Node{Key: k}}} }
	delDir := candidate{ev: &Event{Action: actionDelete, Node: &Node{Key: "/d", Dir: true}, PrevNode: &Node{Key: "/d", Dir: true}},
		deleted: []string{"/d/x", "/d"}}
	expDir := candidate{ev: &Event{Action: actionExpire, Node: &Node{Key: "/d", Dir: true}, PrevNode: &Node{Key: "/d", Dir: true}}, deleted: []string{"/d"}}
	for _, tc := range []struct {
		name       string
		c          candidate
		w          string
		recursive  bool
		live, hist bool
	}{
		{"same key", set("/a"), "/a", false, true, true},
		{"child, not recursive", set("/a/b"), "/a", false, false, false},
		{"child, recursive", set("/a/b"), "/a", true, true, true},
		{"root recursive", set("/a/b"), "/", true, true, true},
		{"sibling with the prefix", set("/ab"), "/a", true, false, false},
		{"hidden child: live skips, history does not", set("/a/_h"), "/a", true, false, true},
		{"hidden key watched itself", set("/a/_h"), "/a/_h", false, true, true},
		{"deleted dir, watcher of a removed child", delDir, "/d/x", false, true, true},
		{"deleted dir, watcher of a path never there", delDir, "/d/y", false, false, true},
		{"deleted dir, string prefix in history", delDir, "/dx", false, false, true},
		{"expired dir, watcher below", expDir, "/d/x/y", false, true, true},
	} {
		if got := tc.c.matches(tc.w, tc.recursive, false); got != tc.live {
			t.Errorf("%s: live match %v, want %v", tc.name, got, tc.live)
		}
		if got := tc.c.matches(tc.w, tc.recursive, true); got != tc.hist {
			t.Errorf("%s: history match %v, want %v", tc.name, got, tc.hist)
		}
	}
}

func TestErrorStatus(t *testing.T) {
	for code, want := range map[int]int{100: 404, 101: 412, 102: 403, 104: 400, 105: 412, 107: 400, 108: 403, 110: 401, 209: 400, 300: 500, 401: 400} {
		if got := newError(code, "", 0).StatusCode(); got != want {
			t.Errorf("error %d: status %d, want %d", code, got, want)
		}
		if errorMessages[code] == "" {
			t.Errorf("error %d has no message", code)
		}
	}
}
