package compat

// KV differential test.
//
// What it proves: for every sequence below, a fresh Cairn member and a fresh
// etcd v3.7 member give the same answer to every request of the KV service
// (Range, Put, DeleteRange, Txn, Compact), sent as raw etcdserverpb messages
// over gRPC. Responses are compared whole and field by field — revisions,
// kvs with their create/mod revisions, versions and leases, counts, more,
// prev_kv(s), deleted, succeeded, and the headers nested in txn responses —
// after only the top-level header's cluster_id, member_id and raft_term are
// reduced to "set or not". Errors must carry the same gRPC code and the same
// message. Each sequence starts from an empty store at revision 1, so the
// revisions written in comments below are the ones both members must reach.
// Besides every option of every request, the sequences cover keys holding
// 0x00 and 0xff bytes (which an ordered on-disk key encoding must escape),
// thousands of keys and hundreds of versions of one key, across compactions.
//
// A failure names the sequence, the step, the request and both answers:
// that is the minimal reproduction.

import (
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// kvSequences are run one per fresh pair of members.
var kvSequences = []struct {
	name  string
	steps func() []any
}{
	{"put", putSteps},
	{"range", rangeSteps},
	{"range revisions", rangeRevisionSteps},
	{"sort and filter", sortFilterSteps},
	{"sort ties", sortTieSteps},
	{"delete", deleteSteps},
	{"txn compare", txnCompareSteps},
	{"txn ops", txnOpSteps},
	{"txn checks", txnCheckSteps},
	{"compact", compactSteps},
	{"compact fresh store", compactFreshSteps},
	{"oversized", oversizedSteps},
	{"binary keys", binaryKeySteps},
	{"many keys", manyKeySteps},
	{"many versions", manyVersionSteps},
}

func TestKVDiff(t *testing.T) {
	for _, seq := range kvSequences {
		t.Run(strings.ReplaceAll(seq.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			c := newChecker(t)
			for _, req := range seq.steps() {
				c.do(req)
			}
		})
	}
}

func putSteps() []any {
	return []any{
		put("a", "1"), // rev 2
		&pb.PutRequest{Key: []byte("a"), Value: []byte("2"), PrevKv: true}, // rev 3, prev a=1
		&pb.PutRequest{Key: []byte("b"), Value: []byte("x"), PrevKv: true}, // rev 4, no prev
		&pb.PutRequest{Key: []byte("a"), IgnoreValue: true, PrevKv: true},  // rev 5, value stays 2
		get("a"),
		&pb.PutRequest{Key: []byte("a"), Value: []byte("3"), IgnoreValue: true}, // value provided
		&pb.PutRequest{Key: []byte("zz"), IgnoreValue: true},                    // key not found
		&pb.PutRequest{Key: []byte("a"), Value: []byte("4"), IgnoreLease: true}, // rev 6
		&pb.PutRequest{Key: []byte("a"), Value: []byte("5"), Lease: 7, IgnoreLease: true},
		&pb.PutRequest{Key: []byte("zz"), Value: []byte("v"), IgnoreLease: true},
		&pb.PutRequest{Key: []byte("zz"), IgnoreValue: true, IgnoreLease: true, PrevKv: true},
		&pb.PutRequest{Key: []byte("a"), Value: []byte("6"), Lease: 0x1234},                  // lease not found
		&pb.PutRequest{Key: []byte("a"), Value: []byte("6"), Lease: 0x1234, PrevKv: true},    // lease not found
		&pb.PutRequest{Key: []byte("new"), Value: []byte("6"), Lease: -1},                    // lease not found
		&pb.PutRequest{Key: []byte("a"), IgnoreValue: true, IgnoreLease: true, PrevKv: true}, // rev 7
		put("", "v"),                  // empty key
		put("\x00", "nul"),            // rev 8
		put("\xff\xff", ""),           // rev 9, empty value
		put("a", "4"),                 // rev 10, same value still makes a revision
		put("k\x00z", "embedded nul"), // rev 11
		get("a"),
		get("\x00"),
		get("\xff\xff"),
		get("k\x00z"),
		all(),
	}
}

func rangeSteps() []any {
	return []any{
		put("a", "1"),     // rev 2
		put("ab", "2"),    // rev 3
		put("abc", "3"),   // rev 4
		put("b", "4"),     // rev 5
		put("c", "5"),     // rev 6
		put("a\x00", "6"), // rev 7
		put("\xff", "7"),  // rev 8
		put("ab", "22"),   // rev 9
		get("a"),
		get("aa"),                               // missing
		get(""),                                 // empty key
		&pb.RangeRequest{RangeEnd: []byte("z")}, // empty key with an end
		prefix("a"),
		rng("b", "\x00"), // from key
		all(),
		rng("ab", "c"),
		rng("c", "a"), // end before key
		rng("a", "a"), // end equal to key
		rng("\x00", "a"),
		rng("\xff", "\x00"),
		get("\x00"),
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Limit: 1},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Limit: 2},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Limit: 7},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Limit: 8},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Limit: -1},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte(prefixEnd("a")), Limit: 3},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte(prefixEnd("a")), Limit: 4},
		&pb.RangeRequest{Key: []byte("a"), Limit: 1},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true, Limit: 2},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte(prefixEnd("a")), KeysOnly: true},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte(prefixEnd("a")), KeysOnly: true, CountOnly: true},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte(prefixEnd("a")), KeysOnly: true, Limit: 2},
		&pb.RangeRequest{Key: []byte("zz"), CountOnly: true},
		&pb.RangeRequest{Key: []byte("a"), Serializable: true},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Serializable: true, Limit: 3},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte(prefixEnd("a")), Serializable: true, Revision: 4},
		&pb.RangeRequest{Key: []byte("a"), SortOrder: 3},                       // invalid sort order
		&pb.RangeRequest{Key: []byte("a"), SortTarget: 9},                      // invalid sort target
		&pb.RangeRequest{Key: []byte("a"), SortOrder: -1},                      // invalid sort order
		&pb.RangeRequest{Key: []byte(""), SortOrder: 3},                        // empty key checked first
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00"), Limit: 1}, // more from a key
	}
}

