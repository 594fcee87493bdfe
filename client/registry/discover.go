package registry

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/cairn-kv/cairn/client"
)

// Update is one change to a discovered set of instances.
type Update struct {
	// Revision is the store revision the set reflects.
	Revision int64
	// Instances is the whole set after the change, sorted by ID.
	Instances []Service
	// Added, Updated and Removed are the change itself, each sorted by
	// ID. Updated instances changed address or metadata.
	Added, Updated, Removed []Service
}

// Instances is the live set of a service's instances; see
// Registry.Discover.
type Instances struct {
	r        *Registry
	name     string
	onChange func(Update)
	w        *client.Watcher
	work     map[string]Service // the watcher goroutine's copy, ahead of mu.set within a revision

	mu struct {
		sync.Mutex
		set map[string]Service // by ID
		rev int64
	}
}

// Discover reads the instances of service name and keeps the set up to
// date by watching their prefix from the revision of that read, until ctx
// ends or Close is called. Watch breaks, server restarts and compactions
// are handled as client.Watch does; after a compaction the set is read
// again and the difference reported as an ordinary Update.
//
// onChange, if not nil, is called once before Discover returns, with the
// initial set (all of it Added, possibly empty), then after every change,
// one call at a time on the watcher's goroutine. It must not call Close.
// Malformed values are skipped (and logged). Discover fails only if the
// first read does.
func (r *Registry) Discover(ctx context.Context, name string, onChange func(Update)) (*Instances, error) {
	in := &Instances{r: r, name: name, onChange: onChange, work: map[string]Service{}}
	rng, err := r.c.GetPrefix(ctx, r.Prefix(name))
	if err != nil {
		return nil, err
	}
	in.mu.set = map[string]Service{}
	for _, kv := range rng.KVs {
		if s, ok := r.decode(name, kv); ok {
			in.work[s.ID] = s
		}
	}
	in.publish(rng.Revision)
	in.w, err = r.c.WatchPrefix(ctx, r.Prefix(name), in.apply, client.WithStartRevision(rng.Revision+1))
	if err != nil {
		return nil, err
	}
	return in, nil
}

// apply folds one watch event into the working set and publishes it at
// the end of each revision.
func (in *Instances) apply(ev client.Event) {
	switch ev.Type {
	case client.EventReset:
		clear(in.work)
		for _, kv := range ev.State {
			if s, ok := in.r.decode(in.name, kv); ok {
				in.work[s.ID] = s
			}
		}
	case client.EventDelete:
		delete(in.work, strings.TrimPrefix(ev.KV.Key, in.r.Prefix(in.name)))
	default:
		if s, ok := in.r.decode(in.name, ev.KV); ok {
			in.work[s.ID] = s
		} else {
			delete(in.work, strings.TrimPrefix(ev.KV.Key, in.r.Prefix(in.name)))
		}
	}
	if ev.LastInRevision {
		in.publish(ev.Revision)
	}
}

// publish makes the working set current and tells onChange what changed.
func (in *Instances) publish(rev int64) {
	var u Update
	in.mu.Lock()
	first, old := in.mu.rev == 0, in.mu.set
	for id, s := range in.work {
		o, ok := old[id]
		switch {
		case !ok:
			u.Added = append(u.Added, s)
		case !sameService(o, s):
			u.Updated = append(u.Updated, s)
		}
	}
	for id, o := range old {
		if _, ok := in.work[id]; !ok {
			u.Removed = append(u.Removed, o)
		}
	}
	in.mu.set = maps.Clone(in.work)
	in.mu.rev = rev
	in.mu.Unlock()
	if in.onChange == nil || (!first && len(u.Added)+len(u.Updated)+len(u.Removed) == 0) {
		return
	}
	u.Revision = rev
	u.Instances = sortedServices(in.work)
	for _, l := range [][]Service{u.Added, u.Updated, u.Removed} {
		slices.SortFunc(l, byID)
	}
	in.onChange(u)
}

func sameService(a, b Service) bool {
	return a.Name == b.Name && a.ID == b.ID && a.Addr == b.Addr && maps.Equal(a.Metadata, b.Metadata)
}

func byID(a, b Service) int { return strings.Compare(a.ID, b.ID) }

func sortedServices(m map[string]Service) []Service {
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, byID)
	return out
}

// List returns the current instances, sorted by ID.
func (in *Instances) List() []Service {
	in.mu.Lock()
	defer in.mu.Unlock()
	return sortedServices(in.mu.set)
}

// Revision is the store revision the current set reflects.
func (in *Instances) Revision() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.mu.rev
}

// Close stops watching and waits for the last onChange call to return.
func (in *Instances) Close() { in.w.Stop() }

// Done is closed when the set stops being updated: its context ended,
// Close was called, or the Client was closed.
func (in *Instances) Done() <-chan struct{} { return in.w.Done() }

// Err says why the set stopped being updated (see client.Watcher.Err).
func (in *Instances) Err() error { return in.w.Err() }
