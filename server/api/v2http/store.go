package v2http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Client is what the v2 API needs of a v3 client of the member: a
// *clientv3.Client connected to it satisfies it.
type Client interface {
	clientv3.KV
	clientv3.Lease
	clientv3.Watcher
}

// maxLeaseTTL is the longest v3 lease, in seconds (etcd's and Cairn's
// lease.MaxLeaseTTL); longer v2 TTLs get it.
const maxLeaseTTL = 9000000000

// minExpireTime is v2store's: an expiration before it means none.
var minExpireTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// store runs the v2 operations of etcd's v2store over the v3 store. Each
// write reads what it needs at one revision, decides as v2store decides,
// and commits a Txn guarded by the mod revision of actKey (written by every
// v2 write, so v2 writes are serializable, as v2store's one lock made them)
// and of the nodes it changes (so a lease expiry in between is not undone);
// a failed guard retries from the read.
type store struct {
	now func() time.Time
	// mu, a one-slot semaphore, lets one v2 write at a time run on this
	// member (see write).
	mu chan struct{}
}

// act is actKey's value: the v2 action of the revision that wrote it, so a
// watcher turns v3 events back into the v2 event (a revision without one
// deleted keys by lease expiry: action expire).
type act struct {
	Action  string `json:"a"`
	Path    string `json:"k"`
	Time    int64  `json:"t"` // Unix ns of the request, for the events' TTLs
	Refresh bool   `json:"r,omitempty"`
}

// snap is the nodes along one path, read at one revision.
type snap struct {
	rev    int64
	actRev int64
	kvs    map[string]*mvccpb.KeyValue
}

func (s *snap) modRev(key string) int64 {
	if kv := s.kvs[key]; kv != nil {
		return kv.ModRevision
	}
	return 0
}

// prefixes lists "/a", "/a/b", "/a/b/c" for "/a/b/c" ("/" has none).
func prefixes(p string) []string {
	var out []string
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	if p != "/" {
		out = append(out, p)
	}
	return out
}

// maxReadOps bounds the reads of one Txn, below etcd's default
// --max-txn-ops (128); deeper paths read the rest at the same revision.
const maxReadOps = 100

// readExisting reads the tree around p and returns the existing node at p,
// for the writes that change a node in place (update, compare-and-swap,
// delete): the root is read-only (error 107), a missing node is error 100.
func (st *store) readExisting(ctx context.Context, c Client, p string, serializable bool) (*snap, *inode, error) {
	s, err := st.read(ctx, c, p, serializable)
	if err != nil {
		return nil, nil, err
	}
	if p == "/" {
		return nil, nil, newError(ecodeRootROnly, "/", s.rev)
	}
	n, err := s.walk(p)
	if err != nil {
		return nil, nil, err
	}
	return s, n, nil
}

// read reads actKey and the file and directory keys of p and of every
// directory above it, at one revision.
func (st *store) read(ctx context.Context, c Client, p string, serializable bool) (*snap, error) {
	var opts []clientv3.OpOption
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	keys := []string{actKey}
	for _, q := range prefixes(p) {
		keys = append(keys, fileKey(q), dirKey(q))
	}
	s := &snap{kvs: map[string]*mvccpb.KeyValue{}}
	first := keys[:min(len(keys), maxReadOps)]
	ops := make([]clientv3.Op, len(first))
	for i, k := range first {
		ops[i] = clientv3.OpGet(k, opts...)
	}
	resp, err := c.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	s.rev = resp.Header.Revision
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			s.kvs[string(kv.Key)] = kv
		}
	}
	for _, k := range keys[len(first):] {
		g, err := c.Get(ctx, k, append(opts, clientv3.WithRev(s.rev))...)
		if err != nil {
			return nil, err
		}
		for _, kv := range g.Kvs {
			s.kvs[string(kv.Key)] = kv
		}
	}
	s.actRev = s.modRev(actKey)
	return s, nil
}

// node is the node at q in s, nil if none.
func (s *snap) node(q string) (*inode, error) {
	for _, k := range []string{fileKey(q), dirKey(q)} {
		if kv := s.kvs[k]; kv != nil {
			return decodeNode(kv)
		}
	}
	return nil, nil
}

