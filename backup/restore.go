package backup

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/auth"
	"github.com/cairn-kv/cairn/lease"
	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/storage"
)

// RestoreConfig is what `cairn snapshot restore` takes, as etcdutl's
// snapshot restore.
type RestoreConfig struct {
	// SnapshotPath is the snapshot file: saved from etcd or Cairn, or (with
	// SkipHashCheck) an etcd member's db file.
	SnapshotPath string
	// DataDir is the Cairn data dir to create; it must not exist or be empty.
	DataDir string
	// Name is the member's name; InitialCluster maps every member's name to
	// its peer URLs; InitialClusterToken seeds the IDs (etcd's flags).
	Name                string
	InitialCluster      map[string][]string
	InitialClusterToken string
	// SkipHashCheck accepts a file without (or with a wrong) SHA-256 trailer.
	SkipHashCheck bool
	// RevisionBump raises the restored revision by this much and, with
	// MarkCompacted, compacts at the raised revision, so watchers and
	// clients that cached revisions cannot miss a change (etcdutl's
	// --bump-revision and --mark-compacted: both or neither).
	RevisionBump  uint64
	MarkCompacted bool
	Logger        *slog.Logger
}

// RestoreInfo says what a restore wrote.
type RestoreInfo struct {
	Revision, Compacted int64
	Versions, Leases    int
	ClusterID, MemberID uint64
}

// maxStorageMinor is the newest etcd 3.x storage version restore reads.
const maxStorageMinor = 7

