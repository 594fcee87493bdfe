package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairn-kv/cairn/storage"
)

// Errors of membership changes, as etcd's membership package.
var (
	ErrIDExists         = errors.New("membership: ID exists")
	ErrPeerURLExists    = errors.New("membership: peerURL exists")
	ErrMemberNotLearner = errors.New("membership: can only promote a learner member")
	ErrTooManyLearners  = errors.New("membership: too many learner members in cluster")
)

// Change is one membership change as carried in a Raft conf change's
// context: the request it answers and the member after the change.
type Change struct {
	RequestID uint64 `json:"request_id"`
	// Op is "add", "remove", "update" or "promote".
	Op     string `json:"op"`
	Member Member `json:"member"`
}

// Encode and DecodeChange turn a Change into a conf change context and back.
func (c Change) Encode() []byte {
	b, _ := json.Marshal(c)
	return b
}

// DecodeChange reads a conf change context.
func DecodeChange(b []byte) (Change, error) {
	var c Change
	if err := json.Unmarshal(b, &c); err != nil {
		return Change{}, fmt.Errorf("membership: bad change context: %w", err)
	}
	return c, nil
}

// Validate reports whether change c may be applied to the current members
// (maxLearners bounds learners, as etcd's --max-learners).
func (c *Cluster) Validate(ch Change, maxLearners int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := slices.IndexFunc(c.Members, func(m Member) bool { return m.ID == ch.Member.ID })
	switch ch.Op {
	case "add":
		if idx >= 0 {
			return ErrIDExists
		}
		for _, m := range c.Members {
			for _, u := range m.PeerURLs {
				if slices.Contains(ch.Member.PeerURLs, u) {
					return ErrPeerURLExists
				}
			}
		}
		if ch.Member.IsLearner {
			n := 0
			for _, m := range c.Members {
				if m.IsLearner {
					n++
				}
			}
			if n >= maxLearners {
				return ErrTooManyLearners
			}
		}
	case "remove":
		if idx < 0 {
			return ErrMemberNotFound
		}
	case "update":
		if idx < 0 {
			return ErrMemberNotFound
		}
		for _, m := range c.Members {
			if m.ID == ch.Member.ID {
				continue
			}
			for _, u := range m.PeerURLs {
				if slices.Contains(ch.Member.PeerURLs, u) {
					return ErrPeerURLExists
				}
			}
		}
	case "promote":
		if idx < 0 {
			return ErrMemberNotFound
		}
		if !c.Members[idx].IsLearner {
			return ErrMemberNotLearner
		}
	default:
		return fmt.Errorf("membership: unknown change %q", ch.Op)
	}
	return nil
}

// Apply makes change ch in b and in memory. It assumes Validate passed
// when the change was proposed; a change that no longer fits is skipped
// and reported, the same way on every member.
func (c *Cluster) Apply(b *pebble.Batch, ch Change) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := slices.IndexFunc(c.Members, func(m Member) bool { return m.ID == ch.Member.ID })
	switch ch.Op {
	case "add":
		if idx >= 0 {
			return ErrIDExists
		}
		c.Members = append(c.Members, ch.Member)
		slices.SortFunc(c.Members, func(a, b Member) int { return cmpID(a.ID, b.ID) })
		return c.saveLocked(b, ch.Member)
	case "remove":
		if idx < 0 {
			return ErrMemberNotFound
		}
		c.Members = slices.Delete(c.Members, idx, idx+1)
		if c.removed == nil {
			c.removed = map[uint64]bool{}
		}
		c.removed[ch.Member.ID] = true
		if err := b.Set(removedKey(ch.Member.ID), nil, nil); err != nil {
			return err
		}
		return b.Delete(memberKey(ch.Member.ID), nil)
	case "update":
		if idx < 0 {
			return ErrMemberNotFound
		}
		c.Members[idx].PeerURLs = append([]string(nil), ch.Member.PeerURLs...)
		return c.saveLocked(b, c.Members[idx])
	case "promote":
		if idx < 0 {
			return ErrMemberNotFound
		}
		c.Members[idx].IsLearner = false
		return c.saveLocked(b, c.Members[idx])
	}
	return fmt.Errorf("membership: unknown change %q", ch.Op)
}

func (c *Cluster) saveLocked(b *pebble.Batch, m Member) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return b.Set(memberKey(m.ID), v, nil)
}

func cmpID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// IsRemoved reports whether member id was removed from the cluster; such a
// member is refused by its former peers, which is how it learns it is gone.
func (c *Cluster) IsRemoved(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removed[id]
}

func removedKey(id uint64) []byte { return storage.MetaKey(fmt.Sprintf("removed/%016x", id)) }