func rangeRevisionSteps() []any {
	return []any{
		get("a"), // rev 1, nothing yet
		all(),
		put("a", "1"), // rev 2
		put("b", "1"), // rev 3
		put("a", "2"), // rev 4
		del("b"),      // rev 5
		put("b", "2"), // rev 6, b re-created
		put("c", "1"), // rev 7
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 1},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 2},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 3},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 4},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 5},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 6},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 7},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 8},   // future
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 100}, // future
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: -1},  // current
		&pb.RangeRequest{Key: []byte("b"), Revision: 5},
		&pb.RangeRequest{Key: []byte("b"), Revision: 3},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 4, Limit: 1},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 4, CountOnly: true},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 6, SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_DESCEND},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 8, Serializable: true}, // future
		compact(4), // physical history below 4 is gone
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 3}, // compacted
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 4},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 5},
		&pb.RangeRequest{Key: []byte("a"), Revision: 2},                              // compacted
		&pb.RangeRequest{Key: []byte("a"), Revision: 2, Serializable: true},          // compacted
		&pb.RangeRequest{Key: []byte("a"), Revision: 2, CountOnly: true},             // compacted
		&pb.RangeRequest{Key: []byte("zz"), Revision: 1},                             // compacted
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 9}, // future
	}
}

// sortFilterSetup leaves, at revision 9:
//
//	a {create 3, mod 5, version 2, value "3"}
//	b {create 4, mod 4, version 1, value "2"}
//	c {create 2, mod 9, version 3, value "0"}
//	d {create 6, mod 6, version 1, value "2"}
//	e {create 8, mod 8, version 1, value "9"}
func sortFilterSetup() []any {
	return []any{
		put("c", "1"), // rev 2
		put("a", "3"), // rev 3
		put("b", "2"), // rev 4
		put("a", "3"), // rev 5
		put("d", "2"), // rev 6
		put("c", "0"), // rev 7
		put("e", "9"), // rev 8
		put("c", "0"), // rev 9
	}
}

var (
	sortTargets = []pb.RangeRequest_SortTarget{pb.RangeRequest_KEY, pb.RangeRequest_VERSION, pb.RangeRequest_CREATE, pb.RangeRequest_MOD, pb.RangeRequest_VALUE}
	sortOrders  = []pb.RangeRequest_SortOrder{pb.RangeRequest_NONE, pb.RangeRequest_ASCEND, pb.RangeRequest_DESCEND}
)

