package auth

import "go.etcd.io/etcd/api/v3/authpb"

// IsRangePermitted checks that ai may read [key, rangeEnd) (etcd's range
// conventions: empty rangeEnd one key, "\x00" every key from key on), as
// etcd's: nil while auth is disabled; ErrUserEmpty without a user
// (revision 0); ErrAuthOldRevision when ai's revision is older than the
// store's; ErrPermissionDenied for an unknown user or a range its roles
// do not cover. Role root may do anything.
func (s *Store) IsRangePermitted(ai *Info, key, rangeEnd []byte) error {
	return s.isOpPermitted(ai, key, rangeEnd, authpb.Permission_READ)
}

// IsPutPermitted checks that ai may write key; see IsRangePermitted.
func (s *Store) IsPutPermitted(ai *Info, key []byte) error {
	return s.isOpPermitted(ai, key, nil, authpb.Permission_WRITE)
}

// IsDeleteRangePermitted checks that ai may write [key, rangeEnd); see
// IsRangePermitted.
func (s *Store) IsDeleteRangePermitted(ai *Info, key, rangeEnd []byte) error {
	return s.isOpPermitted(ai, key, rangeEnd, authpb.Permission_WRITE)
}

func (s *Store) isOpPermitted(ai *Info, key, rangeEnd []byte, typ authpb.Permission_Type) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil
	}
	if ai == nil || ai.Revision == 0 {
		return ErrUserEmpty
	}
	if ai.Revision < s.revision {
		return ErrAuthOldRevision
	}
	u := s.users[ai.Username]
	if u == nil {
		return ErrPermissionDenied
	}
	if hasRootRole(u) {
		return nil
	}
	if s.mergedLocked(u).permitted(key, rangeEnd, typ) {
		return nil
	}
	return ErrPermissionDenied
}

// mergedLocked returns u's merged permissions from the cache, building
// them on a miss. The caller holds mu (for reading at least).
func (s *Store) mergedLocked(u *authpb.User) *mergedPerms {
	name := string(u.Name)
	s.permMu.RLock()
	mp := s.perms[name]
	s.permMu.RUnlock()
	if mp != nil {
		return mp
	}
	mp = mergePerms(u, s.roles)
	s.permMu.Lock()
	s.perms[name] = mp
	s.permMu.Unlock()
	return mp
}

// IsAdminPermitted checks that ai has role root, as etcd's: nil while
// auth is disabled; ErrUserEmpty without a user name; ErrUserNotFound;
// ErrPermissionDenied. The revision is not checked.
func (s *Store) IsAdminPermitted(ai *Info) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return nil
	}
	if ai == nil || ai.Username == "" {
		return ErrUserEmpty
	}
	u := s.users[ai.Username]
	if u == nil {
		return ErrUserNotFound
	}
	if !hasRootRole(u) {
		return ErrPermissionDenied
	}
	return nil
}
