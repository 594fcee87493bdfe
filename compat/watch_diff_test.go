package compat

// Watch differential test.
//
// What it proves: for every scenario below, a fresh Cairn member and a
// fresh etcd v3.7 member, given the same watch requests on raw Watch
// streams and the same writes, send the same WatchResponses: per watch ID,
// the same responses in the same order, each compared field by field
// (header revision; created, canceled, cancel_reason, compact_revision,
// fragment, watch_id; every event's type and key-value with create and mod
// revisions, version, lease and value, and prev_kv). Only the header's
// cluster_id, member_id and raft_term are reduced to "set or not"; lease
// IDs here are chosen by the client, so they need no mapping.
//
// Responses of different watchers on one stream interleave differently
// from run to run, so they are compared per watch ID (see
// watch_harness_test.go). Every create waits for its created response
// before the scenario goes on, so writes happen after the watcher exists;
// a comparison waits until both streams agree and are quiet, or 3 s.
//
// Header revisions of catch-up responses (a start revision in the past)
// are the store's revision when the watcher caught up in etcd; no scenario
// writes while a watcher catches up, so that revision is the current one
// and is compared as is.
//
// A failure prints the stream, the watch ID, both members' responses for
// it, and the steps of the scenario so far: that is the reproduction.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

const (
	noPut    = pb.WatchCreateRequest_NOPUT
	noDelete = pb.WatchCreateRequest_NODELETE
)

// watchScenarios each run on a fresh pair of members.
var watchScenarios = []struct {
	name string
	opts cluster.Options
	run  func(e *watchEnv)
}{
	{name: "ranges", run: watchRangesSeq},
	{name: "prev kv", run: watchPrevKVSeq},
	{name: "filters", run: watchFilterSeq},
	{name: "catch up", run: watchCatchUpSeq},
	{name: "catch up many revisions", run: watchCatchUpManySeq},
	{name: "future start", run: watchFutureSeq},
	{name: "compacted", run: watchCompactedSeq},
	{name: "compacted tombstone", run: watchCompactedTombstoneSeq},
	{name: "compacted then progress", run: watchCompactedProgressSeq},
	{name: "compacted then cancel", run: watchCompactedCancelSeq},
	{name: "watch ids", run: watchIDSeq},
	{name: "watch id -1", run: watchIDMinusOneSeq},
	{name: "refusals", run: watchRefusalSeq},
	{name: "cancel", run: watchCancelSeq},
	{name: "close send", run: watchCloseSendSeq},
	{name: "progress request", run: watchProgressSeq},
	{name: "progress notify", opts: cluster.Options{WatchProgressNotifyInterval: 200 * time.Millisecond}, run: watchProgressNotifySeq},
	{name: "fragment", opts: cluster.Options{MaxRequestBytes: 128 << 10}, run: watchFragmentSeq},
	{name: "lease revoke and expiry", run: watchLeaseSeq},
	{name: "prev kv of deletes without prev kv", run: watchDeletePrevKVSeq},
	{name: "watch after write", run: watchAfterWriteSeq},
}

func TestWatchDiff(t *testing.T) {
	for _, sc := range watchScenarios {
		t.Run(strings.ReplaceAll(sc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			e := newWatchEnv(t, sc.opts)
			sc.run(e)
			e.check()
		})
	}
}

// watchRangesSeq covers what a watcher covers: one key, a prefix, every
// key from a key on, every key, an explicit range, binary keys and the
// empty key, on two streams; and which writes make events: put, delete,
// delete range, and a txn whose writes arrive as one response.
func watchRangesSeq(e *watchEnv) {
	s := e.open("A")
	s.create(watchKey("a"))            // 0
	s.create(watchPrefix("a"))         // 1: [a, b)
	s.create(watchRange("b", "\x00"))  // 2: every key >= b
	s.create(watchAll())               // 3
	s.create(watchRange("ab", "ac"))   // 4
	s.create(watchKey("\x00k\xff"))    // 5: binary key
	s.create(&pb.WatchCreateRequest{}) // 6: empty key: the key "\x00"
	s.create(watchRange("", "b"))      // 7: ["\x00", b)
	b := e.open("B")
	b.create(watchPrefix("a")) // 0 on B
	b.create(watchKey("c"))    // 1 on B

	e.do(put("a", "1"))                                                                      // rev 2
	e.do(put("ab", "2"))                                                                     // rev 3
	e.do(put("b", "3"))                                                                      // rev 4
	e.do(put("c", "4"))                                                                      // rev 5
	e.do(put("\x00k\xff", "5"))                                                              // rev 6
	e.do(put("\x00", "6"))                                                                   // rev 7
	e.do(put("a", "11"))                                                                     // rev 8
	e.do(del("a"))                                                                           // rev 9
	e.do(del("nope"))                                                                        // nothing deleted: no event
	e.do(delRange("a", "c"))                                                                 // rev 10: ab, b
	e.do(txn(nil, ops(put("a", "t1"), put("abc", "t2"), delRange("c", "d"), get("a")), nil)) // rev 11
	e.do(txn(cmps(cmpValue("a", eq, "no")), ops(put("a", "x")), ops(get("a"))))              // read-only branch
	e.do(prefix("a"))                                                                        // a read
	e.do(&pb.PutRequest{Key: []byte("a"), IgnoreValue: true})                                // rev 12: same value
	e.do(txn(nil, ops(txn(nil, ops(put("ab", "n1")), nil), put("c", "n2")), nil))            // rev 13: nested txn
}