func sortFilterSteps() []any {
	steps := sortFilterSetup()
	for _, target := range sortTargets {
		for _, order := range sortOrders {
			for _, limit := range []int64{0, 2} {
				steps = append(steps, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), SortTarget: target, SortOrder: order, Limit: limit})
			}
		}
	}
	steps = append(steps,
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_DESCEND, KeysOnly: true},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_ASCEND, CountOnly: true},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), SortTarget: pb.RangeRequest_VERSION, SortOrder: pb.RangeRequest_DESCEND, Revision: 6},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), SortTarget: pb.RangeRequest_CREATE, SortOrder: pb.RangeRequest_ASCEND, Serializable: true, Limit: 3},

		// Filters prune after the read; count is of the range, before filters.
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: 5},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MaxModRevision: 6},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinCreateRevision: 4},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MaxCreateRevision: 4},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: 5, MaxModRevision: 8},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinCreateRevision: 3, MaxCreateRevision: 6},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: 5, MinCreateRevision: 4, MaxCreateRevision: 8, MaxModRevision: 9},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: 5, Limit: 1},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: 5, Limit: 3},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: 5, Limit: 4},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MaxModRevision: 5, CountOnly: true},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MaxModRevision: 5, KeysOnly: true},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: 100},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MaxCreateRevision: 1},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: -5},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: 4, SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND, Limit: 2},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinCreateRevision: 3, Revision: 6},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("f"), MinModRevision: 5, Revision: 6, Limit: 1},
	)
	return steps
}

// sortTieSteps sorts more keys than insertion sort handles (12), with many
// ties, where the order of tied keys depends on the sort algorithm: etcd
// uses sort.Sort over the key-ordered range.
func sortTieSteps() []any {
	var steps []any
	for _, i := range []int{7, 3, 19, 0, 12, 5, 16, 9, 1, 14, 18, 2, 11, 6, 17, 4, 10, 15, 8, 13} {
		steps = append(steps, put(fmt.Sprintf("t%02d", i), []string{"x", "y", "z"}[i%3]))
	}
	for _, i := range []int{3, 11, 17, 3} {
		steps = append(steps, put(fmt.Sprintf("t%02d", i), "y"))
	}
	for _, target := range sortTargets {
		for _, order := range sortOrders[1:] {
			for _, limit := range []int64{0, 5} {
				steps = append(steps, &pb.RangeRequest{Key: []byte("t"), RangeEnd: []byte(prefixEnd("t")), SortTarget: target, SortOrder: order, Limit: limit})
			}
		}
	}
	return steps
}

func deleteSteps() []any {
	return []any{
		put("a", "1"),   // rev 2
		put("ab", "2"),  // rev 3
		put("abc", "3"), // rev 4
		put("b", "4"),   // rev 5
		put("c", "5"),   // rev 6
		put("d", "6"),   // rev 7
		del("zz"),       // nothing deleted: revision stays 7
		&pb.DeleteRangeRequest{Key: []byte("zz"), PrevKv: true},
		&pb.DeleteRangeRequest{Key: []byte("a"), PrevKv: true}, // rev 8
		del("a"), // again: nothing
		&pb.DeleteRangeRequest{Key: []byte("ab"), RangeEnd: []byte("b"), PrevKv: true}, // rev 9: ab, abc
		delRange("c", prefixEnd("c")), // rev 10
		delRange("x", "y"),            // nothing
		delRange("d", "a"),            // end before key: nothing
		del(""),                       // empty key
		&pb.DeleteRangeRequest{RangeEnd: []byte("z")},
		all(),
		put("a", "1"),  // rev 11
		put("b2", "2"), // rev 12
		&pb.DeleteRangeRequest{Key: []byte("b"), RangeEnd: []byte("\x00"), PrevKv: true}, // rev 13: b, b2, d
		get("a"),
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 12},
		put("x", "1"), // rev 14
		&pb.DeleteRangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), PrevKv: true}, // rev 15: a, x
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true},
		&pb.DeleteRangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00")}, // nothing
		put("a", "again"), // rev 16: version restarts at 1
		get("a"),
	}
}

