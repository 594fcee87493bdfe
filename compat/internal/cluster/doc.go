// Package cluster starts single-member servers in-process for the compat
// suites: a Cairn member through github.com/cairn-kv/cairn/embed, and a real
// etcd member, the test oracle, through go.etcd.io/etcd/server/v3/embed
// (etcd 3.7).
//
// Both launchers take a testing.TB, keep their data in t.TempDir(), listen on
// free 127.0.0.1 ports, return once the member serves client requests, and
// register their cleanup with t.Cleanup; the returned cleanup may also be
// called early, and calling it more than once is harmless.
//
//	cairnEps, _ := cluster.StartCairn(t)
//	etcdEps, _ := cluster.StartEtcd(t)
//	cairnEps, etcdEps := cluster.StartBoth(t) // the two at once
//
// A test that starts many pairs one after the other (the random
// differential test replays each shrinking candidate on a fresh pair)
// uses StartBothWithCleanup and stops each pair as soon as it is done.
//
// The ...With variants take Options, applied alike to both servers: the
// largest request (which also sets where etcd fragments watch responses)
// and the watch progress notification interval. etcd keeps the latter in
// a process-wide variable; see Options.
//
// etcd is the oracle, but it has bugs of its own. Its fatal and panic logs
// do not end the test process: EtcdCrash tells a test that etcd hit one and
// what it logged, so the test can say so instead of timing out.
//
// WaitEtcdSettled waits out etcd's start-up storage version before a test
// compares Status responses.
//
// BuildEtcd36 and StartEtcd36 run etcd v3.6.16, kept for the tests of 3.6
// clients: the module in compat/oracle36 (one module cannot require two
// releases of etcd) is built with go build, and the member runs in a
// subprocess that stops with the test.
//
// Set CAIRN_COMPAT_LOG=1 to see both servers' logs on stderr.
package cluster