// Restore builds a new Cairn data dir from a snapshot file: every version
// the file keeps (so reads at past revisions down to its compaction work),
// its leases with their TTLs and the keys attached to them, and a fresh
// membership from the configuration, as etcdutl snapshot restore does.
// Nothing is written for a file that fails its checks; a failure midway
// removes the data dir it created.
func Restore(cfg RestoreConfig) (info RestoreInfo, err error) {
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	if cfg.RevisionBump > 0 != cfg.MarkCompacted {
		return info, errors.New("--mark-compacted required if --bump-revision > 0")
	}
	if _, ok := cfg.InitialCluster[cfg.Name]; !ok {
		return info, fmt.Errorf("--initial-cluster has no member named %q", cfg.Name)
	}
	if err := checkFile(cfg.SnapshotPath, cfg.SkipHashCheck); err != nil {
		return info, err
	}
	if entries, err := os.ReadDir(cfg.DataDir); err == nil && len(entries) > 0 {
		return info, fmt.Errorf("data dir %s is not empty: restore only into a new directory", cfg.DataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return info, err
	}
	// A live etcd holds an exclusive lock on its db file: wait a moment,
	// then refuse rather than read a file that is being written.
	src, err := bolt.Open(cfg.SnapshotPath, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return info, fmt.Errorf("%s is locked: is the etcd that owns it still running? Stop it first", cfg.SnapshotPath)
	}
	if err != nil {
		return info, fmt.Errorf("open snapshot: %w", err)
	}
	defer src.Close()
	var scheduled, finished int64
	if err := src.View(func(tx *bolt.Tx) error {
		var err error
		scheduled, finished, err = readSnapshotMeta(tx)
		return err
	}); err != nil {
		return info, err
	}

	// The data dir is built in a hidden sibling and renamed into place
	// only once complete and synced: a crash midway leaves DataDir as it
	// was (absent or empty) and a ".NAME.restoring-*" dir to remove, never
	// a half-restored data dir that a member would start from.
	parent, base := filepath.Split(filepath.Clean(cfg.DataDir))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return info, err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".restoring-")
	if err != nil {
		return info, err
	}
	eng, err := storage.Open(tmp, storage.Options{BulkLoad: true})
	if err != nil {
		_ = os.RemoveAll(tmp)
		return info, err
	}
	closed := false
	defer func() {
		if !closed {
			_ = eng.Close()
		}
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()

	im := mvcc.NewImporter(eng.DB)
	compacted := scheduled
	err = src.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket(bucketKey)
		if kb == nil {
			return errors.New("snapshot has no key bucket")
		}
		return kb.ForEach(func(k, v []byte) error {
			main, tombstone, err := parseRevKey(k)
			if err != nil {
				return err
			}
			if len(v) == 0 {
				return nil // a revision bump marker (etcdutl --bump-revision)
			}
			kv := &mvccpb.KeyValue{}
			if err := proto.Unmarshal(v, kv); err != nil {
				return fmt.Errorf("revision %d: %w", main, err)
			}
			kv.ModRevision = main
			sub := int64(binary.BigEndian.Uint64(k[9:17]))
			info.Versions++
			// Events above the finished compaction: the compactor
			// finds what the scheduled one removes through them.
			return im.Add(kv, sub, tombstone, finished)
		})
	})
	if err != nil {
		return info, fmt.Errorf("restore versions: %w", err)
	}
	rev := max(im.Rev(), scheduled, 1)
	if cfg.RevisionBump > 0 {
		rev += int64(cfg.RevisionBump)
		lg.Info("bumping latest revision", "latest-revision", rev-int64(cfg.RevisionBump), "bump-amount", cfg.RevisionBump, "new-latest-revision", rev)
		compacted, finished = rev, rev
		lg.Info("marking revision compacted", "revision", rev)
	}
	if err := im.Finish(rev, compacted, finished); err != nil {
		return info, err
	}
	info.Revision, info.Compacted = rev, compacted
	// One compaction of all the loaded tables into sorted runs (automatic
	// ones are off while loading: they rewrote the data level by level).
	if err := eng.CompactAll(context.Background()); err != nil {
		return info, err
	}

	b := eng.DB.NewBatch()
	defer func() { b.Close() }()
	leases := map[int64]bool{}
	err = src.View(func(tx *bolt.Tx) error {
		lb := tx.Bucket(bucketLease)
		if lb == nil {
			return nil
		}
		return lb.ForEach(func(k, v []byte) error {
			l, err := parseLeaseRecord(v)
			if err != nil {
				return fmt.Errorf("lease %x: %w", k, err)
			}
			leases[l.ID] = true
			return lease.Import(b, l)
		})
	})
	if err != nil {
		return info, fmt.Errorf("restore leases: %w", err)
	}
	info.Leases = len(leases)
	if err := mvcc.ForEachLive(eng.DB, func(key []byte, id int64) error {
		if id == lease.NoLease || !leases[id] {
			return nil
		}
		if err := lease.ImportAttachment(b, id, key); err != nil {
			return err
		}
		// Commit every so many, so the batch stays bounded whatever the
		// number of leased keys.
		if b.Count() >= commitEvery {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = eng.DB.NewBatch()
		}
		return nil
	}); err != nil {
		return info, fmt.Errorf("restore lease attachments: %w", err)
	}
	if err := src.View(func(tx *bolt.Tx) error { return readAuth(tx, b) }); err != nil {
		return info, fmt.Errorf("restore auth: %w", err)
	}
	cluster, err := membership.Bootstrap(cfg.InitialCluster, cfg.InitialClusterToken, cfg.Name)
	if err != nil {
		return info, err
	}
	if err := cluster.Save(b); err != nil {
		return info, err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return info, err
	}
	closed = true
	if err := eng.Close(); err != nil {
		return info, err
	}
	if err := publishDir(tmp, cfg.DataDir); err != nil {
		return info, err
	}
	info.ClusterID, info.MemberID = cluster.ID, cluster.LocalID
	lg.Info("restored snapshot", "path", cfg.SnapshotPath, "data-dir", cfg.DataDir, "revision", rev,
		"compacted", compacted, "versions", info.Versions, "leases", info.Leases,
		"cluster-id", fmt.Sprintf("%x", cluster.ID), "member-id", fmt.Sprintf("%x", cluster.LocalID))
	return info, nil
}

