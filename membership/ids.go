// Package membership is Cairn's view of the cluster's members: their IDs,
// names and URLs. IDs are derived as etcd derives them, so a cluster
// started with the same flags has the same member and cluster IDs.
package membership

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// MemberID is the ID etcd gives a member: the first 8 bytes (big-endian) of
// SHA-1 over its sorted peer URLs, concatenated, followed by the cluster
// token (and, for a member added to a running cluster, the time it was
// added in Unix seconds: AddedMemberID).
func MemberID(peerURLs []string, token string) uint64 {
	return memberID(peerURLs, token, "")
}

// AddedMemberID is the ID of a member added at unixSeconds.
func AddedMemberID(peerURLs []string, token string, unixSeconds int64) uint64 {
	return memberID(peerURLs, token, fmt.Sprintf("%d", unixSeconds))
}

func memberID(peerURLs []string, token, suffix string) uint64 {
	urls := append([]string(nil), peerURLs...)
	sort.Strings(urls)
	b := []byte(strings.Join(urls, ""))
	b = append(b, token...)
	b = append(b, suffix...)
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// ClusterID is the ID etcd gives a cluster: the first 8 bytes (big-endian)
// of SHA-1 over its sorted member IDs, each 8 bytes big-endian.
func ClusterID(memberIDs []uint64) uint64 {
	ids := append([]uint64(nil), memberIDs...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// Member is one member of the cluster.
type Member struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}