// watchPrevKVSeq covers prev_kv on puts (none for a create), on puts that
// keep the value or the lease, on deletes and in txns.
func watchPrevKVSeq(e *watchEnv) {
	s := e.open("A")
	s.create(withPrevKV(watchPrefix("k"))) // 0
	s.create(watchPrefix("k"))             // 1: without prev_kv
	s.create(withPrevKV(watchKey("k1")))   // 2
	e.doLease(leaseGrant(5, 60))
	e.do(put("k1", "v1"))                                                               // rev 2: a create: no prev
	e.do(put("k1", "v2"))                                                               // rev 3: prev v1
	e.do(put("k2", "x"))                                                                // rev 4
	e.do(&pb.PutRequest{Key: []byte("k1"), IgnoreValue: true, Lease: 5})                // rev 5: value v2, lease 5
	e.do(&pb.PutRequest{Key: []byte("k1"), Value: []byte("v3"), IgnoreLease: true})     // rev 6: keeps lease 5
	e.do(del("k1"))                                                                     // rev 7: prev v3
	e.do(put("k1", "again"))                                                            // rev 8: a create again
	e.do(txn(nil, ops(put("k1", "t"), put("k3", "n"), del("k2")), nil))                 // rev 9
	e.do(&pb.DeleteRangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), PrevKv: true}) // rev 10: k1, k3
}

// watchFilterSeq covers NOPUT and NODELETE: a response whose events are
// all filtered out is not sent.
func watchFilterSeq(e *watchEnv) {
	s := e.open("A")
	s.create(withFilters(watchPrefix("f"), noPut))                               // 0: deletes only
	s.create(withFilters(watchPrefix("f"), noDelete))                            // 1: puts only
	s.create(withFilters(watchPrefix("f"), noPut, noDelete))                     // 2: nothing
	s.create(withPrevKV(withFilters(watchPrefix("f"), noPut)))                   // 3
	s.create(withFilters(watchPrefix("f"), noDelete, noDelete))                  // 4: a filter twice
	s.create(withFilters(watchPrefix("f"), pb.WatchCreateRequest_FilterType(7))) // 5: unknown filter
	e.do(put("f1", "1"))                                                         // rev 2
	e.do(put("f2", "2"))                                                         // rev 3
	e.do(del("f1"))                                                              // rev 4
	e.do(txn(nil, ops(put("f3", "3"), del("f2")), nil))                          // rev 5
	e.do(txn(nil, ops(put("f4", "4"), put("f5", "5")), nil))                     // rev 6: nothing for 0, 2 and 3
	e.do(delRange("f", "g"))                                                     // rev 7
}

// watchCatchUpSeq covers start revisions in the past: each watcher gets
// the events from its start revision in one response, then live events.
func watchCatchUpSeq(e *watchEnv) {
	e.do(put("a", "1"))                                    // rev 2
	e.do(put("b", "2"))                                    // rev 3
	e.do(put("a", "3"))                                    // rev 4
	e.do(del("b"))                                         // rev 5
	e.do(txn(nil, ops(put("a", "4"), put("c", "5")), nil)) // rev 6
	e.do(put("c", "6"))                                    // rev 7
	s := e.open("A")
	s.create(from(2, watchKey("a")))                     // 0: revs 2, 4, 6
	s.create(from(1, watchAll()))                        // 1: everything
	s.create(withPrevKV(from(3, watchRange("a", "c"))))  // 2
	s.create(withFilters(from(5, watchKey("b")), noPut)) // 3: the delete at 5
	s.create(from(7, watchAll()))                        // 4: the current revision
	s.create(from(8, watchAll()))                        // 5: the next revision: nothing yet
	s.create(from(3, watchKey("zz")))                    // 6: nothing to catch up
	e.settle()
	e.do(put("a", "5")) // rev 8
	e.do(del("c"))      // rev 9
}

