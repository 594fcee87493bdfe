package auth

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/etcd/api/v3/authpb"
	"google.golang.org/protobuf/proto"
)

// State is the whole auth state, as backups carry it (etcd's auth,
// authUsers and authRoles buckets).
type State struct {
	Enabled  bool
	Revision uint64
	Users    []*authpb.User // by name
	Roles    []*authpb.Role // by name
}

// Export reads the auth state from r (a Pebble snapshot).
func Export(r pebble.Reader) (*State, error) {
	s, err := Load(r, nil)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := &State{Enabled: s.enabled, Revision: s.revision}
	for _, n := range sortedKeys(s.users) {
		st.Users = append(st.Users, s.users[n])
	}
	for _, n := range sortedKeys(s.roles) {
		st.Roles = append(st.Roles, s.roles[n])
	}
	return st, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Import writes st into b, for a store being restored from a backup: it
// adds to what b's store holds (a fresh one), users and roles by name.
// A revision of 0 is stored as 1.
func Import(b *pebble.Batch, st *State) error {
	enabled := byte(0)
	if st.Enabled {
		enabled = 1
	}
	if err := b.Set(keyEnabled, []byte{enabled}, nil); err != nil {
		return err
	}
	if err := b.Set(keyRevision, binary.BigEndian.AppendUint64(nil, max(st.Revision, 1)), nil); err != nil {
		return err
	}
	for _, u := range st.Users {
		if len(u.Name) == 0 {
			return fmt.Errorf("auth: import: a user without a name")
		}
		v, err := proto.Marshal(u)
		if err != nil {
			return err
		}
		if err := b.Set(append(bytes.Clone(prefixUser), u.Name...), v, nil); err != nil {
			return err
		}
	}
	for _, r := range st.Roles {
		if len(r.Name) == 0 {
			return fmt.Errorf("auth: import: a role without a name")
		}
		v, err := proto.Marshal(r)
		if err != nil {
			return err
		}
		if err := b.Set(append(bytes.Clone(prefixRole), r.Name...), v, nil); err != nil {
			return err
		}
	}
	return nil
}
