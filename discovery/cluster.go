package discovery

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/types"
)

// SelfValue is what a member registers under its key: its name and each of
// its peer URLs as "name=URL", sorted and comma-separated (etcd's
// types.URLsMap.String of the member's own one-entry map).
func SelfValue(name string, peerURLs []url.URL) string {
	pairs := make([]string, len(peerURLs))
	for i, u := range peerURLs {
		pairs[i] = name + "=" + u.String()
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// checkCluster parses the discovered cluster string and rejects what etcd's
// bootstrap rejects after discovery: size members with fewer than size
// names, one name registered twice (ErrDuplicateName, as etcd's
// v2discovery), and a peer URL that two members share (etcd's
// "discovery cluster ... has duplicate url").
func checkCluster(cluster string, size int) error {
	m, err := types.NewURLsMap(cluster)
	if err != nil {
		return err
	}
	if m.Len() != size {
		return ErrDuplicateName
	}
	seen := map[string]bool{}
	for _, urls := range m {
		for _, u := range urls {
			if seen[u.String()] {
				return fmt.Errorf("discovery cluster %s has duplicate url", m)
			}
			seen[u.String()] = true
		}
	}
	return nil
}