// watchCatchUpManySeq catches up over 1200 revisions. etcd sends at most
// 1000 revisions per catch-up response.
func watchCatchUpManySeq(e *watchEnv) {
	var reqs []any
	for i := range 1200 {
		reqs = append(reqs, put(fmt.Sprintf("m%d", i%10), fmt.Sprint(i))) // revs 2..1201
	}
	e.doBulk(reqs)
	s := e.open("A")
	s.create(from(1, watchPrefix("m")))             // 0
	s.create(withPrevKV(from(600, watchKey("m3")))) // 1
	e.settle()
	e.do(put("m0", "live")) // rev 1202
}

// watchFutureSeq covers start revisions in the future: the watcher waits
// for them, and a progress request is not answered while it waits.
func watchFutureSeq(e *watchEnv) {
	e.do(put("a", "1")) // rev 2
	s := e.open("A")
	s.create(from(5, watchKey("a"))) // 0
	s.create(from(4, watchAll()))    // 1
	s.progress()                     // watchers wait for future revisions: no answer
	e.do(put("a", "2"))              // rev 3
	e.do(put("a", "3"))              // rev 4: watcher 1
	e.do(put("a", "4"))              // rev 5: both
	s.progress()                     // answered at rev 5, watch ID -1
}

// watchCompactedSeq covers start revisions below, at and above the
// compacted revision.
func watchCompactedSeq(e *watchEnv) {
	e.do(put("a", "1")) // rev 2
	e.do(put("a", "2")) // rev 3
	e.do(put("b", "1")) // rev 4
	e.do(put("b", "2")) // rev 5
	e.do(put("a", "3")) // rev 6
	e.do(compact(5))
	s := e.open("A")
	s.create(from(3, watchKey("a")))             // 0: compacted: compact_revision 5, canceled
	s.create(from(4, watchAll()))                // 1: compacted
	s.create(withPrevKV(from(5, watchAll())))    // 2: revs 5 (prev compacted) and 6 (prev a=2 at 3, kept)
	s.create(withPrevKV(from(6, watchKey("a")))) // 3
	s.create(from(1, watchKey("zz")))            // 4: compacted, though nothing happened to zz
	e.settle()
	e.do(put("b", "3")) // rev 7
}

// watchCompactedTombstoneSeq starts a watcher at a compacted revision that
// deleted a key.
func watchCompactedTombstoneSeq(e *watchEnv) {
	e.do(put("a", "1")) // rev 2
	e.do(put("b", "1")) // rev 3
	e.do(del("a"))      // rev 4
	e.do(put("b", "2")) // rev 5
	e.do(compact(4))
	s := e.open("A")
	s.create(from(4, watchAll()))                // 0
	s.create(withPrevKV(from(4, watchKey("a")))) // 1
	e.settle()
	e.do(put("a", "2")) // rev 6
}

// watchCompactedProgressSeq asks for progress on a stream that holds a
// watcher canceled by compaction.
func watchCompactedProgressSeq(e *watchEnv) {
	e.do(put("a", "1")) // rev 2
	e.do(put("a", "2")) // rev 3
	e.do(compact(3))
	s := e.open("A")
	s.create(from(2, watchKey("a"))) // 0: compacted
	s.create(watchKey("b"))          // 1: synced
	e.settle()
	s.progress()
	s.cancel(0)
	s.progress()
}

// watchCompactedCancelSeq reuses and cancels the client-chosen ID of a
// watcher canceled by compaction.
func watchCompactedCancelSeq(e *watchEnv) {
	e.do(put("a", "1")) // rev 2
	e.do(put("a", "2")) // rev 3
	e.do(compact(3))
	s := e.open("A")
	s.create(withID(7, from(2, watchKey("a")))) // compacted
	e.settle()
	s.create(withID(7, watchKey("b"))) // the ID of the compacted watcher
	s.cancel(7)
	s.create(withID(7, watchKey("b")))
	e.do(put("b", "1")) // rev 4
}

