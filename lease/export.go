package lease

import (
	"cmp"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Stored returns the leases stored in r (a Pebble snapshot, for a
// consistent view), by ID, with their granted TTL and last checkpointed
// remaining TTL (0: none) in seconds.
func Stored(r pebble.Reader) ([]Lease, error) {
	ls, err := loadLeases(r)
	if err != nil {
		return nil, err
	}
	out := make([]Lease, 0, len(ls))
	for id, l := range ls {
		out = append(out, l.lease(id))
	}
	slices.SortFunc(out, func(a, b Lease) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}
