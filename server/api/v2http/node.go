package v2http

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Prefix is where v2 keys live in the v3 keyspace. It does not start with
// "/", so the ranges v3 users usually read ("/", "/registry/") never hold
// them; only a read of the whole keyspace does. See the package doc for the
// layout under it.
const Prefix = "_cairn/v2/"

const (
	nodePrefix = Prefix + "k/"
	actKey     = Prefix + "act"
	// maxDepth bounds a path's number of components: the depth is three
	// digits in the layout.
	maxDepth = 999
)

// depth is the number of components of a clean path ("/" is 0).
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// depthPrefix is the v3 prefix of the nodes d levels deep whose paths
// start with p+"/" (p clean; "/" for the root).
func depthPrefix(p string, d int) string {
	if p == "/" {
		p = ""
	}
	return fmt.Sprintf("%s%03d%s/", nodePrefix, d, p)
}

// fileKey and dirKey are the v3 keys of the file and of the directory at
// clean path p: a path is one or the other, never both.
func fileKey(p string) string { return fmt.Sprintf("%s%03d%s", nodePrefix, depth(p), p) }
func dirKey(p string) string  { return fileKey(p) + "/" }

// pathOf is the v2 path of a v3 node key, and whether it is a directory.
func pathOf(key []byte) (p string, dir bool, ok bool) {
	s, found := strings.CutPrefix(string(key), nodePrefix)
	if !found || len(s) < 4 {
		return "", false, false
	}
	s = s[3:]
	if strings.HasSuffix(s, "/") {
		return strings.TrimSuffix(s, "/"), true, true
	}
	return s, false, true
}

// A value of a node key is: byte 1 (the format), uvarint created index (0:
// the version's own mod revision, so a node created by a txn need not know
// its revision in advance), varint expiration in Unix nanoseconds (0: no
// TTL), then the file's value.
const valueFormat = 1

func encodeValue(created int64, expire time.Time, value string) string {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(value))
	b = append(b, valueFormat)
	b = binary.AppendUvarint(b, uint64(created))
	var ns int64
	if !expire.IsZero() {
		ns = expire.UnixNano()
	}
	b = binary.AppendVarint(b, ns)
	return string(append(b, value...))
}

var errBadValue = errors.New("v2http: malformed v2 node value")

// inode is a node read from the v3 store.
type inode struct {
	path     string
	dir      bool
	value    string
	created  int64
	modified int64
	expire   time.Time // zero: permanent
	lease    int64
}

func decodeNode(kv *mvccpb.KeyValue) (*inode, error) {
	p, dir, ok := pathOf(kv.Key)
	if !ok {
		return nil, errBadValue
	}
	b := kv.Value
	if len(b) < 1 || b[0] != valueFormat {
		return nil, errBadValue
	}
	b = b[1:]
	created, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errBadValue
	}
	b = b[n:]
	ns, n := binary.Varint(b)
	if n <= 0 {
		return nil, errBadValue
	}
	b = b[n:]
	in := &inode{path: p, dir: dir, created: int64(created), modified: kv.ModRevision, lease: kv.Lease}
	if in.created == 0 {
		in.created = kv.ModRevision
	}
	if ns != 0 {
		in.expire = time.Unix(0, ns)
	}
	if !dir {
		in.value = string(b)
	}
	return in, nil
}

// Node is a node as the v2 API shows it, etcd's v2store.NodeExtern: the
// same fields, names, omissions and order.
type Node struct {
	Key           string     `json:"key,omitempty"`
	Value         *string    `json:"value,omitempty"`
	Dir           bool       `json:"dir,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
	Nodes         []*Node    `json:"nodes,omitempty"`
	ModifiedIndex uint64     `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex,omitempty"`
}

// Event is a v2 response or watch event, etcd's v2store.Event as v2http
// writes it: a refresh is not marked (etcd's Event.Clone drops the flag
// before the response is written), and notifies no watcher.
type Event struct {
	Action   string `json:"action"`
	Node     *Node  `json:"node,omitempty"`
	PrevNode *Node  `json:"prevNode,omitempty"`
}

// The v2 actions, as v2store.
const (
	actionGet              = "get"
	actionCreate           = "create"
	actionSet              = "set"
	actionUpdate           = "update"
	actionDelete           = "delete"
	actionCompareAndSwap   = "compareAndSwap"
	actionCompareAndDelete = "compareAndDelete"
	actionExpire           = "expire"
	// actionPurge is Cairn's: the removal of nodes under an expired
	// directory, which no watcher sees.
	actionPurge = "purge"
)

// expirationAndTTL is the node's expiration and remaining TTL at now, as
// v2store: ttl = ceil((expire - now) / 1s).
func expirationAndTTL(expire, now time.Time) (*time.Time, int64) {
	if expire.IsZero() {
		return nil, 0
	}
	d := expire.Sub(now)
	ttl := d / time.Second
	if d%time.Second > 0 {
		ttl++
	}
	t := expire.UTC()
	return &t, int64(ttl)
}

// repr is the node without children, as v2store's node.Repr(false, ...).
func (n *inode) repr(now time.Time) *Node {
	out := &Node{Key: n.path, Dir: n.dir, ModifiedIndex: uint64(n.modified), CreatedIndex: uint64(n.created)}
	if !n.dir {
		v := n.value
		out.Value = &v
	}
	out.Expiration, out.TTL = expirationAndTTL(n.expire, now)
	return out
}

// isHiddenName reports whether the last component of p starts with "_":
// listings skip such nodes, as v2store's IsHidden.
func isHiddenName(p string) bool {
	_, name := path.Split(p)
	return strings.HasPrefix(name, "_")
}

// sortNodes sorts by key, as v2store.NodeExterns.
func sortNodes(ns []*Node) {
	sort.Slice(ns, func(i, j int) bool { return ns[i].Key < ns[j].Key })
}