// watchIDSeq covers client-chosen watch IDs: the stream's own IDs skip
// them, a duplicate is refused, a canceled ID may be reused.
func watchIDSeq(e *watchEnv) {
	s := e.open("A")
	s.create(withID(1, watchKey("a")))     // 1
	s.create(watchKey("a"))                // 0
	s.create(watchKey("a"))                // 2: skips 1
	s.create(withID(1, watchKey("b")))     // duplicate: refused
	s.create(withID(2, watchKey("b")))     // duplicate of a stream-chosen ID
	s.create(withID(1<<62, watchKey("a"))) // large ID
	s.create(withID(-5, watchKey("a")))    // negative ID
	e.do(put("a", "1"))                    // rev 2
	s.cancel(1)
	s.cancel(1)                        // no longer exists: no answer
	s.cancel(99)                       // never existed
	e.do(put("a", "2"))                // rev 3
	s.create(withID(1, watchKey("b"))) // 1 again
	s.create(watchKey("a"))            // 3
	e.do(put("b", "1"))                // rev 4
	s.cancel(-5)
	s.cancel(1 << 62)
	e.do(put("a", "3")) // rev 5
}

// watchIDMinusOneSeq chooses watch ID -1, the ID of responses that belong
// to no watcher.
func watchIDMinusOneSeq(e *watchEnv) {
	s := e.open("A")
	s.create(withID(-1, watchKey("a")))
	e.do(put("a", "1")) // rev 2
	s.cancel(-1)
	e.do(put("a", "2")) // rev 3
}

// watchRefusalSeq covers create requests refused with a created and
// canceled response with watch ID -1.
func watchRefusalSeq(e *watchEnv) {
	s := e.open("A")
	e.do(put("a", "1"))               // rev 2
	s.create(watchRange("b", "a"))    // range end before the key
	s.create(watchRange("a", "a"))    // empty range
	s.create(from(-1, watchKey("a"))) // negative start revision
	s.create(from(-100, watchAll()))  //
	s.create(watchKey("a"))           // 0: refusals take no ID
	s.create(from(-1, watchRange("b", "a")))
	e.do(put("a", "2")) // rev 3
}

// watchCancelSeq cancels watchers: no events follow the canceled response.
func watchCancelSeq(e *watchEnv) {
	s := e.open("A")
	s.create(watchPrefix("c")) // 0
	s.create(watchPrefix("c")) // 1
	e.do(put("c1", "1"))       // rev 2
	s.cancel(0)
	e.do(put("c2", "2"))                                     // rev 3: watcher 1 only
	e.do(txn(nil, ops(put("c3", "3"), put("c4", "4")), nil)) // rev 4
	s.cancel(1)
	e.do(put("c5", "5")) // rev 5: nobody
	s.progress()         // no watchers: no answer
}

// watchCloseSendSeq closes the client's side of a stream: its watchers
// keep getting events.
func watchCloseSendSeq(e *watchEnv) {
	s := e.open("A")
	s.create(watchKey("a"))
	s.closeSend()
	e.do(put("a", "1")) // rev 2
	e.do(put("a", "2")) // rev 3
}

// watchProgressSeq covers WatchProgressRequest: answered with watch ID -1
// at the current revision when every watcher of the stream is synced, not
// answered on a stream without watchers.
func watchProgressSeq(e *watchEnv) {
	s := e.open("A")
	b := e.open("B")
	s.progress()            // no watchers: no answer
	s.create(watchKey("a")) // 0
	s.progress()            // rev 1
	e.do(put("a", "1"))     // rev 2
	s.progress()            // after the event
	b.create(watchKey("zz"))
	e.do(put("b", "1")) // rev 3
	b.progress()
	s.create(from(1, watchAll())) // 1: catches up
	e.settle()
	s.progress()
	s.progress() // twice: two answers
}

// watchProgressNotifySeq covers progress_notify with a 200 ms interval:
// an idle watcher that asked for it gets progress responses at the current
// revision; one waiting for a future revision does not. How many arrive
// depends on timers, so runs of identical ones count as one.
func watchProgressNotifySeq(e *watchEnv) {
	s := e.open("A")
	s.collapseProgress = true
	s.create(withProgressNotify(watchKey("a"))) // 0
	s.create(watchKey("b"))                     // 1: no progress responses
	s.await("a progress response at rev 1", 0, hasProgressAt(1))
	e.do(put("a", "1")) // rev 2
	s.await("a progress response at rev 2", 0, hasProgressAt(2))
	e.do(put("b", "1")) // rev 3
	s.await("a progress response at rev 3", 0, hasProgressAt(3))
	s.create(withProgressNotify(from(4, watchKey("a")))) // 2: waits for rev 4
	e.do(put("a", "2"))                                  // rev 4
	s.await("a progress response at rev 4", 2, hasProgressAt(4))
	s.await("a progress response at rev 4", 0, hasProgressAt(4))
}