// walk finds p as v2store's internalGet: the first missing component is
// "Key not found", a file above p "Not a directory".
func (s *snap) walk(p string) (*inode, error) {
	if p == "/" {
		return &inode{path: "/", dir: true}, nil
	}
	for _, q := range prefixes(p) {
		n, err := s.node(q)
		if err != nil {
			return nil, err
		}
		if n == nil {
			return nil, newError(ecodeKeyNotFound, q, s.rev)
		}
		if q == p {
			return n, nil
		}
		if !n.dir {
			return nil, newError(ecodeNotDir, q, s.rev)
		}
	}
	panic("unreachable")
}

// parentDirs checks the directories above p as v2store's checkDir: a file
// there is "Not a directory"; it returns the ones to create.
func (s *snap) parentDirs(p string) ([]string, error) {
	var missing []string
	for _, q := range prefixes(path.Dir(p)) {
		n, err := s.node(q)
		if err != nil {
			return nil, err
		}
		switch {
		case n == nil:
			missing = append(missing, q)
		case !n.dir:
			return nil, newError(ecodeNotDir, q, s.rev)
		}
	}
	return missing, nil
}

// errRetry makes an operation read again: its guard failed.
var errRetry = errors.New("v2http: retry")

// commit writes ops, and actKey, if nothing v2 wrote since s and the nodes
// named in guards are as s read them.
func (st *store) commit(ctx context.Context, c Client, s *snap, guards []string, a act, ops ...clientv3.Op) (int64, error) {
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(actKey), "=", s.actRev)}
	for _, k := range guards {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", s.modRev(k)))
	}
	// act first, and callers put the node's own change next: a watcher
	// catching up may get a revision's events split across responses, and
	// then its first part names the v2 event (see watch).
	b, _ := json.Marshal(a)
	ops = append([]clientv3.Op{clientv3.OpPut(actKey, string(b))}, ops...)
	resp, err := c.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, errRetry
	}
	return resp.Header.Revision, nil
}

