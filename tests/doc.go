// Package e2e tests the cairn binary from the outside, as an operator and a
// client see it: it builds cmd/cairn once, runs it on free 127.0.0.1 ports
// with a temporary data directory, and talks to it with clientv3.
//
// The tests cover what only a real process can show: acknowledged writes
// survive SIGKILL, restart does not scan the keyspace, a data directory
// written by another program is refused untouched, and the command line
// behaves as etcd's.
//
// With CAIRN_E2E_RACE=1 the binary is built with -race, and any race
// report on its stderr fails the test that started it.
//
// Benchmarks over gRPC against an in-process server live in package bench.
package e2e
