// Package alarm is Cairn's replicated alarm state, as etcd's v3alarm: a set
// of (member, alarm type) pairs, raised and cleared through Raft, that
// change what the cluster accepts. While a NOSPACE alarm is active, writes
// that add data fail with ErrNoSpace; while a CORRUPT alarm is active,
// every write fails with ErrCorrupt. Alarms survive restarts and travel in
// snapshots.
//
// On-disk keys (package storage keyspaces):
//
//	'A' member(8) type(4)   an active alarm (empty value)
//
// Durable changes happen only in apply (Activate and Deactivate over a
// storage batch); the in-memory set is read by any goroutine.
package alarm

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/storage"
)

type key struct {
	member uint64
	typ    pb.AlarmType
}

// Store is the set of active alarms.
type Store struct {
	mu  sync.Mutex
	set map[key]bool
}

// Load reads the active alarms from r.
func Load(r pebble.Reader) (*Store, error) {
	s := &Store{}
	return s, s.Reload(r)
}

// Reload replaces the set with what r holds (after a snapshot install).
func (s *Store) Reload(r pebble.Reader) error {
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte{storage.KeyspaceAlarms},
		UpperBound: storage.KeyspaceEnd(storage.KeyspaceAlarms),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	set := map[key]bool{}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 13 {
			return fmt.Errorf("alarm: corrupt alarm record %x", k)
		}
		set[key{binary.BigEndian.Uint64(k[1:9]), pb.AlarmType(int32(binary.BigEndian.Uint32(k[9:])))}] = true
	}
	if err := it.Error(); err != nil {
		return err
	}
	s.mu.Lock()
	s.set = set
	s.mu.Unlock()
	return nil
}

func storageKey(k key) []byte {
	b := binary.BigEndian.AppendUint64([]byte{storage.KeyspaceAlarms}, k.member)
	return binary.BigEndian.AppendUint32(b, uint32(k.typ))
}

// Activate raises alarm typ for member in b, as etcd's AlarmStore.Activate:
// it returns the alarm, or nil for AlarmType NONE. Raising one that is
// active already changes nothing and returns it. Any other type, even one
// outside the enum, is stored and listed, as etcd does.
func (s *Store) Activate(b *pebble.Batch, member uint64, typ pb.AlarmType) (*pb.AlarmMember, error) {
	if typ == pb.AlarmType_NONE {
		return nil, nil
	}
	k := key{member, typ}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.set[k] {
		if err := b.Set(storageKey(k), nil, nil); err != nil {
			return nil, err
		}
		s.set[k] = true
	}
	return &pb.AlarmMember{MemberID: member, Alarm: typ}, nil
}

// Deactivate clears alarm typ of member in b; it returns the alarm, or nil
// if it was not active.
func (s *Store) Deactivate(b *pebble.Batch, member uint64, typ pb.AlarmType) (*pb.AlarmMember, error) {
	k := key{member, typ}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.set[k] {
		return nil, nil
	}
	if err := b.Delete(storageKey(k), nil); err != nil {
		return nil, err
	}
	delete(s.set, k)
	return &pb.AlarmMember{MemberID: member, Alarm: typ}, nil
}

// Get lists the active alarms of type typ (NONE: of every type), by type
// then member ID (etcd lists them in map order).
func (s *Store) Get(typ pb.AlarmType) []*pb.AlarmMember {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*pb.AlarmMember
	for k := range s.set {
		if typ == pb.AlarmType_NONE || k.typ == typ {
			out = append(out, &pb.AlarmMember{MemberID: k.member, Alarm: k.typ})
		}
	}
	slices.SortFunc(out, func(a, b *pb.AlarmMember) int {
		return cmp.Or(cmp.Compare(a.Alarm, b.Alarm), cmp.Compare(a.MemberID, b.MemberID))
	})
	return out
}

// Active reports whether any member has alarm typ raised.
func (s *Store) Active(typ pb.AlarmType) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.set {
		if k.typ == typ {
			return true
		}
	}
	return false
}

// String formats an alarm as etcd's Status errors list it.
func String(m *pb.AlarmMember) string {
	return fmt.Sprintf("memberID:%d alarm:%s", m.MemberID, m.Alarm)
}