// readSnapshotMeta reads the compaction revisions and refuses a storage
// version newer than Cairn reads.
func readSnapshotMeta(tx *bolt.Tx) (scheduled, finished int64, err error) {
	mb := tx.Bucket(bucketMeta)
	if mb == nil {
		return 0, 0, errors.New("snapshot has no meta bucket")
	}
	if v := string(mb.Get([]byte("storageVersion"))); v != "" {
		major, minor, ok := parseMajorMinor(v)
		if !ok {
			return 0, 0, fmt.Errorf("snapshot storage version %q is not a version", v)
		}
		if major > 3 || (major == 3 && minor > maxStorageMinor) {
			return 0, 0, fmt.Errorf("snapshot storage version %s is newer than this Cairn reads (up to 3.%d)", v, maxStorageMinor)
		}
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"scheduledCompactRev", &scheduled}, {"finishedCompactRev", &finished}} {
		if v := mb.Get([]byte(f.name)); v != nil {
			if len(v) != 17 || v[8] != '_' {
				return 0, 0, fmt.Errorf("snapshot meta %s: malformed revision %x", f.name, v)
			}
			*f.dst = int64(binary.BigEndian.Uint64(v))
		}
	}
	return scheduled, min(finished, scheduled), nil
}

func parseMajorMinor(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

// parseLeaseRecord decodes etcd's leasepb.Lease (ID = 1, TTL = 2,
// RemainingTTL = 3), skipping fields it does not know.
func parseLeaseRecord(b []byte) (lease.Lease, error) {
	var l lease.Lease
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return l, protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.VarintType && num >= 1 && num <= 3 {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return l, protowire.ParseError(m)
			}
			b = b[m:]
			switch num {
			case 1:
				l.ID = int64(v)
			case 2:
				l.TTL = int64(v)
			case 3:
				l.RemainingTTL = int64(v)
			}
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return l, protowire.ParseError(m)
		}
		b = b[m:]
	}
	if l.ID == 0 {
		return l, errors.New("lease record without an ID")
	}
	return l, nil
}

// publishDir renames the finished dir tmp to dataDir (absent, or an empty
// dir, which it replaces) and syncs the parent, so the rename is durable.
func publishDir(tmp, dataDir string) error {
	if err := os.Remove(dataDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(filepath.Clean(dataDir)))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readAuth imports etcd's auth, authUsers and authRoles buckets into b:
// whether auth is enabled, the auth revision (first 8 bytes, big-endian)
// and every user and role.
func readAuth(tx *bolt.Tx, b *pebble.Batch) error {
	st := &auth.State{Revision: 1}
	if ab := tx.Bucket(bucketAuth); ab != nil {
		st.Enabled = bytes.Equal(ab.Get([]byte("authEnabled")), []byte{1})
		if v := ab.Get([]byte("authRevision")); len(v) >= 8 {
			st.Revision = binary.BigEndian.Uint64(v[:8])
		}
	}
	if ub := tx.Bucket(bucketAuthUsers); ub != nil {
		if err := ub.ForEach(func(k, v []byte) error {
			u := &authpb.User{}
			if err := proto.Unmarshal(v, u); err != nil {
				return fmt.Errorf("user %q: %w", k, err)
			}
			u.Name = bytes.Clone(k)
			st.Users = append(st.Users, u)
			return nil
		}); err != nil {
			return err
		}
	}
	if rb := tx.Bucket(bucketAuthRoles); rb != nil {
		if err := rb.ForEach(func(k, v []byte) error {
			r := &authpb.Role{}
			if err := proto.Unmarshal(v, r); err != nil {
				return fmt.Errorf("role %q: %w", k, err)
			}
			r.Name = bytes.Clone(k)
			st.Roles = append(st.Roles, r)
			return nil
		}); err != nil {
			return err
		}
	}
	return auth.Import(b, st)
}
