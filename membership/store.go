package membership

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

var (
	metaClusterID = storage.MetaKey("cluster-id")
	metaMemberID  = storage.MetaKey("member-id")
)

// Cluster is the bootstrapped membership as stored on disk.
type Cluster struct {
	ID      uint64
	LocalID uint64
	Members []Member // sorted by ID
}

// Member returns the member with id, or false.
func (c *Cluster) Member(id uint64) (Member, bool) {
	for _, m := range c.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// ErrNotBootstrapped is returned by Load for a store with no membership.
var ErrNotBootstrapped = errors.New("membership: not bootstrapped")

// Bootstrap derives the IDs of a new cluster from --initial-cluster
// (name -> peer URLs) and the token, and returns it with localName's ID as
// LocalID. Nothing is written: Save does that.
func Bootstrap(initial map[string][]string, token, localName string, localClientURLs []string) (*Cluster, error) {
	c := &Cluster{}
	ids := make([]uint64, 0, len(initial))
	for name, urls := range initial {
		m := Member{ID: MemberID(urls, token), Name: name, PeerURLs: append([]string(nil), urls...)}
		if name == localName {
			c.LocalID = m.ID
			m.ClientURLs = localClientURLs
		}
		c.Members = append(c.Members, m)
		ids = append(ids, m.ID)
	}
	if c.LocalID == 0 {
		return nil, fmt.Errorf("membership: --initial-cluster has no member named %q", localName)
	}
	sort.Slice(c.Members, func(i, j int) bool { return c.Members[i].ID < c.Members[j].ID })
	c.ID = ClusterID(ids)
	return c, nil
}

// Save writes the cluster into b.
func (c *Cluster) Save(b *pebble.Batch) error {
	if err := b.Set(metaClusterID, binary.BigEndian.AppendUint64(nil, c.ID), nil); err != nil {
		return err
	}
	if err := b.Set(metaMemberID, binary.BigEndian.AppendUint64(nil, c.LocalID), nil); err != nil {
		return err
	}
	for _, m := range c.Members {
		v, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if err := b.Set(memberKey(m.ID), v, nil); err != nil {
			return err
		}
	}
	return nil
}

// Load reads the cluster from storage.
func Load(r pebble.Reader) (*Cluster, error) {
	cid, ok, err := storage.GetCopy(r, metaClusterID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotBootstrapped
	}
	mid, _, err := storage.GetCopy(r, metaMemberID)
	if err != nil {
		return nil, err
	}
	if len(cid) != 8 || len(mid) != 8 {
		return nil, errors.New("membership: corrupt cluster IDs")
	}
	c := &Cluster{ID: binary.BigEndian.Uint64(cid), LocalID: binary.BigEndian.Uint64(mid)}
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceMembers},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceMembers),
	})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		var m Member
		if err := json.Unmarshal(it.Value(), &m); err != nil {
			return nil, fmt.Errorf("membership: corrupt member record: %w", err)
		}
		c.Members = append(c.Members, m)
	}
	return c, it.Error()
}

func memberKey(id uint64) []byte {
	return storage.AppendUint64([]byte{storage.KeyspaceMembers}, id)
}
