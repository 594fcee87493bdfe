package auth

import (
	"bytes"
	"slices"

	"go.etcd.io/etcd/api/v3/authpb"
)

// bound is one end of a permission interval, ordered as etcd's
// adt.BytesAffineComparable: the empty slice sorts after every other
// (it stands for "no upper bound").
type bound []byte

func (b bound) compare(c bound) int {
	switch {
	case len(b) == 0 && len(c) == 0:
		return 0
	case len(b) == 0:
		return 1
	case len(c) == 0:
		return -1
	}
	return bytes.Compare(b, c)
}

// interval is the half-open key interval [begin, end), as etcd's
// adt.Interval of BytesAffineComparable.
type interval struct{ begin, end bound }

// overlaps is etcd's adt.Interval.Compare == 0.
func (iv interval) overlaps(x interval) bool {
	if iv.begin.compare(x.begin) < 0 && iv.end.compare(x.begin) <= 0 {
		return false // iv is left of x
	}
	return iv.begin.compare(x.end) < 0 // else iv is right of x
}

func pointInterval(key []byte) interval {
	end := make([]byte, len(key)+1)
	copy(end, key)
	return interval{key, end}
}

// intervals is a set of permission intervals sorted by begin, as etcd's
// adt.IntervalTree visits them.
type intervals []interval

// contains is etcd's IntervalTree.Contains: the intervals that overlap iv,
// in order, form one contiguous run that starts at or before iv's begin
// and ends at or after iv's end.
func (s intervals) contains(iv interval) bool {
	var minBegin, maxEnd bound
	found := false
	for _, x := range s {
		if !iv.overlaps(x) {
			continue
		}
		if !found {
			found, minBegin, maxEnd = true, x.begin, x.end
			continue
		}
		if maxEnd.compare(x.begin) < 0 {
			return false
		}
		if x.end.compare(maxEnd) > 0 {
			maxEnd = x.end
		}
	}
	return found && maxEnd.compare(iv.end) >= 0 && minBegin.compare(iv.begin) <= 0
}

// intersects is etcd's IntervalTree.Intersects.
func (s intervals) intersects(iv interval) bool {
	for _, x := range s {
		if iv.overlaps(x) {
			return true
		}
	}
	return false
}

// mergedPerms are a user's permissions over all its roles, as etcd's
// unifiedRangePermissions.
type mergedPerms struct {
	read, write intervals
}

// mergePerms builds a user's merged permissions, as etcd's getMergedPerms:
// a range_end of "\x00" is open-ended, an empty range_end a single key.
// Roles the user names that do not exist are skipped.
func mergePerms(u *authpb.User, roles map[string]*authpb.Role) *mergedPerms {
	mp := &mergedPerms{}
	for _, name := range u.Roles {
		r := roles[name]
		if r == nil {
			continue
		}
		for _, p := range r.KeyPermission {
			var iv interval
			if len(p.RangeEnd) != 0 {
				var end []byte
				if !isOpenEnded(p.RangeEnd) {
					end = p.RangeEnd
				}
				iv = interval{p.Key, end}
			} else {
				iv = pointInterval(p.Key)
			}
			switch p.PermType {
			case authpb.Permission_READWRITE:
				mp.read = append(mp.read, iv)
				mp.write = append(mp.write, iv)
			case authpb.Permission_READ:
				mp.read = append(mp.read, iv)
			case authpb.Permission_WRITE:
				mp.write = append(mp.write, iv)
			}
		}
	}
	sortIntervals(mp.read)
	sortIntervals(mp.write)
	return mp
}

// sortIntervals orders s by begin, the order etcd's interval tree visits.
func sortIntervals(s intervals) {
	slices.SortStableFunc(s, func(a, b interval) int { return a.begin.compare(b.begin) })
}

// permitted is etcd's isRangeOpPermitted for merged permissions: a single
// key (empty rangeEnd) needs one interval holding it; a range needs the
// whole of [key, rangeEnd) covered, "\x00" meaning every key from key on.
func (mp *mergedPerms) permitted(key, rangeEnd []byte, typ authpb.Permission_Type) bool {
	set := mp.read
	if typ == authpb.Permission_WRITE {
		set = mp.write
	}
	if len(rangeEnd) == 0 {
		return set.intersects(pointInterval(key))
	}
	if isOpenEnded(rangeEnd) {
		rangeEnd = nil
	}
	return set.contains(interval{key, rangeEnd})
}

// isOpenEnded is etcd's: range_end "\x00" means no upper bound.
func isOpenEnded(rangeEnd []byte) bool {
	return len(rangeEnd) == 1 && rangeEnd[0] == 0
}

// isValidPermissionRange is etcd's: a key is required; a range_end, if
// given, must be after the key or be "\x00".
func isValidPermissionRange(key, rangeEnd []byte) bool {
	if len(key) == 0 {
		return false
	}
	if len(rangeEnd) == 0 {
		return true
	}
	if bound(key).compare(rangeEnd) < 0 {
		return true
	}
	return isOpenEnded(rangeEnd)
}
