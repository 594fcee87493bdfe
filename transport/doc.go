// Package transport carries Raft messages between members, over gRPC on
// the peer URLs, and the few requests a follower forwards to the leader
// (lease keep-alives and lease reads, which only the leader can answer).
//
// Each member keeps one outbound message stream per peer, fed from a
// bounded queue: a full queue or a broken stream drops messages (Raft
// retransmits) and reports the peer unreachable, so a slow or dead peer
// never blocks the Raft loop.
//
// Input from peers is as untrusted as input from clients. Every stream
// and call names its sender and cluster ID in its metadata: another
// cluster, a member this one does not reach (not a peer: see SetPeer) or a
// removed member is refused. On the message stream each message must come
// from the stream's sender, to this member, and be one Raft exchanges
// between members; a snapshot never travels there (it has its own stream,
// and the receiver names the file it writes, never the message). Every
// message is bounded (MaxMessageBytes), forwarded calls more tightly.
//
// One file per subject, as etcd's rafthttp: transport.go the Transport and
// its set of peers; peer.go the outbound message stream to one peer;
// receive.go the inbound message stream and its checks; snapshot.go the
// snapshot stream, both ways; lease.go the forwarded lease calls;
// bootstrap.go the call a joining member makes; service.go the gRPC
// service description, the sender checks and the size bounds.
package transport
