package membership

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

var (
	metaClusterID = storage.MetaKey("cluster-id")
	metaMemberID  = storage.MetaKey("member-id")
	// metaBootstrap holds the member list the cluster started with: a
	// joining member starts from it and replays the log.
	metaBootstrap = storage.MetaKey("bootstrap-members")
)

// Cluster is the membership as stored on disk. ID and LocalID never
// change; the member list changes only in apply (SetAttributes).
type Cluster struct {
	ID      uint64
	LocalID uint64

	// mu guards Members and removed: apply writes them, the API reads them.
	mu      sync.Mutex
	Members []Member // sorted by ID
	removed map[uint64]bool
}

// Member returns the member with id, or false.
func (c *Cluster) Member(id uint64) (Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// List returns a copy of the members, sorted by ID.
func (c *Cluster) List() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Member(nil), c.Members...)
}

// SetAttributes records a member's name and client URLs (what it
// publishes through Raft once it serves, as etcd's members do) in b.
func (c *Cluster) SetAttributes(b *pebble.Batch, id uint64, name string, clientURLs []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.Members {
		if c.Members[i].ID != id {
			continue
		}
		c.Members[i].Name = name
		c.Members[i].ClientURLs = append([]string(nil), clientURLs...)
		v, err := json.Marshal(c.Members[i])
		if err != nil {
			return err
		}
		return b.Set(memberKey(id), v, nil)
	}
	return ErrMemberNotFound
}

// ErrMemberNotFound is returned for a member ID not in the cluster.
var ErrMemberNotFound = errors.New("membership: member not found")

// ErrNotBootstrapped is returned by Load for a store with no membership.
var ErrNotBootstrapped = errors.New("membership: not bootstrapped")

// Bootstrap derives the IDs of a new cluster from --initial-cluster
// (name -> peer URLs) and the token, and returns it with localName's ID as
// LocalID. Every member bootstraps the same state; client URLs come later,
// when each member publishes its own through Raft. Nothing is written:
// Save does that.
func Bootstrap(initial map[string][]string, token, localName string) (*Cluster, error) {
	c := &Cluster{}
	ids := make([]uint64, 0, len(initial))
	for name, urls := range initial {
		m := Member{ID: MemberID(urls, token), Name: name, PeerURLs: append([]string(nil), urls...)}
		if name == localName {
			c.LocalID = m.ID
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

// Save writes the cluster, as it bootstraps, into b.
func (c *Cluster) Save(b *pebble.Batch) error {
	boot, err := json.Marshal(c.Members)
	if err != nil {
		return err
	}
	if err := b.Set(metaBootstrap, boot, nil); err != nil {
		return err
	}
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
	if err := it.Error(); err != nil {
		return nil, err
	}
	prefix := storage.MetaKey("removed/")
	rit, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: storage.MetaKey("removed0")})
	if err != nil {
		return nil, err
	}
	defer rit.Close()
	for ok := rit.First(); ok; ok = rit.Next() {
		var id uint64
		if _, err := fmt.Sscanf(string(rit.Key()[len(prefix):]), "%x", &id); err == nil {
			if c.removed == nil {
				c.removed = map[uint64]bool{}
			}
			c.removed[id] = true
		}
	}
	return c, rit.Error()
}

// Reload rereads the member list and the removed members from r, after a
// snapshot replaced them; the cluster and local IDs stay.
func (c *Cluster) Reload(r pebble.Reader) error {
	fresh, err := Load(r)
	if err != nil {
		return err
	}
	if fresh.ID != c.ID {
		return fmt.Errorf("membership: the state belongs to cluster %x, not %x", fresh.ID, c.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Members, c.removed = fresh.Members, fresh.removed
	return nil
}

func memberKey(id uint64) []byte {
	return storage.AppendUint64([]byte{storage.KeyspaceMembers}, id)
}

// JoinInfo is what a member tells one joining the cluster.
type JoinInfo struct {
	ClusterID uint64   `json:"cluster_id"`
	Bootstrap []Member `json:"bootstrap"` // the members the cluster started with
	Current   []Member `json:"current"`
}

// JoinInfo describes the cluster for a joining member.
func (c *Cluster) JoinInfo(r pebble.Reader) ([]byte, error) {
	boot, ok, err := storage.GetCopy(r, metaBootstrap)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("membership: no bootstrap record")
	}
	info := JoinInfo{ClusterID: c.ID, Current: c.List()}
	if err := json.Unmarshal(boot, &info.Bootstrap); err != nil {
		return nil, err
	}
	return json.Marshal(info)
}

// Join builds the state a member joining the cluster starts from: the
// cluster as it bootstrapped, with this member (found by its peer URLs in
// the current members) as LocalID. The log replay brings it up to date.
func Join(info []byte, localPeerURLs []string) (*Cluster, []Member, error) {
	var ji JoinInfo
	if err := json.Unmarshal(info, &ji); err != nil {
		return nil, nil, fmt.Errorf("membership: bad join info: %w", err)
	}
	c := &Cluster{ID: ji.ClusterID, Members: ji.Bootstrap}
	for _, m := range ji.Current {
		for _, u := range m.PeerURLs {
			for _, l := range localPeerURLs {
				if u == l {
					c.LocalID = m.ID
				}
			}
		}
	}
	if c.LocalID == 0 {
		return nil, nil, fmt.Errorf("membership: no member of the cluster has peer URLs %v; add this member first (etcdctl member add)", localPeerURLs)
	}
	return c, ji.Current, nil
}
