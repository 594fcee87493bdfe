package robustness

import (
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// The checks are not a formality: each rejects the history it exists for.
// Times are in abstract units; c.ops are the client's view.
func TestCheckerRejects(t *testing.T) {
	put := func(client int, key, value string, call, ret, rev int64) *kvOp {
		return &kvOp{client: client, kind: "put", key: key, value: value, call: call, ret: ret, rev: rev}
	}
	get := func(client int, key, value string, mod, call, ret, rev int64) *kvOp {
		return &kvOp{client: client, kind: "get", key: key, found: value != "", got: value, gotMod: mod, call: call, ret: ret, rev: rev}
	}
	ev := func(key, value string, rev int64) event {
		return event{typ: mvccpb.PUT, key: key, value: value, modRev: rev, createRev: rev, version: 1}
	}
	// A watcher of the whole key space from revision 2 that saw both puts.
	fullWatch := func(resps ...watchResp) *watchSession {
		return &watchSession{key: "k", end: "l", startRev: 2, resps: resps}
	}
	base := func() *checker {
		return &checker{
			ops:     []*kvOp{put(0, "k01", "a", 0, 10, 2), put(1, "k02", "b", 20, 30, 3)},
			watches: []*watchSession{fullWatch(watchResp{events: []event{ev("k01", "a", 2), ev("k02", "b", 3)}})},
			lastRev: 3, finalLo: 100,
		}
	}
	for _, tc := range []struct {
		name   string
		change func(c *checker)
		want   string // in a violation
	}{
		{"nothing wrong", func(c *checker) {}, ""},
		{"stale read", func(c *checker) {
			c.ops = append(c.ops, put(1, "k01", "a2", 40, 50, 4), get(2, "k01", "a", 2, 60, 70, 4))
			c.watches[0].resps = append(c.watches[0].resps, watchResp{events: []event{{typ: mvccpb.PUT, key: "k01", value: "a2", modRev: 4, createRev: 2, version: 2}}})
			c.lastRev = 4
		}, "not linearizable"},
		{"mod_revision compare that cannot hold", func(c *checker) {
			c.ops = append(c.ops, &kvOp{client: 2, kind: "txn", key: "k01", value: "a3", expRev: 7, call: 40, ret: 50, rev: 4, succeeded: true})
			c.watches[0].resps = append(c.watches[0].resps, watchResp{events: []event{{typ: mvccpb.PUT, key: "k01", value: "a3", modRev: 4, createRev: 2, version: 2}}})
			c.lastRev = 4
		}, "not linearizable"},
		{"put with a revoked lease", func(c *checker) {
			c.ops = append(c.ops, &kvOp{client: 2, kind: "revoke", lease: 9, call: 40, ret: 50, rev: 3},
				&kvOp{client: 2, kind: "put", key: "k01", value: "a4", lease: 9, call: 60, ret: 70, rev: 4})
			c.watches[0].resps = append(c.watches[0].resps, watchResp{events: []event{{typ: mvccpb.PUT, key: "k01", value: "a4", modRev: 4, createRev: 2, version: 2, lease: 9}}})
			c.lastRev = 4
		}, "not linearizable"},
		{"revision going back", func(c *checker) { c.ops[1].rev = 2 }, "written twice"},
		{"missed event", func(c *checker) {
			c.watches = append(c.watches, &watchSession{key: "k02", startRev: 2, resps: []watchResp{{rev: 5, progress: true}}})
		}, "missed event k02 at 3"},
		{"event twice", func(c *checker) {
			c.watches[0].resps = append(c.watches[0].resps, watchResp{events: []event{ev("k02", "b", 3)}})
		}, "twice"},
		{"event outside the range", func(c *checker) {
			c.watches = append(c.watches, &watchSession{key: "k01", startRev: 2, resps: []watchResp{{events: []event{ev("k01", "a", 2), ev("k02", "b", 3)}}}})
		}, "outside the range"},
		{"event behind a progress notification", func(c *checker) {
			c.watches[0].resps = []watchResp{{events: []event{ev("k01", "a", 2)}}, {rev: 3, progress: true}, {events: []event{ev("k02", "b", 3)}}}
		}, "after a progress notification"},
		{"compaction error for a start above it", func(c *checker) {
			c.comps = []compaction{{rev: 2}}
			c.watches = append(c.watches, &watchSession{key: "k01", startRev: 2, resps: []watchResp{{canceled: true, compactRev: 2}}})
		}, "compaction error at 2 for a watch that resumes at 2"},
		{"a value nobody wrote", func(c *checker) {
			c.watches[0].resps[0].events[1].value = "zz"
		}, "no client wrote"},
		{"version not counting up", func(c *checker) {
			c.ops = append(c.ops, put(1, "k01", "a2", 40, 50, 4))
			c.watches[0].resps = append(c.watches[0].resps, watchResp{events: []event{ev("k01", "a2", 4)}})
			c.lastRev = 4
		}, "version 1 created at 4, after a put at 2"},
		{"wrong prev_kv", func(c *checker) {
			c.ops = append(c.ops, put(1, "k01", "a2", 40, 50, 4))
			e := event{typ: mvccpb.PUT, key: "k01", value: "a2", modRev: 4, createRev: 2, version: 2, hasPrev: true, prevValue: "b", prevMod: 3}
			c.watches[0].prevKV = true
			c.watches[0].resps = append(c.watches[0].resps, watchResp{events: []event{e}})
			c.lastRev = 4
		}, "has prev_kv"},
		{"lease expired before its TTL", func(c *checker) {
			c.expiries = map[int64]int64{9: 100}
			c.ops = append(c.ops, &kvOp{client: 2, kind: "put", key: "k01", value: "a5", lease: 9, call: 40, ret: 50, rev: 4},
				get(2, "k01", "", 0, 60, 70, 5))
			c.watches[0].resps = append(c.watches[0].resps, watchResp{events: []event{
				{typ: mvccpb.PUT, key: "k01", value: "a5", modRev: 4, createRev: 2, version: 2, lease: 9},
				{typ: mvccpb.DELETE, key: "k01", modRev: 5}}})
			c.lastRev = 5
		}, "not linearizable"},
		{"lease not found before its TTL", func(c *checker) {
			c.expiries, c.goneAt = map[int64]int64{9: 100}, map[int64]int64{9: 50}
		}, "before its TTL ran out"},
		{"acknowledged write lost", func(c *checker) {
			c.finalLo = 2
			c.final = []event{ev("k01", "a", 2)}
			c.watches = nil
		}, "is not in the final store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			c.r = &report{}
			tc.change(c)
			c.run(10 * time.Second)
			all := strings.Join(c.r.violations, "\n")
			if tc.want == "" {
				if all != "" {
					t.Fatalf("violations in a correct history:\n%s", all)
				}
				return
			}
			if !strings.Contains(all, tc.want) {
				t.Fatalf("violations %q, want one with %q", all, tc.want)
			}
		})
	}
}
