// Package watch is Cairn's watchable store: it matches the events of every
// applied batch against the registered watchers and catches up watchers
// that start in the past, or that fell behind, from storage.
//
// A watcher is either synced (it has every event up to the last notified
// revision queued on its stream, and gets new ones as batches apply) or
// unsynced (it is at some older revision and a background loop reads its
// events from storage in bounded chunks, in revision order, until it has
// caught up). Notify never blocks: a watcher whose stream buffer is full
// becomes unsynced at the first revision it missed, so a slow client costs
// storage reads later, never a stalled apply loop or a lost event.
//
// Semantics follow etcd's watchable store: start revision 0 means "after
// the current revision"; a start revision in the future waits for it; a
// watcher whose next revision has been compacted gets a response with
// CompactRevision set and is removed.
package watch
