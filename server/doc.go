// Package server is the Cairn member: it turns client requests into Raft
// proposals and waits for their results, serves reads at a linearizable
// read index or locally, and runs the apply loop. It owns no storage
// format: mvcc, apply and raftnode do.
package server
