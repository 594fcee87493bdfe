// Package compat holds Cairn's compatibility tests: differential suites
// that send the same requests, or run the same etcdctl command lines,
// against a fresh Cairn member and a fresh real etcd v3.7.4 member (the
// oracle, started in-process from go.etcd.io/etcd/server/v3/embed) and fail
// where the two answer differently; and suites that drive real clients
// against Cairn and assert what they do.
//
// It is its own Go module so that the product does not depend on etcd's
// server. Run it with:
//
//	cd compat && go test ./...
//
// The launchers live in internal/cluster for every suite to reuse.
//
// # Differential suites
//
//   - KV (kv_diff_test.go): hand-written sequences covering every option
//     of Range, Put, DeleteRange, Txn and Compact, compared whole and field
//     by field (harness_test.go).
//   - Random (random_test.go, with the generator in random_gen_test.go, the
//     runner in random_run_test.go and the shrinker in
//     random_shrink_test.go): 200 seeds of 300 random steps mixing KV
//     requests with every option, leases with attached keys, and watchers
//     opened at random revisions with random options; every answer, every
//     watcher's responses, every revision and every lease compared. A
//     divergence is shrunk to a minimal sequence, printed as Go code for
//     regressions_test.go. It prints one summary line ("compat: random:
//     compared N requests and responses ..."), shown with go test -v.
//   - Regressions (regressions_test.go): the shrunk sequences of
//     divergences found, fixed or not (those not fixed are skipped, marked
//     DIVERGENCE, and steered around by the random generator unless
//     CAIRN_COMPAT_STRICT=1), and the sequences etcd itself crashes on,
//     whose answers on Cairn are pinned.
//   - Watch (watch_diff_test.go, on the harness in watch_harness_test.go),
//     Lease (lease_diff_test.go), Maintenance and Cluster
//     (maintenance_diff_test.go).
//   - etcdctl (etcdctl_test.go, etcdctl_watch_lease_test.go,
//     etcdctl_lock_elect_test.go): the real etcdctl binary's put, get, del,
//     txn, compaction, endpoint, member list, alarm, defrag, watch, lease,
//     lock and elect, outputs compared after normalizing what differs
//     between any two clusters, and without the client libraries' log
//     lines on stderr, which timing decides (see userView).
//   - Auth (auth_diff_test.go on auth_harness_test.go, auth_etcdctl_test.go
//     with its transcript testdata/auth_etcdctl.golden,
//     auth_clientv3_test.go, auth_http_test.go for the gateway's
//     Authorization header, auth_tls_test.go for client-certificate
//     common names), in simple-token and JWT mode: every
//     Auth RPC and auth error as raw gRPC with users' tokens, an etcdctl
//     script of user/role/permission commands and KV, watch, lease and
//     txn commands as users, and clientv3 with Username/Password. Each
//     step also states etcd's expected answer, checked on etcd.
//     authtoken_diff_test.go compares pkg/authtoken's --auth-token parsing
//     with etcd's, on a table and under go test -fuzz; auth_bench_test.go
//     benchmarks authenticated KV requests on both servers.
//
// # Real clients
//
// These run against Cairn and, to show that their assertions hold for the
// oracle, against etcd; they assert behaviour, since timers and
// scheduling decide the details:
//
//   - clientv3/concurrency: Mutex, Election and STM (concurrency_test.go);
//   - clientv3's namespace, ordering and leasing KVs, and the naming
//     endpoints manager with its gRPC resolver dialing real gRPC servers
//     (clientv3_test.go);
//   - go-kit's sd/etcdv3 Registrar and Instancer (gokit_test.go).
//
// # Reading a failure
//
// A differential failure prints the step, the request and both answers;
// the random test also prints its seed, how to replay it, and the shrunk
// sequence. Set CAIRN_COMPAT_TRACE=1 (with -v) to log every step with
// etcd's answer, and CAIRN_COMPAT_LOG=1 to see both servers' logs. The
// random test's knobs are listed in random_test.go (CAIRN_COMPAT_SEEDS,
// CAIRN_COMPAT_STEPS, CAIRN_COMPAT_SOAK for a long soak, ...).
//
// etcd is the oracle, but it has bugs of its own: two request shapes that
// crash etcd (v3.6.16, and still v3.7.4) are steered around (see
// random_gen_test.go and diffRun.unsafe), and a test whose etcd crashes
// says so instead of blaming Cairn.
//
// # The etcd 3.6 oracle
//
// Cairn implements etcd 3.7's behaviour, and every differential suite
// compares with etcd 3.7.4. etcd v3.6.16 is kept for 3.6 clients: in
// etcd36_test.go the etcdctl v3.6.16 binary runs a basic transcript against
// etcd v3.6.16 and against Cairn. Both come from the module in oracle36/
// (one Go module cannot require two releases of etcd), which the test
// builds with go build; the server runs in a subprocess
// (cluster.StartEtcd36). etcd36_test.go lists where 3.6 and 3.7 answer
// differently in what the suites cover.
package compat
