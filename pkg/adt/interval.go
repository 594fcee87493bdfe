package adt

import "bytes"

// Interval is the half-open key range [Begin, End). An empty End means
// every key from Begin on (etcd's range_end "\x00").
type Interval struct {
	Begin, End []byte
}

// Contains tells whether key is in iv.
func (iv Interval) Contains(key []byte) bool {
	return bytes.Compare(key, iv.Begin) >= 0 && (len(iv.End) == 0 || bytes.Compare(key, iv.End) < 0)
}

// Entry is one interval in a Tree with its value; Insert returns it and
// Delete takes it back.
type Entry[V any] struct {
	Interval Interval
	Value    V

	seq         uint64 // orders entries with the same Begin
	prio        uint64 // treap heap priority
	maxEnd      []byte // largest End in the subtree; nil when some End is unbounded
	left, right *Entry[V]
}

// Tree is a set of intervals with values, answering "which intervals
// contain this key" in O(log n + matches) expected time. It is a treap
// ordered by Begin, each node holding the largest End below it. The zero
// value is an empty tree.
type Tree[V any] struct {
	root *Entry[V]
	n    int
	seq  uint64
	rnd  uint64
}

// Len is the number of entries.
func (t *Tree[V]) Len() int { return t.n }

// Insert adds iv with value v and returns its entry. Intervals may repeat.
func (t *Tree[V]) Insert(iv Interval, v V) *Entry[V] {
	t.seq++
	e := &Entry[V]{Interval: iv, Value: v, seq: t.seq, prio: t.random()}
	e.fix()
	t.root = t.insert(t.root, e)
	t.n++
	return e
}

// Delete removes e, which Insert returned; deleting an entry twice, or one
// of another tree, does nothing.
func (t *Tree[V]) Delete(e *Entry[V]) {
	var found bool
	t.root, found = t.delete(t.root, e)
	if found {
		t.n--
	}
}

// Stab calls fn for every entry whose interval contains key, in order of
// Begin; fn must not change the tree.
func (t *Tree[V]) Stab(key []byte, fn func(*Entry[V])) {
	stab(t.root, key, fn)
}

// Visit calls fn for every entry in order of Begin; fn must not change the tree.
func (t *Tree[V]) Visit(fn func(*Entry[V])) { visit(t.root, fn) }

func visit[V any](n *Entry[V], fn func(*Entry[V])) {
	if n == nil {
		return
	}
	visit(n.left, fn)
	fn(n)
	visit(n.right, fn)
}

func stab[V any](n *Entry[V], key []byte, fn func(*Entry[V])) {
	for n != nil {
		// No interval below n reaches key.
		if n.maxEnd != nil && bytes.Compare(key, n.maxEnd) >= 0 {
			return
		}
		stab(n.left, key, fn)
		if bytes.Compare(n.Interval.Begin, key) > 0 {
			return // n and everything right of it begin after key
		}
		if n.Interval.Contains(key) {
			fn(n)
		}
		n = n.right
	}
}

// less orders entries by Begin, then by insertion.
func less[V any](a, b *Entry[V]) bool {
	if c := bytes.Compare(a.Interval.Begin, b.Interval.Begin); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

func (t *Tree[V]) insert(n, e *Entry[V]) *Entry[V] {
	if n == nil {
		return e
	}
	if less(e, n) {
		n.left = t.insert(n.left, e)
		if n.left.prio > n.prio {
			n = rotateRight(n)
		}
	} else {
		n.right = t.insert(n.right, e)
		if n.right.prio > n.prio {
			n = rotateLeft(n)
		}
	}
	n.fix()
	return n
}

func (t *Tree[V]) delete(n, e *Entry[V]) (*Entry[V], bool) {
	if n == nil {
		return nil, false
	}
	var found bool
	switch {
	case n == e:
		m := merge(n.left, n.right)
		e.left, e.right = nil, nil
		return m, true
	case less(e, n):
		n.left, found = t.delete(n.left, e)
	default:
		n.right, found = t.delete(n.right, e)
	}
	n.fix()
	return n, found
}

// merge joins two treaps, every entry of a ordered before every one of b.
func merge[V any](a, b *Entry[V]) *Entry[V] {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		a.right = merge(a.right, b)
		a.fix()
		return a
	default:
		b.left = merge(a, b.left)
		b.fix()
		return b
	}
}

func rotateRight[V any](n *Entry[V]) *Entry[V] {
	l := n.left
	n.left, l.right = l.right, n
	n.fix()
	l.fix()
	return l
}

func rotateLeft[V any](n *Entry[V]) *Entry[V] {
	r := n.right
	n.right, r.left = r.left, n
	n.fix()
	r.fix()
	return r
}

// fix recomputes n.maxEnd from n and its children.
func (n *Entry[V]) fix() {
	m := n.Interval.End
	if len(m) == 0 {
		n.maxEnd = nil
		return
	}
	for _, c := range [2]*Entry[V]{n.left, n.right} {
		if c == nil {
			continue
		}
		if c.maxEnd == nil {
			n.maxEnd = nil
			return
		}
		if bytes.Compare(c.maxEnd, m) > 0 {
			m = c.maxEnd
		}
	}
	n.maxEnd = m
}

// random is a xorshift64* generator for treap priorities; determinism is
// fine, balance only needs priorities independent of the keys.
func (t *Tree[V]) random() uint64 {
	if t.rnd == 0 {
		t.rnd = 0x9E3779B97F4A7C15
	}
	t.rnd ^= t.rnd >> 12
	t.rnd ^= t.rnd << 25
	t.rnd ^= t.rnd >> 27
	return t.rnd * 2685821657736338717
}