func txnCompareSteps() []any {
	steps := []any{
		put("a", "1"),  // rev 2
		put("a", "2"),  // rev 3: a {create 2, mod 3, version 2, value "2"}
		put("b", "5"),  // rev 4: b {create 4, mod 4, version 1}
		put("b2", "6"), // rev 5: b2 {create 5, mod 5, version 1}
	}
	check := func(cs ...*pb.Compare) {
		steps = append(steps, txn(cs, ops(get("a")), ops(get("b"))))
	}
	// VALUE on a present and a missing key.
	check(cmpValue("a", eq, "2"))
	check(cmpValue("a", eq, "1"))
	check(cmpValue("a", ne, "1"))
	check(cmpValue("a", gt, "1"))
	check(cmpValue("a", gt, "2"))
	check(cmpValue("a", lt, "3"))
	check(cmpValue("a", lt, "10"))
	check(cmpValue("zz", eq, ""))
	check(cmpValue("zz", ne, "x"))
	check(cmpValue("zz", lt, "x"))
	// VERSION.
	check(cmpVersion("a", eq, 2))
	check(cmpVersion("a", ne, 2))
	check(cmpVersion("a", gt, 1))
	check(cmpVersion("a", lt, 3))
	check(cmpVersion("zz", eq, 0))
	check(cmpVersion("zz", lt, 1))
	check(cmpVersion("zz", gt, 0))
	// CREATE.
	check(cmpCreate("a", eq, 2))
	check(cmpCreate("a", ne, 2))
	check(cmpCreate("a", gt, 1))
	check(cmpCreate("a", lt, 2))
	check(cmpCreate("zz", eq, 0))
	// MOD.
	check(cmpMod("a", eq, 3))
	check(cmpMod("a", gt, 3))
	check(cmpMod("a", lt, 4))
	check(cmpMod("a", ne, 0))
	check(cmpMod("zz", eq, 0))
	// LEASE: no key has a lease.
	check(cmpLease("a", eq, 0))
	check(cmpLease("a", ne, 0))
	check(cmpLease("a", gt, 0))
	check(cmpLease("a", lt, 1))
	check(cmpLease("a", eq, 0x1234))
	check(cmpLease("zz", eq, 0))
	// Over a range: every key in it must match; an empty range compares a zero kv.
	check(over(cmpVersion("b", eq, 1), prefixEnd("b")))
	check(over(cmpValue("b", eq, "5"), prefixEnd("b")))
	check(over(cmpValue("b", gt, "4"), prefixEnd("b")))
	check(over(cmpCreate("b", lt, 5), prefixEnd("b")))
	check(over(cmpMod("b", lt, 6), prefixEnd("b")))
	check(over(cmpLease("b", eq, 0), prefixEnd("b")))
	check(over(cmpVersion("x", eq, 0), "y"))
	check(over(cmpValue("x", eq, ""), "y"))
	check(over(cmpMod("a", gt, 0), "\x00"))
	check(over(cmpMod("\x00", gt, 2), "\x00"))
	check(over(cmpVersion("c", eq, 2), "a")) // end before key
	// Several compares: all must hold.
	check(cmpValue("a", eq, "2"), cmpVersion("b", eq, 1))
	check(cmpValue("a", eq, "2"), cmpVersion("b", eq, 2))
	check()
	// A target union that does not match the target compares against zero.
	check(&pb.Compare{Key: []byte("a"), Target: pb.Compare_VERSION, Result: gt, TargetUnion: &pb.Compare_Value{Value: []byte("x")}})
	check(&pb.Compare{Key: []byte("a"), Target: pb.Compare_VALUE, Result: gt, TargetUnion: &pb.Compare_Version{Version: 5}})
	check(&pb.Compare{Key: []byte("a"), Target: pb.Compare_MOD, Result: eq})
	// Out-of-range enums.
	check(&pb.Compare{Key: []byte("a"), Target: pb.Compare_VERSION, Result: 9, TargetUnion: &pb.Compare_Version{Version: 2}})
	check(&pb.Compare{Key: []byte("a"), Target: 9, Result: eq, TargetUnion: &pb.Compare_Version{Version: 2}})
	// An empty key in a compare.
	check(cmpVersion("", eq, 0))
	return steps
}

