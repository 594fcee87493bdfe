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
// internal/cluster for later suites (watch, lease, auth) to reuse.
package compat
