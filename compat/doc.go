// Package compat holds Cairn's differential tests: each suite sends the same
// requests, or runs the same etcdctl command lines, against a fresh Cairn
// member and a fresh real etcd member (the oracle, started in-process from
// go.etcd.io/etcd/server/v3/embed), and fails where the two answer
// differently.
//
// It is its own Go module so that the product does not depend on etcd's
// server. Run it with:
//
//	cd compat && go test ./...
//
// A failure prints the step, the request and both answers; that is the
// minimal reproduction to fix Cairn against. The launchers live in
// internal/cluster for every suite to reuse.
//
// The suites: KV (kv_diff_test.go, kv_random_test.go), Maintenance and
// Cluster (maintenance_diff_test.go), Watch (watch_diff_test.go, on the
// harness in watch_harness_test.go), Lease (lease_diff_test.go), etcdctl
// (etcdctl_test.go, etcdctl_watch_lease_test.go), and the clientv3
// concurrency recipes, Mutex, Election and STM (concurrency_test.go), which
// assert behaviour on each server rather than compare the two.
package compat
