// Package robustness runs a cairn cluster of real processes under random
// faults and client traffic, then checks what the clients saw, in the
// manner of etcd's tests/robustness.
//
// TestRobustness builds cmd/cairn once, starts 3 members (5 with
// CAIRN_ROBUSTNESS_MEMBERS=5) whose peers reach each other through a TCP
// proxy in front of every peer port, and for a bounded time runs:
//
//   - client traffic over clientv3: puts, deletes, txns that compare a
//     key's mod_revision, leases (grant, put with the lease, revoke),
//     compaction, and watchers on single keys, prefixes and the whole key
//     space, some starting at a past revision;
//   - one fault at a time, chosen by a seeded random generator: kill -9 of
//     a member and restart, SIGTERM and restart, SIGSTOP/SIGCONT of the
//     leader for longer than an election timeout (etcd issue 20418) or of
//     any member, and cutting, blackholing or delaying a member's inbound
//     peer traffic at its proxy.
//
// At the end it checks: porcupine finds the KV history linearizable (one
// register per key, with lease revokes deleting the keys attached);
// revisions respect real time and each revision has one writer; every
// watcher got every event of its range in revision order, exactly once,
// nothing outside its range, no event at or below a progress notification
// it already got, and a compaction error only for a compacted start;
// every acknowledged write is in the final store; and HashKV agrees on all
// members.
//
// The duration, seed and cluster size come from the environment
// (CAIRN_ROBUSTNESS_DURATION, CAIRN_ROBUSTNESS_SEED,
// CAIRN_ROBUSTNESS_MEMBERS); scripts/robustness.sh sets them for long runs.
// The same seed replays the same choices of operations and faults; the
// timing of a real cluster makes the outcome differ from run to run.
// Everything listens on 127.0.0.1 and every process is killed at the end.
package robustness