func txnOpSteps() []any {
	return []any{
		put("a", "1"), // rev 2
		put("b", "2"), // rev 3
		put("c", "3"), // rev 4
		// Reads in a write txn see the txn's earlier writes; one revision for all.
		txn(nil, ops(
			&pb.PutRequest{Key: []byte("a"), Value: []byte("10"), PrevKv: true},
			get("a"),
			&pb.DeleteRangeRequest{Key: []byte("b"), PrevKv: true},
			get("b"),
			all(),
			put("b", "20"),
			get("b"),
		), nil), // rev 5
		// The failure branch.
		txn(cmps(cmpValue("a", eq, "nope")), ops(put("c", "no")), ops(put("c", "30"), get("c"))), // rev 6
		// Read-only txns do not make a revision.
		txn(nil, ops(get("a"), get("c"), &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00"), CountOnly: true}), nil),
		txn(nil, ops(&pb.RangeRequest{Key: []byte("a"), Revision: 3}), nil),
		txn(nil, nil, nil),
		txn(cmps(cmpValue("a", eq, "nope")), nil, nil),
		txn(nil, ops(del("zz")), nil), // a write txn that changes nothing
		txn(nil, ops(get("a")), ops(put("never", "x"))),
		// Nested txns: every compare is evaluated before any op runs.
		txn(nil, ops(
			put("d", "4"),
			txn(cmps(cmpValue("d", eq, "4")), ops(put("e", "then")), ops(put("e", "else"), get("d"))),
			get("e"),
		), nil), // rev 7
		txn(cmps(cmpVersion("e", eq, 1)), ops(
			txn(cmps(cmpValue("e", eq, "else")), ops(
				txn(cmps(cmpMod("a", eq, 5)), ops(put("f", "deep"), get("f")), nil),
				get("a"),
			), ops(put("g", "no"))),
			txn(nil, nil, nil),
			del("d"),
		), ops(put("h", "no"))), // rev 8
		all(),
		// Deletes then reads within one txn.
		txn(nil, ops(delRange("a", "c"), &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("\x00"), CountOnly: true}, get("a")), nil), // rev 9
		// The same key in the success and the failure branch is fine.
		txn(cmps(cmpVersion("x", eq, 0)), ops(put("x", "1")), ops(put("x", "2"))), // rev 10
		// Then and else of a nested txn may put the same key.
		txn(nil, ops(txn(cmps(cmpVersion("x", eq, 1)), ops(put("y", "1")), ops(put("y", "2")))), nil), // rev 11
		// Deleting the same key twice is not an overlap.
		txn(nil, ops(del("y"), del("y")), nil),                     // rev 12
		txn(nil, ops(delRange("a", "z"), delRange("b", "c")), nil), // rev 13
		// Range ops at a past revision, and many keys in one response.
		txn(nil, ops(&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 8, SortOrder: pb.RangeRequest_DESCEND, Limit: 3}), nil),
		get("f"),
	}
}

