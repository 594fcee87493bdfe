package backup

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/mvcc"
)

// StorageVersion is the etcd storage version a backup declares (meta
// "storageVersion"): etcd 3.6's schema, which etcd 3.6 and 3.7 both restore.
const StorageVersion = "3.6.0"

// ClusterVersion is what a backup stores as the cluster version.
const ClusterVersion = "3.6.0"

// Source is the state a backup is written from.
type Source struct {
	// State is a consistent view of the member's state: a Pebble snapshot.
	State pebble.Reader
	// AppliedIndex and Term are the Raft index the state is at and its term
	// (etcd's consistent index and term).
	AppliedIndex, Term uint64
	// Members is the membership to record; learners go into the conf
	// state's learners.
	Members []membership.Member
}

// Info describes a written backup.
type Info struct {
	// Size is the file's size in bytes, the SHA-256 trailer included.
	Size int64
	// Revision is the store revision of the state; Keys the number of
	// versions written (tombstones included).
	Revision int64
	Keys     int64
}

// bolt commits every commitEvery puts, so a transaction's dirty pages stay
// bounded whatever the size of the store.
const commitEvery = 10000

// The buckets of etcd's schema (server/storage/schema/bucket.go), created
// in this order so the file lists them as etcd's do.
var (
	bucketKey            = []byte("key")
	bucketMeta           = []byte("meta")
	bucketLease          = []byte("lease")
	bucketAlarm          = []byte("alarm")
	bucketCluster        = []byte("cluster")
	bucketMembers        = []byte("members")
	bucketMembersRemoved = []byte("members_removed")
	bucketAuth           = []byte("auth")
	bucketAuthUsers      = []byte("authUsers")
	bucketAuthRoles      = []byte("authRoles")
)

// Write writes a backup of src to path (which must not exist) in etcd's
// snapshot format: a bbolt file with etcd 3.6's buckets and encodings,
// then the SHA-256 of its bytes. Versions are sorted into revision order
// through a scratch Pebble store under tmpDir (removed before Write
// returns), so memory stays bounded: a Pebble memtable and one bbolt
// transaction of at most commitEvery puts. On error path is removed.
func Write(path, tmpDir string, src Source) (info Info, err error) {
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if _, err := os.Lstat(path); err == nil {
		return Info{}, fmt.Errorf("backup: %s already exists", path)
	}
	meta, err := mvcc.ReadExportMeta(src.State)
	if err != nil {
		return Info{}, fmt.Errorf("backup: read revisions: %w", err)
	}
	info.Revision = meta.Rev

	sorted, err := sortVersions(tmpDir, src.State, meta.Compacted)
	if err != nil {
		return Info{}, err
	}
	defer sorted.close()

	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: false})
	if err != nil {
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = db.Close()
		}
	}()
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKey, bucketMeta, bucketLease, bucketAlarm, bucketCluster,
			bucketMembers, bucketMembersRemoved, bucketAuth, bucketAuthUsers, bucketAuthRoles} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return Info{}, fmt.Errorf("backup: create buckets: %w", err)
	}
	if info.Keys, err = sorted.copyTo(db); err != nil {
		return Info{}, err
	}
	leases, err := lease.Stored(src.State)
	if err != nil {
		return Info{}, fmt.Errorf("backup: read leases: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return writeSmallBuckets(tx, src, meta, leases) }); err != nil {
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	closed = true
	if err := db.Close(); err != nil {
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	size, err := appendSHA256(path)
	if err != nil {
		return Info{}, fmt.Errorf("backup: %w", err)
	}
	info.Size = size
	return info, nil
}

// revKey is etcd's key bucket key (mvcc/revision.go): main revision and
// sub-revision, 8 bytes big-endian each, joined by '_', and a trailing 't'
// for a tombstone.
func revKey(main, sub int64, tombstone bool) []byte {
	b := make([]byte, 0, 18)
	b = binary.BigEndian.AppendUint64(b, uint64(main))
	b = append(b, '_')
	b = binary.BigEndian.AppendUint64(b, uint64(sub))
	if tombstone {
		b = append(b, 't')
	}
	return b
}

// sortedVersions holds every version, keyed by revKey, in a scratch Pebble.
type sortedVersions struct {
	db  *pebble.DB
	dir string
}

func sortVersions(tmpDir string, state pebble.Reader, compacted int64) (*sortedVersions, error) {
	dir, err := os.MkdirTemp(tmpDir, "backup-sort-")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	db, err := pebble.Open(dir, &pebble.Options{DisableWAL: true, FS: vfs.Default})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("backup: scratch store: %w", err)
	}
	s := &sortedVersions{db: db, dir: dir}
	b := db.NewBatch()
	n := 0
	err = mvcc.ForEachVersion(state, compacted, func(v mvcc.Version) error {
		val := v.KV
		if v.Tombstone {
			// etcd stores a tombstone's KeyValue with only the key set.
			val = &mvccpb.KeyValue{Key: v.KV.Key}
		}
		data, err := proto.Marshal(val)
		if err != nil {
			return err
		}
		if err := b.Set(revKey(v.KV.ModRevision, v.Sub, v.Tombstone), data, nil); err != nil {
			return err
		}
		if n++; n%commitEvery == 0 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = db.NewBatch()
		}
		return nil
	})
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	b.Close()
	if err != nil {
		s.close()
		return nil, fmt.Errorf("backup: sort versions: %w", err)
	}
	return s, nil
}

func (s *sortedVersions) close() {
	_ = s.db.Close()
	_ = os.RemoveAll(s.dir)
}

