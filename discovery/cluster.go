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

// checkNames parses the discovered cluster (errInvalid if a value is not
// name=URL) and checks that its size members have size distinct names
// (ErrDuplicateName otherwise), as etcd's v2discovery nodesToCluster.
func checkNames(cluster string, size int, errInvalid error) error {
	m, err := types.NewURLsMap(cluster)
	if err != nil {
		return errInvalid
	}
	if m.Len() != size {
		return ErrDuplicateName
	}
	return nil
}

// CheckDuplicateURL fails, with etcd's message, when two members of the
// discovered cluster share a peer URL; etcd's bootstrap checks this after
// discovery, outside the discovery error.
func CheckDuplicateURL(cluster string) error {
	m, err := types.NewURLsMap(cluster)
	if err != nil {
		return err
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