// txnCheckSteps are the txns etcd rejects before applying them, next to the
// nearest ones it accepts.
func txnCheckSteps() []any {
	many := func(n int, prefix string) []*pb.RequestOp {
		out := make([]*pb.RequestOp, n)
		for i := range out {
			out[i] = op(put(fmt.Sprintf("%s%03d", prefix, i), "v"))
		}
		return out
	}
	manyCmps := func(n int) []*pb.Compare {
		out := make([]*pb.Compare, n)
		for i := range out {
			out[i] = cmpVersion(fmt.Sprintf("c%03d", i), eq, 0)
		}
		return out
	}
	return []any{
		put("a", "1"), // rev 2
		// Duplicate keys.
		txn(nil, ops(put("k", "1"), put("k", "2")), nil),
		txn(nil, nil, ops(put("k", "1"), put("k", "2"))),
		txn(nil, ops(put("k", "1"), del("k")), nil),
		txn(nil, ops(del("k"), put("k", "1")), nil),
		txn(nil, ops(delRange("k", "l"), put("k5", "1")), nil),
		txn(nil, ops(delRange("\x00", "\x00"), put("zzz", "1")), nil),
		txn(nil, ops(put("k", "1"), txn(nil, ops(put("k", "2")), nil)), nil),
		txn(nil, ops(txn(nil, ops(put("k", "2")), nil), put("k", "1")), nil),
		txn(nil, ops(txn(nil, ops(put("k", "1")), nil), txn(nil, nil, ops(put("k", "2")))), nil),
		txn(nil, ops(txn(nil, ops(del("k")), nil), put("k", "1")), nil),
		txn(nil, ops(delRange("k", "l"), txn(nil, ops(put("k5", "1")), nil)), nil),
		txn(nil, ops(txn(nil, ops(txn(nil, ops(put("k", "1")), nil)), nil), put("k", "1")), nil),
		txn(nil, ops(put("k", "1"), delRange("j", "k")), nil),                          // [j, k) does not hold k: rev 3
		txn(nil, ops(put("k", "1"), get("k"), get("k")), nil),                          // reads are not writes: rev 4
		txn(nil, ops(txn(nil, ops(del("k")), nil), txn(nil, ops(del("k")), nil)), nil), // rev 5
		// Empty keys anywhere.
		txn(nil, ops(put("", "1")), nil),
		txn(nil, ops(get("")), nil),
		txn(nil, ops(del("")), nil),
		txn(nil, nil, ops(put("", "1"))),
		txn(nil, ops(txn(nil, ops(put("", "1")), nil)), nil),
		txn(cmps(cmpVersion("", eq, 0)), nil, nil),
		// An empty RequestOp.
		txn(nil, ops(nil), nil),
		txn(nil, nil, ops(nil)),
		// Per-op checks run on both branches; state checks only on the taken one.
		txn(nil, nil, ops(&pb.PutRequest{Key: []byte("a"), Value: []byte("x"), IgnoreValue: true})),
		txn(nil, nil, ops(&pb.PutRequest{Key: []byte("a"), Lease: 5, IgnoreLease: true})),
		txn(nil, ops(&pb.PutRequest{Key: []byte("missing"), IgnoreValue: true}), nil),
		txn(nil, ops(get("a"), &pb.PutRequest{Key: []byte("missing"), IgnoreLease: true}), nil),
		txn(nil, ops(&pb.PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: 0x1234}), nil),
		txn(nil, ops(put("a", "2")), ops(&pb.PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: 0x1234})), // rev 6
		txn(nil, ops(&pb.PutRequest{Key: []byte("a"), IgnoreValue: true, PrevKv: true}), nil),                  // rev 7
		txn(nil, ops(&pb.RangeRequest{Key: []byte("a"), Revision: 100}), nil),
		txn(nil, ops(put("b", "1"), &pb.RangeRequest{Key: []byte("a"), Revision: 100}), nil),
		txn(nil, ops(&pb.RangeRequest{Key: []byte("a"), SortOrder: 7}), nil),
		txn(nil, ops(txn(nil, ops(&pb.RangeRequest{Key: []byte("a"), Revision: 100}), nil)), nil),
		txn(nil, ops(txn(cmps(cmpVersion("a", eq, 0)), ops(&pb.RangeRequest{Key: []byte("a"), Revision: 100}), nil)), nil),
		// Too many operations (max 128 per list, and nested lists share the budget).
		txn(nil, many(128, "p"), nil), // rev 8
		txn(nil, many(129, "q"), nil),
		txn(nil, nil, many(129, "q")),
		txn(manyCmps(128), ops(put("r", "1")), nil), // rev 9
		txn(manyCmps(129), nil, nil),
		txn(nil, append(many(100, "s"), op(txn(nil, many(27, "t"), nil))), nil), // rev 10
		txn(nil, append(many(100, "u"), op(txn(nil, many(28, "w"), nil))), nil),
		txn(nil, append(many(100, "u"), op(txn(nil, nil, many(28, "w")))), nil),
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true},
	}
}

func compactSteps() []any {
	return []any{
		put("a", "1"), // rev 2
		put("a", "2"), // rev 3
		put("b", "1"), // rev 4
		put("a", "3"), // rev 5
		del("b"),      // rev 6
		put("c", "1"), // rev 7
		compact(3),
		&pb.RangeRequest{Key: []byte("a"), Revision: 2},
		&pb.RangeRequest{Key: []byte("a"), Revision: 3},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 3},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 4},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 6},
		compact(3),  // again: compacted
		compact(2),  // below: compacted
		compact(8),  // future
		compact(-1), // negative: compacted
		&pb.CompactionRequest{Revision: 7, Physical: true},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 6},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 7},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00")},
		&pb.RangeRequest{Key: []byte("b"), Revision: 7, CountOnly: true},
		txn(nil, ops(&pb.RangeRequest{Key: []byte("a"), Revision: 6}), nil),
		txn(nil, ops(put("d", "1"), &pb.RangeRequest{Key: []byte("a"), Revision: 6}), nil),
		txn(nil, ops(&pb.RangeRequest{Key: []byte("a"), Revision: 7}), nil),
		put("a", "4"), // rev 8
		del("a"),      // rev 9
		&pb.CompactionRequest{Revision: 9, Physical: true},
		get("a"),
		&pb.RangeRequest{Key: []byte("a"), Revision: 9},
		&pb.RangeRequest{Key: []byte("a"), Revision: 8},
		&pb.CompactionRequest{Revision: 9, Physical: true}, // again: compacted
		put("a", "5"), // rev 10: a new life, version 1
		get("a"),
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true, Revision: 9},
		&pb.DeleteRangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), PrevKv: true}, // rev 11
		compact(11),
		all(),
	}
}