// watchFragmentSeq covers fragment with --max-request-bytes 128 KiB: a
// delete range whose prev_kvs make a 700 KB response, and a txn of two
// puts whose response with prev_kvs is about 220 KB.
func watchFragmentSeq(e *watchEnv) {
	s := e.open("A")
	s.create(withFragment(withPrevKV(watchPrefix("f")))) // 0
	s.create(withFragment(watchPrefix("f")))             // 1
	s.create(withPrevKV(watchPrefix("f")))               // 2: not fragmented
	for i := range 7 {
		e.do(put(fmt.Sprintf("f%d", i), strings.Repeat(fmt.Sprint(i), 100<<10))) // revs 2..8
	}
	e.do(delRange("f", "g"))                                                                                 // rev 9: 7 deletes
	e.do(put("f0", strings.Repeat("a", 55<<10)))                                                             // rev 10
	e.do(put("f1", strings.Repeat("b", 55<<10)))                                                             // rev 11
	e.do(txn(nil, ops(put("f0", strings.Repeat("c", 55<<10)), put("f1", strings.Repeat("d", 55<<10))), nil)) // rev 12
}

// watchLeaseSeq covers the deletes of a lease's keys, by revoke and by
// expiry: one response with every key's delete at one revision.
func watchLeaseSeq(e *watchEnv) {
	s := e.open("A")
	s.create(withPrevKV(watchPrefix("l/"))) // 0
	s.create(watchAll())                    // 1
	e.doLease(leaseGrant(100, 60))
	e.doLease(leaseGrant(200, 2))
	e.do(putLease("l/b", "1", 100))                                // rev 2
	e.do(putLease("l/a", "2", 100))                                // rev 3
	e.do(putLease("l/c", "3", 100))                                // rev 4
	e.do(putLease("x/a", "4", 200))                                // rev 5
	e.do(putLease("l/x", "5", 200))                                // rev 6
	e.do(put("l/d", "6"))                                          // rev 7
	e.doLease(leaseRevoke(100))                                    // rev 8: l/a, l/b, l/c
	s.await("the deletes of expired lease 200", 1, hasEventsAt(9)) // rev 9: l/x, x/a
	b := e.open("B")
	b.create(withPrevKV(from(1, watchAll())))
}

// watchDeletePrevKVSeq covers deletes whose requests do not ask for
// prev_kv, watched by watchers that do: Cairn's apply loop no longer
// loads the deleted values, so its watchers read them from storage, live
// (synced) and in catch-up. That includes a key put and deleted in one
// txn, whose prev_kv is the version before the txn.
func watchDeletePrevKVSeq(e *watchEnv) {
	s := e.open("A")
	s.create(withPrevKV(watchPrefix("d")))                              // 0
	s.create(watchPrefix("d"))                                          // 1: without prev_kv
	s.create(withPrevKV(watchKey("d1")))                                // 2
	e.do(put("d1", "1"))                                                // rev 2
	e.do(put("d2", "2"))                                                // rev 3
	e.do(put("d1", "3"))                                                // rev 4
	e.do(del("d1"))                                                     // rev 5: prev 3
	e.do(txn(nil, ops(put("d2", "t"), del("d2"), put("d3", "x")), nil)) // rev 6: d2's prev is 2
	e.do(put("d4", "4"))                                                // rev 7
	e.do(delRange("d", "e"))                                            // rev 8: d3, d4
	e.settle()
	b := e.open("B")
	b.create(withPrevKV(from(1, watchPrefix("d")))) // catch-up with prev_kv
	b.create(from(1, watchPrefix("d")))             // and without
}

// watchAfterWriteSeq covers a watcher created right after a write,
// without a start revision: its created header carries the write's
// revision and its first event is the next write.
func watchAfterWriteSeq(e *watchEnv) {
	s := e.open("A")
	for i := range 5 {
		e.do(put("w", fmt.Sprint(i)))
		s.create(watchKey("w"))
	}
	e.do(put("w", "last"))
}
