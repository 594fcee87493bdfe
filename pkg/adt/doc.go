// Package adt holds abstract data types for the rest of Cairn; for now an
// interval tree over byte-string keys, which the watch hub uses to find
// the range watchers that cover a key (as etcd's pkg/adt.IntervalTree).
//
// Tree is not safe for concurrent use; its owner guards it.
package adt