// compactFreshSteps compacts a store that holds nothing but revision 1.
func compactFreshSteps() []any {
	return []any{
		compact(2), // future
		compact(0),
		compact(0),
		compact(1),
		compact(1),
		get("a"),
		&pb.RangeRequest{Key: []byte("a"), Revision: 1},
		put("a", "1"), // rev 2
		compact(2),
		&pb.RangeRequest{Key: []byte("a"), Revision: 1},
		get("a"),
	}
}

// oversizedSteps crosses --max-request-bytes (1.5 MiB), which etcd checks
// on the encoded raft request (so for writes only), and the gRPC receive
// limit of 1.5 MiB + 512 KiB, which applies to every request.
func oversizedSteps() []any {
	const maxRequest = 1536 * 1024
	val := func(n int) string { return strings.Repeat("v", n) }
	big := val(maxRequest + 1)
	bigTxnOps := make([]*pb.RequestOp, 4)
	for i := range bigTxnOps {
		bigTxnOps[i] = op(put(fmt.Sprintf("t%d", i), val(400*1024)))
	}
	return []any{
		put("small", "1"),            // rev 2
		put("k", big),                // request is too large
		put("k", val(maxRequest-64)), // rev 3: fits with the raft request's overhead
		put("k", val(maxRequest-16)), // does not fit once wrapped
		put("k", val(maxRequest)),    // does not fit
		put("k", val(2*maxRequest)),  // beyond the gRPC limit
		&pb.PutRequest{Key: []byte(big), Value: []byte("1")},
		txn(nil, bigTxnOps, nil),     // 1.6 MiB of puts in one txn
		txn(nil, bigTxnOps[:3], nil), // rev 4: 1.2 MiB
		&pb.DeleteRangeRequest{Key: []byte(big)},
		&pb.CompactionRequest{Revision: 2},
		// Reads do not go through raft: only the gRPC limit applies.
		&pb.RangeRequest{Key: []byte(big)},
		&pb.RangeRequest{Key: []byte(val(2 * maxRequest))},
		txn(cmps(cmpValue("small", eq, big)), ops(get("small")), nil),
		txn(cmps(cmpValue("small", eq, big)), ops(put("small", "2")), nil),
		// Responses may be larger than any request.
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), KeysOnly: true},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00")},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true},
	}
}

// binaryKeys sort in this order as bytes. They probe the escaping of 0x00
// and 0xff that an ordered on-disk encoding of keys needs.
var binaryKeys = []string{
	"\x00", "\x00\x00", "\x00\x00\x01", "\x00\x01", "\x00\xff", "\x00\xff\x00", "\x00\xff\xff", "\x01",
	"a", "a\x00", "a\x00\x00", "a\x00\x01", "a\x00\xff", "a\x00\xff\x01", "a\x01", "a\xff", "a\xff\x00",
	"ab", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
}

func binaryKeySteps() []any {
	var steps []any
	// Put in an order unrelated to the byte order.
	for i := range binaryKeys {
		k := binaryKeys[(i*7)%len(binaryKeys)]
		steps = append(steps, put(k, fmt.Sprintf("v%02d", (i*7)%len(binaryKeys))))
	}
	steps = append(steps,
		all(),
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), SortOrder: pb.RangeRequest_DESCEND},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Limit: 5},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true},
	)
	for _, k := range binaryKeys {
		steps = append(steps,
			get(k),
			prefix(k),
			rng(k, "\x00"),
			&pb.RangeRequest{Key: []byte(k), RangeEnd: []byte("\x00"), Limit: 2, SortOrder: pb.RangeRequest_DESCEND},
		)
	}
	for i := 0; i+3 < len(binaryKeys); i += 3 {
		steps = append(steps, rng(binaryKeys[i], binaryKeys[i+3]), rng(binaryKeys[i+3], binaryKeys[i]))
	}
	steps = append(steps,
		&pb.DeleteRangeRequest{Key: []byte("a\x00"), RangeEnd: []byte(prefixEnd("a\x00")), PrevKv: true},
		&pb.DeleteRangeRequest{Key: []byte("\x00\xff"), RangeEnd: []byte("\x01"), PrevKv: true},
		&pb.DeleteRangeRequest{Key: []byte("\xff\xff"), PrevKv: true},
		all(),
		txn(cmps(over(cmpVersion("\x00", eq, 1), "\x00\xff")), ops(prefix("\x00"), put("\x00\xff", "back")), nil),
		txn(cmps(over(cmpValue("\xff", lt, "v99"), "\x00")), ops(rng("\xff", "\x00")), ops(get("\xff"))),
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 20},
		compact(20),
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), Revision: 20},
		&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte(prefixEnd("a")), Revision: 25},
		&pb.CompactionRequest{Revision: 26, Physical: true},
		all(),
	)
	return steps
}

