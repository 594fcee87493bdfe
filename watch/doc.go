// Package watch is Cairn's watchable store: it matches the events of every
// applied batch against the registered watchers and catches up watchers
// that start in the past, or that fell behind, from storage.
//
// The apply loop hands each committed batch to Hub.Notify, which only
// queues it; a notifier goroutine matches the batches in order against the
// synced watchers (point watchers by key, range watchers in an interval
// tree, pkg/adt) and queues one response per watcher and revision, so a
// watcher gets every event of revision N before any of N+1 and the cost
// of many watchers stays off the write path.
//
// A watcher is synced (every event up to the last notified revision is
// queued on its stream), unsynced (a catch-up loop reads its events from
// storage in chunks bounded in events and bytes, each group of watchers
// from its own position, until it reaches the head) or parked. A watcher
// whose stream is full (by count, Config.StreamBuffer, or bytes,
// Config.StreamBytes) is parked at the first revision it missed: it holds
// nothing and is read for by nobody until its client makes room, so a
// client that stops reading costs only a bounded queue and never holds up
// other watchers or the apply loop (etcd's victims, watchable_store.go).
//
// Semantics follow etcd's watchable store: start revision 0 means "after
// the current revision", chosen in one step with the watcher's
// registration; a start revision in the future waits for it; a watcher
// whose next revision has been compacted gets a response with
// CompactRevision set and is removed. A response's revision (its header)
// never runs ahead of the events it covers: progress requests are answered
// after the batches queued before them. A client may still read a
// revision before its watchers get the events of it, as with etcd.
//
// Delete events from the apply loop carry no previous version unless the
// request asked for prev_kv; the notifier reads it from storage for
// watchers that did, and catch-up reads previous versions only for them.
package watch