// copyTo fills db's key bucket in revision order.
func (s *sortedVersions) copyTo(db *bolt.DB) (int64, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var n int64
	ok := it.First()
	for ok {
		err := db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketKey)
			b.FillPercent = 0.9 // as etcd's sequential puts
			for i := 0; ok && i < commitEvery; i++ {
				if err := b.Put(append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)); err != nil {
					return err
				}
				n++
				ok = it.Next()
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("backup: write key bucket: %w", err)
		}
	}
	return n, it.Error()
}

// writeSmallBuckets writes meta, lease, cluster, members and auth as etcd
// 3.6 lays them out (server/storage/schema).
func writeSmallBuckets(tx *bolt.Tx, src Source, meta mvcc.ExportMeta, leases []lease.Lease) error {
	m := tx.Bucket(bucketMeta)
	put := func(b *bolt.Bucket, k string, v []byte) error { return b.Put([]byte(k), v) }
	if err := put(m, "consistent_index", binary.BigEndian.AppendUint64(nil, src.AppliedIndex)); err != nil {
		return err
	}
	if err := put(m, "term", binary.BigEndian.AppendUint64(nil, src.Term)); err != nil {
		return err
	}
	cs := &raftpb.ConfState{}
	for _, mem := range src.Members {
		if mem.IsLearner {
			cs.Learners = append(cs.Learners, mem.ID)
		} else {
			cs.Voters = append(cs.Voters, mem.ID)
		}
	}
	csJSON, err := json.Marshal(confStateJSON{Voters: cs.Voters, Learners: cs.Learners})
	if err != nil {
		return err
	}
	if err := put(m, "confState", csJSON); err != nil {
		return err
	}
	if err := put(m, "storageVersion", []byte(StorageVersion)); err != nil {
		return err
	}
	if meta.Compacted > 0 {
		rk := revKey(meta.Compacted, 0, false)
		if err := put(m, "scheduledCompactRev", rk); err != nil {
			return err
		}
		if err := put(m, "finishedCompactRev", rk); err != nil {
			return err
		}
	}

	lb := tx.Bucket(bucketLease)
	for _, l := range leases {
		if err := lb.Put(binary.BigEndian.AppendUint64(nil, uint64(l.ID)), leaseRecord(l)); err != nil {
			return err
		}
	}

	if err := put(tx.Bucket(bucketCluster), "clusterVersion", []byte(ClusterVersion)); err != nil {
		return err
	}
	mb := tx.Bucket(bucketMembers)
	for _, mem := range src.Members {
		v, err := json.Marshal(memberJSON{ID: mem.ID, PeerURLs: mem.PeerURLs, IsLearner: mem.IsLearner, Name: mem.Name, ClientURLs: mem.ClientURLs})
		if err != nil {
			return err
		}
		if err := mb.Put([]byte(strconv.FormatUint(mem.ID, 16)), v); err != nil {
			return err
		}
	}

	return writeAuth(tx, src.State)
}

// writeAuth writes the auth state as etcd's schema does: auth
// "authEnabled" (one byte), "authRevision" (big-endian), authUsers and
// authRoles by name (authpb protobufs).
func writeAuth(tx *bolt.Tx, state pebble.Reader) error {
	st, err := auth.Export(state)
	if err != nil {
		return err
	}
	ab := tx.Bucket(bucketAuth)
	enabled := byte(0)
	if st.Enabled {
		enabled = 1
	}
	if err := ab.Put([]byte("authEnabled"), []byte{enabled}); err != nil {
		return err
	}
	// etcd stores the auth revision in a 17-byte slice, the first 8 bytes
	// big-endian (schema.UnsafeSaveAuthRevision).
	authRev := make([]byte, 17)
	binary.BigEndian.PutUint64(authRev, st.Revision)
	if err := ab.Put([]byte("authRevision"), authRev); err != nil {
		return err
	}
	for _, u := range st.Users {
		v, err := proto.Marshal(u)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketAuthUsers).Put(u.Name, v); err != nil {
			return err
		}
	}
	for _, r := range st.Roles {
		v, err := proto.Marshal(r)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketAuthRoles).Put(r.Name, v); err != nil {
			return err
		}
	}
	return nil
}

// confStateJSON is raftpb.ConfState as etcd stores it in meta "confState"
// (encoding/json of the generated struct).
type confStateJSON struct {
	Voters         []uint64 `json:"voters,omitempty"`
	Learners       []uint64 `json:"learners,omitempty"`
	VotersOutgoing []uint64 `json:"voters_outgoing,omitempty"`
	LearnersNext   []uint64 `json:"learners_next,omitempty"`
	AutoLeave      bool     `json:"auto_leave,omitempty"`
}

// memberJSON is etcd's membership.Member as its members bucket stores it.
type memberJSON struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	IsLearner  bool     `json:"isLearner,omitempty"`
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
}

// leaseRecord is etcd's leasepb.Lease (ID = 1, TTL = 2, RemainingTTL = 3,
// int64 varints), encoded by hand: its Go type lives in etcd's server
// module, which Cairn does not import.
func leaseRecord(l lease.Lease) []byte {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		v   int64
	}{{1, l.ID}, {2, l.TTL}, {3, l.RemainingTTL}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f.v))
		}
	}
	return b
}

// appendSHA256 appends the SHA-256 of the file's bytes to it, as etcd's
// Maintenance.Snapshot sends after the file, and returns the new size.
func appendSHA256(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, err
	}
	if _, err := f.Write(h.Sum(nil)); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return n + sha256.Size, nil
}