// write runs f, a write, one at a time on this member (so this member's
// writers queue instead of failing each other's guards), until it does not
// ask to retry, or ctx ends. f's first attempt reads serializably (this
// member has applied its own earlier writes; the Txn's guard catches any
// other), later ones linearizably; a v2 error decided on a serializable
// read is decided again on a linearizable one, as etcd decides it on the
// applied state.
func (st *store) write(ctx context.Context, f func(serializable bool) (*Event, int64, error)) (*Event, int64, error) {
	select {
	case st.mu <- struct{}{}:
		defer func() { <-st.mu }()
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	serializable := true
	for {
		ev, idx, err := f(serializable)
		var verr *Error
		if !errors.Is(err, errRetry) && !(serializable && errors.As(err, &verr)) {
			return ev, idx, err
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		serializable = false
	}
}

// ttlOpts is a write's TTL: its lease (0: none) and expiration.
type ttlOpts struct {
	expire  time.Time
	lease   clientv3.LeaseID
	refresh bool
}

// grant makes the lease of a write with ttl seconds (nil: none).
func (st *store) grant(ctx context.Context, c Client, now time.Time, ttl *uint64, refresh bool) (ttlOpts, error) {
	o := ttlOpts{refresh: refresh}
	if ttl == nil {
		return o, nil
	}
	o.expire = now.Add(time.Duration(*ttl) * time.Second)
	if o.expire.Before(minExpireTime) {
		o.expire = time.Time{}
		return o, nil
	}
	// A lease's TTL is whole seconds, at least 1 (the server may raise it
	// to its minimum); a v2 ttl of 0 expires at once in etcd.
	secs := int64(min(max(*ttl, 1), maxLeaseTTL))
	l, err := c.Grant(ctx, secs)
	if err != nil {
		return o, err
	}
	o.lease = l.ID
	return o, nil
}

// release revokes o's lease when the write that granted it failed.
func (st *store) release(c Client, o ttlOpts, err error) {
	if err == nil || o.lease == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.Revoke(ctx, o.lease)
}

// retire revokes the lease of a node a write replaced or removed, so a
// node refreshed or rewritten often does not leave one lease per write
// until each runs out; each lease holds one node. Failure only leaves the
// lease to expire on its own.
func (st *store) retire(ctx context.Context, c Client, n *inode, kept clientv3.LeaseID) {
	if n == nil || n.lease == 0 || clientv3.LeaseID(n.lease) == kept {
		return
	}
	c.Revoke(ctx, clientv3.LeaseID(n.lease))
}

func putOpts(o ttlOpts) []clientv3.OpOption {
	if o.lease == 0 {
		return nil
	}
	return []clientv3.OpOption{clientv3.WithLease(o.lease)}
}

// newNode is the response node of a node written at rev.
func newNode(p string, dir bool, value string, created, rev int64, o ttlOpts, now time.Time) *Node {
	n := &Node{Key: p, Dir: dir, ModifiedIndex: uint64(rev), CreatedIndex: uint64(created)}
	if !dir {
		v := value
		n.Value = &v
	}
	n.Expiration, n.TTL = expirationAndTTL(o.expire, now)
	return n
}

// purgeOrphans deletes what lies under the directories a write is about to
// create: nodes left by a directory whose lease expired (the expiry deletes
// the directory's key only; walks already hide what is under it). If it
// deleted anything, the write must read again (errRetry).
func (st *store) purgeOrphans(ctx context.Context, c Client, s *snap, dirs []string, now time.Time) error {
	var ops []clientv3.Op
	for _, d := range dirs {
		for dd := depth(d) + 1; dd <= maxDepth; dd++ {
			g, err := c.Get(ctx, depthPrefix(d, dd), clientv3.WithPrefix(), clientv3.WithRev(s.rev), clientv3.WithCountOnly())
			if err != nil {
				return err
			}
			if g.Count == 0 {
				break
			}
			ops = append(ops, clientv3.OpDelete(depthPrefix(d, dd), clientv3.WithPrefix()))
		}
		if len(ops) > 0 {
			break // one directory's at a time: the ranges of those below overlap
		}
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := st.commit(ctx, c, s, nil, act{Action: actionPurge, Path: dirs[0], Time: now.UnixNano()}, ops...); err != nil {
		return err
	}
	return errRetry
}

func dirOps(dirs []string) []clientv3.Op {
	ops := make([]clientv3.Op, len(dirs))
	for i, d := range dirs {
		ops[i] = clientv3.OpPut(dirKey(d), encodeValue(0, time.Time{}, ""))
	}
	return ops
}

// Get is v2store.Get: the node at p, with its children if a directory
// (all descendants if recursive), at the current revision.
func (st *store) Get(ctx context.Context, c Client, p string, recursive, sorted, quorum bool) (*Event, int64, error) {
	now := st.now()
	s, err := st.read(ctx, c, p, !quorum)
	if err != nil {
		return nil, 0, err
	}
	n, err := s.walk(p)
	if err != nil {
		return nil, 0, err
	}
	out := n.repr(now)
	if p == "/" {
		out = &Node{Dir: true}
	}
	if n.dir {
		nodes, err := st.list(ctx, c, p, s.rev, recursive, sorted, !quorum, now)
		if err != nil {
			return nil, 0, err
		}
		out.Nodes = nodes
	}
	return &Event{Action: actionGet, Node: out}, s.rev, nil
}

// list loads the children of directory p at rev, skipping hidden ones.
func (st *store) list(ctx context.Context, c Client, p string, rev int64, recursive, sorted, serializable bool, now time.Time) ([]*Node, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(rev)}
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	dirs := map[string]*Node{}
	var top []*Node
	for d := depth(p) + 1; d <= maxDepth; d++ {
		resp, err := c.Get(ctx, depthPrefix(p, d), opts...)
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 0 {
			break
		}
		for _, kv := range resp.Kvs {
			in, err := decodeNode(kv)
			if err != nil {
				return nil, err
			}
			if isHiddenName(in.path) {
				continue
			}
			n := in.repr(now)
			if d == depth(p)+1 {
				top = append(top, n)
			} else if parent := dirs[path.Dir(in.path)]; parent != nil {
				parent.Nodes = append(parent.Nodes, n)
			} else {
				continue
			}
			if in.dir {
				dirs[in.path] = n
			}
		}
		if !recursive {
			break
		}
	}
	if sorted {
		sortNodes(top)
		for _, n := range dirs {
			sortNodes(n.Nodes)
		}
	}
	return top, nil
}

// Set is v2store.Set: create or replace the node at p.
func (st *store) Set(ctx context.Context, c Client, p string, dir bool, value string, ttl *uint64, refresh bool) (ev *Event, rev int64, err error) {
	now := st.now()
	o, err := st.grant(ctx, c, now, ttl, refresh)
	if err != nil {
		return nil, 0, err
	}
	defer func() { st.release(c, o, err) }()
	return st.write(ctx, func(serializable bool) (*Event, int64, error) {
		s, err := st.read(ctx, c, p, serializable)
		if err != nil {
			return nil, 0, err
		}
		n, err := s.walk(p)
		var verr *Error
		if err != nil && (!errors.As(err, &verr) || verr.ErrorCode != ecodeKeyNotFound) {
			return nil, 0, err
		}
		val := value
		if refresh {
			if err != nil {
				return nil, 0, err
			}
			val = n.value
		}
		if p == "/" {
			return nil, 0, newError(ecodeRootROnly, "/", s.rev)
		}
		missing, err := s.parentDirs(p)
		if err != nil {
			return nil, 0, err
		}
		if n != nil && n.dir {
			return nil, 0, newError(ecodeNotFile, p, s.rev)
		}
		created := missing
		if dir {
			created = append(created, p)
		}
		if err := st.purgeOrphans(ctx, c, s, created, now); err != nil {
			return nil, 0, err
		}
		var ops []clientv3.Op
		if dir {
			if n != nil {
				ops = append(ops, clientv3.OpDelete(fileKey(p)))
			}
			ops = append(ops, clientv3.OpPut(dirKey(p), encodeValue(0, o.expire, ""), putOpts(o)...))
		} else {
			ops = append(ops, clientv3.OpPut(fileKey(p), encodeValue(0, o.expire, val), putOpts(o)...))
		}
		ops = append(ops, dirOps(missing)...)
		rev, err := st.commit(ctx, c, s, []string{fileKey(p), dirKey(p)}, act{Action: actionSet, Path: p, Time: now.UnixNano(), Refresh: refresh}, ops...)
		if err != nil {
			return nil, 0, err
		}
		st.retire(ctx, c, n, o.lease)
		ev := &Event{Action: actionSet, Node: newNode(p, dir, val, rev, rev, o, now)}
		if n != nil {
			ev.PrevNode = n.repr(now)
		}
		return ev, rev, nil
	})
}

// Create is v2store.Create: a node at p that must not exist; unique
// creates an in-order key under p named by its index, zero-padded to 20
// digits (Cairn: the revision the create expects; see the package doc).
func (st *store) Create(ctx context.Context, c Client, p string, dir bool, value string, unique bool, ttl *uint64) (ev *Event, rev int64, err error) {
	now := st.now()
	o, err := st.grant(ctx, c, now, ttl, false)
	if err != nil {
		return nil, 0, err
	}
	defer func() { st.release(c, o, err) }()
	name := p
	return st.write(ctx, func(serializable bool) (*Event, int64, error) {
		s, err := st.read(ctx, c, name, serializable)
		if err != nil {
			return nil, 0, err
		}
		if unique {
			want := path.Join(p, fmt.Sprintf("%020d", s.rev+1))
			if want != name {
				name = want
				return nil, 0, errRetry
			}
		}
		if name == "/" {
			return nil, 0, newError(ecodeRootROnly, "/", s.rev)
		}
		missing, err := s.parentDirs(name)
		if err != nil {
			return nil, 0, err
		}
		n, err := s.node(name)
		if err != nil {
			return nil, 0, err
		}
		if n != nil {
			return nil, 0, newError(ecodeNodeExist, name, s.rev)
		}
		created := missing
		if dir {
			created = append(created, name)
		}
		if err := st.purgeOrphans(ctx, c, s, created, now); err != nil {
			return nil, 0, err
		}
		var ops []clientv3.Op
		if dir {
			ops = append(ops, clientv3.OpPut(dirKey(name), encodeValue(0, o.expire, ""), putOpts(o)...))
		} else {
			ops = append(ops, clientv3.OpPut(fileKey(name), encodeValue(0, o.expire, value), putOpts(o)...))
		}
		ops = append(ops, dirOps(missing)...)
		rev, err := st.commit(ctx, c, s, []string{fileKey(name), dirKey(name)}, act{Action: actionCreate, Path: name, Time: now.UnixNano()}, ops...)
		if err != nil {
			return nil, 0, err
		}
		return &Event{Action: actionCreate, Node: newNode(name, dir, value, rev, rev, o, now)}, rev, nil
	})
}

// Update is v2store.Update (prevExist=true): rewrite an existing node.
func (st *store) Update(ctx context.Context, c Client, p string, value string, ttl *uint64, refresh bool) (ev *Event, rev int64, err error) {
	now := st.now()
	o, err := st.grant(ctx, c, now, ttl, refresh)
	if err != nil {
		return nil, 0, err
	}
	defer func() { st.release(c, o, err) }()
	return st.write(ctx, func(serializable bool) (*Event, int64, error) {
		s, n, err := st.readExisting(ctx, c, p, serializable)
		if err != nil {
			return nil, 0, err
		}
		if n.dir && len(value) != 0 {
			return nil, 0, newError(ecodeNotFile, p, s.rev)
		}
		if n.dir {
			// etcd 3.5's v2store.Update fails on any directory (its
			// node.Write refuses one) and answers the wrapped error as
			// a 300 with index 0, the "/1" of its namespace in the cause.
			return nil, 0, newError(ecodeRaftInternal, "nodePath /1"+p+" : Not a file ()", 0)
		}
		val := value
		if refresh {
			val = n.value
		}
		key := fileKey(p)
		rev, err := st.commit(ctx, c, s, []string{key}, act{Action: actionUpdate, Path: p, Time: now.UnixNano(), Refresh: refresh},
			clientv3.OpPut(key, encodeValue(n.created, o.expire, val), putOpts(o)...))
		if err != nil {
			return nil, 0, err
		}
		st.retire(ctx, c, n, o.lease)
		return &Event{Action: actionUpdate, Node: newNode(p, false, val, n.created, rev, o, now), PrevNode: n.repr(now)}, rev, nil
	})
}

// compareFail is v2store's "Compare failed" cause.
func compareFail(n *inode, prevValue string, prevIndex uint64, rev int64) error {
	indexMatch := prevIndex == 0 || uint64(n.modified) == prevIndex
	valueMatch := prevValue == "" || n.value == prevValue
	var cause string
	switch {
	case indexMatch && valueMatch:
		return nil
	case indexMatch:
		cause = fmt.Sprintf("[%v != %v]", prevValue, n.value)
	case valueMatch:
		cause = fmt.Sprintf("[%v != %v]", prevIndex, n.modified)
	default:
		cause = fmt.Sprintf("[%v != %v] [%v != %v]", prevValue, n.value, prevIndex, n.modified)
	}
	return newError(ecodeTestFailed, cause, rev)
}

// CompareAndSwap is v2store.CompareAndSwap: rewrite the file at p if its
// value and modified index match the ones given (empty, 0: any).
func (st *store) CompareAndSwap(ctx context.Context, c Client, p, prevValue string, prevIndex uint64, value string, ttl *uint64, refresh bool) (ev *Event, rev int64, err error) {
	now := st.now()
	o, err := st.grant(ctx, c, now, ttl, refresh)
	if err != nil {
		return nil, 0, err
	}
	defer func() { st.release(c, o, err) }()
	return st.write(ctx, func(serializable bool) (*Event, int64, error) {
		s, n, err := st.readExisting(ctx, c, p, serializable)
		if err != nil {
			return nil, 0, err
		}
		if n.dir {
			return nil, 0, newError(ecodeNotFile, p, s.rev)
		}
		if err := compareFail(n, prevValue, prevIndex, s.rev); err != nil {
			return nil, 0, err
		}
		val := value
		if refresh {
			val = n.value
		}
		rev, err := st.commit(ctx, c, s, []string{fileKey(p)}, act{Action: actionCompareAndSwap, Path: p, Time: now.UnixNano(), Refresh: refresh},
			clientv3.OpPut(fileKey(p), encodeValue(n.created, o.expire, val), putOpts(o)...))
		if err != nil {
			return nil, 0, err
		}
		st.retire(ctx, c, n, o.lease)
		return &Event{Action: actionCompareAndSwap, Node: newNode(p, false, val, n.created, rev, o, now), PrevNode: n.repr(now)}, rev, nil
	})
}

// Delete is v2store.Delete: a file, an empty directory (dir), or a
// directory and everything under it (recursive).
func (st *store) Delete(ctx context.Context, c Client, p string, dir, recursive bool) (*Event, int64, error) {
	now := st.now()
	if recursive {
		dir = true
	}
	return st.write(ctx, func(serializable bool) (*Event, int64, error) {
		s, n, err := st.readExisting(ctx, c, p, serializable)
		if err != nil {
			return nil, 0, err
		}
		key := fileKey(p)
		var ops []clientv3.Op
		if n.dir {
			key = dirKey(p)
			if !dir {
				return nil, 0, newError(ecodeNotFile, p, s.rev)
			}
			// One delete per level below p that holds nodes.
			for d := depth(p) + 1; d <= maxDepth; d++ {
				g, err := c.Get(ctx, depthPrefix(p, d), clientv3.WithPrefix(), clientv3.WithRev(s.rev), clientv3.WithCountOnly())
				if err != nil {
					return nil, 0, err
				}
				if g.Count == 0 {
					break
				}
				if !recursive {
					return nil, 0, newError(ecodeDirNotEmpty, p, s.rev)
				}
				ops = append(ops, clientv3.OpDelete(depthPrefix(p, d), clientv3.WithPrefix()))
			}
		}
		ops = append([]clientv3.Op{clientv3.OpDelete(key)}, ops...)
		rev, err := st.commit(ctx, c, s, []string{key}, act{Action: actionDelete, Path: p, Time: now.UnixNano()}, ops...)
		if err != nil {
			return nil, 0, err
		}
		st.retire(ctx, c, n, 0)
		return &Event{Action: actionDelete, Node: &Node{Key: p, Dir: n.dir, ModifiedIndex: uint64(rev), CreatedIndex: uint64(n.created)}, PrevNode: n.repr(now)}, rev, nil
	})
}

// CompareAndDelete is v2store.CompareAndDelete: delete the file at p if
// its value and modified index match.
func (st *store) CompareAndDelete(ctx context.Context, c Client, p, prevValue string, prevIndex uint64) (*Event, int64, error) {
	now := st.now()
	return st.write(ctx, func(serializable bool) (*Event, int64, error) {
		s, err := st.read(ctx, c, p, serializable)
		if err != nil {
			return nil, 0, err
		}
		n, err := s.walk(p)
		if err != nil {
			return nil, 0, err
		}
		if n.dir {
			cause := p
			if p == "/" {
				cause = "" // etcd trims its "/1" namespace from the cause
			}
			return nil, 0, newError(ecodeNotFile, cause, s.rev)
		}
		if err := compareFail(n, prevValue, prevIndex, s.rev); err != nil {
			return nil, 0, err
		}
		rev, err := st.commit(ctx, c, s, []string{fileKey(p)}, act{Action: actionCompareAndDelete, Path: p, Time: now.UnixNano()}, clientv3.OpDelete(fileKey(p)))
		if err != nil {
			return nil, 0, err
		}
		st.retire(ctx, c, n, 0)
		return &Event{Action: actionCompareAndDelete, Node: &Node{Key: p, ModifiedIndex: uint64(rev), CreatedIndex: uint64(n.created)}, PrevNode: n.repr(now)}, rev, nil
	})
}

// v3Error is the v2 error for a failed v3 call: etcd answers errors that
// are not the store's as 300 Raft Internal Error, with the error as cause.
func v3Error(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrPermissionDenied),
		errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrAuthOldRevision):
		return newError(ecodeUnauthorized, "Insufficient credentials", 0)
	}
	return newError(ecodeRaftInternal, err.Error(), 0)
}