// manyKeySteps writes more keys than a read or a compaction is likely to
// handle in one batch, then counts, limits, deletes and compacts them.
func manyKeySteps() []any {
	var steps []any
	const perTxn = 128
	for b := range 12 {
		puts := make([]*pb.RequestOp, perTxn)
		for i := range puts {
			n := b*perTxn + i
			puts[i] = op(put(fmt.Sprintf("m/%05d", (n*7919)%(12*perTxn)), fmt.Sprint(n%10)))
		}
		steps = append(steps, txn(nil, puts, nil)) // revs 2..13
	}
	steps = append(steps,
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), CountOnly: true},
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), KeysOnly: true, Limit: 1000},
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), Limit: 1},
		&pb.RangeRequest{Key: []byte("m/00500"), RangeEnd: []byte("\x00"), Limit: 3, Revision: 7},
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), CountOnly: true, Revision: 7},
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), KeysOnly: true, SortTarget: pb.RangeRequest_VALUE, SortOrder: pb.RangeRequest_DESCEND, Limit: 20},
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), KeysOnly: true, SortTarget: pb.RangeRequest_MOD, SortOrder: pb.RangeRequest_ASCEND, Limit: 20},
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), KeysOnly: true, MinModRevision: 13, Limit: 5},
		&pb.DeleteRangeRequest{Key: []byte("m/00100"), RangeEnd: []byte("m/01100")}, // rev 14
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), CountOnly: true},
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), CountOnly: true, Revision: 13},
		&pb.CompactionRequest{Revision: 14, Physical: true},
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), CountOnly: true, Revision: 14},
		&pb.RangeRequest{Key: []byte("m/01099"), RangeEnd: []byte("\x00"), Limit: 2, Revision: 14},
		&pb.DeleteRangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/"))}, // rev 15
		&pb.CompactionRequest{Revision: 15, Physical: true},
		&pb.RangeRequest{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true},
		&pb.RangeRequest{Key: []byte("m/"), RangeEnd: []byte(prefixEnd("m/")), Revision: 15},
	)
	return steps
}

// manyVersionSteps writes one key many times, with deletes between lives,
// and reads its versions back across compactions.
func manyVersionSteps() []any {
	var steps []any
	for i := range 600 {
		if i%250 == 249 {
			steps = append(steps, del("v")) // a new life starts at version 1
			continue
		}
		steps = append(steps, put("v", fmt.Sprint(i)))
	}
	steps = append(steps,
		get("v"),
		&pb.RangeRequest{Key: []byte("v"), Revision: 2},
		&pb.RangeRequest{Key: []byte("v"), Revision: 250},
		&pb.RangeRequest{Key: []byte("v"), Revision: 251},
		&pb.RangeRequest{Key: []byte("v"), Revision: 252},
		&pb.RangeRequest{Key: []byte("v"), Revision: 400},
		txn(cmps(cmpVersion("v", eq, 100), cmpCreate("v", eq, 501)), ops(get("v")), ops(&pb.RangeRequest{Key: []byte("v"), Revision: 300})),
		&pb.CompactionRequest{Revision: 300, Physical: true},
		&pb.RangeRequest{Key: []byte("v"), Revision: 299},
		&pb.RangeRequest{Key: []byte("v"), Revision: 300},
		&pb.RangeRequest{Key: []byte("v"), Revision: 501},
		&pb.RangeRequest{Key: []byte("v"), Revision: 502},
		&pb.CompactionRequest{Revision: 501, Physical: true},
		&pb.RangeRequest{Key: []byte("v"), Revision: 501},
		&pb.RangeRequest{Key: []byte("v"), Revision: 502, CountOnly: true},
		put("v", "last"),
		get("v"),
	)
	return steps
}
