// Package transport carries Raft messages between members, over gRPC on
// the peer URLs, and the few requests a follower forwards to the leader
// (lease keep-alives and lease reads, which only the leader can answer).
//
// Each member keeps one outbound message stream per peer, fed from a
// bounded queue: a full queue or a broken stream drops messages (Raft
// retransmits) and reports the peer unreachable, so a slow or dead peer
// never blocks the Raft loop.
package transport
