// Package bench benchmarks Cairn end to end over gRPC: an in-process
// member started through embed (with fsync, as in production) and clientv3
// clients in the same process. Run with
//
//	go test ./tests/bench -run '^$' -bench . -benchtime 5s -count 3
//
// Client and server share the process, so allocs/op count both sides, and
// they share the CPUs, as etcd's benchmark tool and etcd do on one machine.
// The benchmarks report ops/s; none asserts a time. docs/perf.md has the
// numbers and how they compare with etcd's.
package bench
