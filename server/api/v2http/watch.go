package v2http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A v2 watch (GET ?wait=true) is a v3 watch of the whole v2 prefix from
// waitIndex (default: the next revision), with previous values; each
// revision's events turn back into the one v2 event the revision's write
// made (actKey names it; none means lease expiry), and the first v2 event
// that concerns the watched key answers the request (all of them, each a
// JSON line, with stream=true). Events already in the history (at or below
// the index the watch started at) match as v2store's EventHistory.scan,
// later ones as its watcherHub.

// candidate is one v2 event a revision made, with the nodes it removed.
type candidate struct {
	ev      *Event
	deleted []string // paths of the nodes the event removed
}

// watchCleared is etcd's 401 for a waitIndex older than the history.
func watchCleared(start int64, since uint64, rev int64) *Error {
	return newError(ecodeEventIndexCleared, fmt.Sprintf("the requested history has been cleared [%v/%v]", start, since), rev)
}

// compactedRev learns the store's compaction revision, watching from a
// compacted revision.
func compactedRev(ctx context.Context, c Client, since int64) int64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for resp := range c.Watch(ctx, actKey, clientv3.WithRev(since)) {
		if resp.CompactRevision != 0 {
			return resp.CompactRevision
		}
	}
	return since + 1
}

// watch serves GET ?wait=true on p. header writes the success headers with
// the index the watch starts at.
func (st *store) watch(ctx context.Context, c Client, w http.ResponseWriter, p string, recursive, stream bool, waitIndex uint64, header func(rev int64)) error {
	cur, err := c.Get(ctx, actKey, clientv3.WithSerializable(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	start := cur.Header.Revision
	since := int64(waitIndex)
	if waitIndex == 0 {
		since = start + 1
	}
	if since <= start {
		_, err := c.Get(ctx, actKey, clientv3.WithSerializable(), clientv3.WithCountOnly(), clientv3.WithRev(since))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return watchCleared(compactedRev(ctx, c, since), waitIndex, start)
		}
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.Watch(ctx, Prefix, clientv3.WithPrefix(), clientv3.WithRev(since), clientv3.WithPrevKV())
	header(start)
	w.WriteHeader(http.StatusOK)
	flush(w)
	var lastRev int64
	for resp := range wch {
		if resp.Err() != nil {
			return nil // the response has started; etcd ends it empty
		}
		evs := resp.Events
		for len(evs) > 0 {
			rev := evs[0].Kv.ModRevision
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == rev {
				n++
			}
			if rev == lastRev {
				// The rest of a revision split across responses: its
				// first part (act and the node, written first) made
				// the v2 event already.
				evs = evs[n:]
				continue
			}
			lastRev = rev
			for _, cand := range candidates(evs[:n], rev) {
				if !cand.matches(p, recursive, rev <= start) {
					continue
				}
				if err := json.NewEncoder(w).Encode(cand.ev); err != nil || !stream {
					return nil
				}
				flush(w)
			}
			evs = evs[n:]
		}
	}
	return nil
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// candidates turns the v3 events of one revision into its v2 events.
func candidates(evs []*clientv3.Event, rev int64) []candidate {
	var a *act
	var deleted []string
	type change struct{ put, prev *mvccpb.KeyValue }
	changes := map[string]*change{}
	for _, e := range evs {
		if string(e.Kv.Key) == actKey {
			if e.Type == clientv3.EventTypePut {
				a = &act{}
				if json.Unmarshal(e.Kv.Value, a) != nil {
					a = nil
				}
			}
			continue
		}
		p, _, ok := pathOf(e.Kv.Key)
		if !ok {
			continue
		}
		ch := changes[p]
		if ch == nil {
			ch = &change{}
			changes[p] = ch
		}
		if e.Type == clientv3.EventTypePut {
			ch.put = e.Kv
			if e.PrevKv != nil && ch.prev == nil {
				ch.prev = e.PrevKv
			}
		} else {
			deleted = append(deleted, p)
			if e.PrevKv != nil {
				ch.prev = e.PrevKv
			}
		}
	}
	decode := func(kv *mvccpb.KeyValue, at time.Time) *Node {
		if kv == nil {
			return nil
		}
		in, err := decodeNode(kv)
		if err != nil {
			return nil
		}
		return in.repr(at)
	}
	if a == nil {
		// Lease expiry: each removed node expired.
		var out []candidate
		for _, p := range deleted {
			ch := changes[p]
			in, err := decodeNode(ch.prev)
			if ch.prev == nil || err != nil {
				continue
			}
			prev := in.repr(in.expire)
			out = append(out, candidate{
				ev:      &Event{Action: actionExpire, Node: &Node{Key: p, Dir: in.dir, ModifiedIndex: uint64(rev), CreatedIndex: uint64(in.created)}, PrevNode: prev},
				deleted: []string{p},
			})
		}
		return out
	}
	if a.Refresh || a.Action == actionPurge {
		return nil // a refresh notifies no watcher, as v2store
	}
	at := time.Unix(0, a.Time)
	ch := changes[a.Path]
	if ch == nil {
		return nil
	}
	ev := &Event{Action: a.Action, PrevNode: decode(ch.prev, at)}
	switch a.Action {
	case actionDelete, actionCompareAndDelete:
		if ev.PrevNode == nil {
			return nil
		}
		ev.Node = &Node{Key: a.Path, Dir: ev.PrevNode.Dir && a.Action == actionDelete, ModifiedIndex: uint64(rev), CreatedIndex: ev.PrevNode.CreatedIndex}
	default:
		ev.Node = decode(ch.put, at)
		if ev.Node == nil {
			return nil
		}
	}
	return []candidate{{ev: ev, deleted: deleted}}
}

// matches reports whether a watcher of w (recursive or not) gets c: from
// the history as EventHistory.scan, later as watcherHub.notify.
func (c candidate) matches(w string, recursive, history bool) bool {
	k := c.ev.Node.Key
	removes := c.ev.Action == actionDelete || c.ev.Action == actionExpire || c.ev.Action == actionCompareAndDelete
	if history {
		ok := k == w
		if recursive {
			nkey := w
			if !strings.HasSuffix(nkey, "/") {
				nkey += "/"
			}
			ok = ok || strings.HasPrefix(k, nkey)
		}
		if (c.ev.Action == actionDelete || c.ev.Action == actionExpire) && c.ev.PrevNode != nil && c.ev.PrevNode.Dir {
			ok = ok || strings.HasPrefix(w, c.ev.PrevNode.Key)
		}
		return ok
	}
	if k == w {
		return true
	}
	if recursive && (w == "/" || strings.HasPrefix(k, w+"/")) && !isHidden(w, k) {
		return true
	}
	if c.ev.Action == actionExpire && c.ev.PrevNode != nil && c.ev.PrevNode.Dir && strings.HasPrefix(w, k+"/") {
		// An expired directory takes what is under it (Cairn deletes
		// that later: see purgeOrphans); etcd tells the watchers of
		// those nodes that existed, Cairn those of any path below.
		return true
	}
	if removes {
		for _, d := range c.deleted {
			if d == w {
				return true
			}
		}
	}
	return false
}

// isHidden is watcherHub's: whether the path from w down to k passes a
// hidden ("_") component.
func isHidden(w, k string) bool {
	if len(w) > len(k) {
		return false
	}
	return strings.Contains(path.Clean("/"+k[len(w):]), "/_")
}
