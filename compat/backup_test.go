package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	etcdsnap "go.etcd.io/etcd/etcdutl/v3/snapshot"
	etcdembed "go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/backup"
	"github.com/cairn-kv/cairn/compat/internal/cluster"
	cairnembed "github.com/cairn-kv/cairn/embed"
)

// TestSnapshotIntoEtcd is the exit path: a backup saved from Cairn the way
// etcdctl snapshot save does (clientv3/snapshot) reads the same in
// etcdutl's status and in Cairn's, and etcdutl snapshot restore plus a
// real etcd 3.7.4 serve every key with the same value, revisions, version
// and lease, at the current revision and at every revision kept since the
// compaction, and refuse the compacted ones alike.
func TestSnapshotIntoEtcd(t *testing.T) {
	eps, _ := cluster.StartCairn(t)
	cli := newClient(t, eps)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := backupWorkload(ctx, t, cli)

	path := filepath.Join(t.TempDir(), "backup.db")
	version, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), clientv3.Config{Endpoints: eps}, path)
	if err != nil {
		t.Fatalf("snapshot save from Cairn: %v", err)
	}
	if version != backup.StorageVersion {
		t.Errorf("snapshot save: version %q, want %q", version, backup.StorageVersion)
	}
	if rev := compareStatus(t, path); rev != h.rev {
		t.Errorf("etcdutl snapshot status: revision %d, want %d", rev, h.rev)
	}

	ecli := newClient(t, []string{restoreIntoEtcd(t, path)})
	compareRestored(ctx, t, cli, ecli, h)
}

// TestSnapshotFromEtcd is the way in: a backup saved from etcd 3.7.4,
// restored by cairn snapshot restore, serves on Cairn what etcd served;
// so does an etcd member's db file (cairn migrate), refused while the etcd
// that owns it runs.
func TestSnapshotFromEtcd(t *testing.T) {
	eps, stopEtcd := cluster.StartEtcd(t)
	cli := newClient(t, eps)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := backupWorkload(ctx, t, cli)

	path := filepath.Join(t.TempDir(), "etcd.db")
	if _, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), clientv3.Config{Endpoints: eps}, path); err != nil {
		t.Fatalf("snapshot save from etcd: %v", err)
	}
	compareStatus(t, path)
	ccli := newClient(t, []string{restoreIntoCairn(t, path, false)})
	compareRestored(ctx, t, cli, ccli, h)

	// etcd's data dir: its db file, locked while etcd runs.
	dataDir := cluster.EtcdDataDir(eps[0])
	if dataDir == "" {
		t.Fatal("no data dir known for etcd at", eps[0])
	}
	db := filepath.Join(dataDir, "member", "snap", "db")
	_, err := backup.Restore(backup.RestoreConfig{SnapshotPath: db, DataDir: filepath.Join(t.TempDir(), "x"), Name: "x",
		InitialCluster: map[string][]string{"x": {"http://127.0.0.1:1"}}, SkipHashCheck: true, Logger: discard()})
	if err == nil || !strings.Contains(err.Error(), "is locked") {
		t.Errorf("restore from a running etcd's db: %v, want a lock error", err)
	}
	stopEtcd()
	mcli := newClient(t, []string{restoreIntoCairn(t, db, true)})
	// The live db holds the same state; its compaction may be unfinished,
	// which reads cannot tell.
	compareRestored(ctx, t, ccli, mcli, h)
}

// compareStatus checks that cairn snapshot status reads a snapshot file as
// etcdutl snapshot status does; it returns the revision.
func compareStatus(t *testing.T, path string) int64 {
	t.Helper()
	want, err := etcdsnap.NewV3(zap.NewNop()).Status(path)
	if err != nil {
		t.Fatalf("etcdutl snapshot status: %v", err)
	}
	got, err := backup.ReadStatus(path)
	if err != nil {
		t.Fatalf("cairn snapshot status: %v", err)
	}
	if got != (backup.Status{Hash: want.Hash, Revision: want.Revision, TotalKey: want.TotalKey, TotalSize: want.TotalSize, Version: want.Version}) {
		t.Errorf("snapshot status of %s: Cairn %+v, etcdutl %+v", path, got, want)
	}
	return want.Revision
}

// history is what backupWorkload wrote.
type history struct {
	compactRev, rev int64
	lease           clientv3.LeaseID
}

// backupWorkload writes a history with a lease, deletes, a txn, a
// compaction and writes after it.
func backupWorkload(ctx context.Context, t *testing.T, cli *clientv3.Client) history {
	t.Helper()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := cli.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	must(cli.Put(ctx, "a", "1"))
	must(cli.Put(ctx, "b", "2", clientv3.WithLease(l.ID)))
	must(cli.Put(ctx, "a", "3"))
	must(cli.Delete(ctx, "b"))
	must(cli.Put(ctx, "c", string([]byte{0, 1, 0xff})))
	must(cli.Txn(ctx).Then(clientv3.OpPut("d", "4"), clientv3.OpPut("e", "5", clientv3.WithLease(l.ID)), clientv3.OpDelete("c")).Commit())
	compactAt, err := cli.Put(ctx, "a", "6")
	if err != nil {
		t.Fatal(err)
	}
	must(cli.Put(ctx, "gone", "x"))
	must(cli.Delete(ctx, "gone"))
	must(cli.Put(ctx, "c", "again"))
	must(cli.Compact(ctx, compactAt.Header.Revision, clientv3.WithCompactPhysical()))
	must(cli.Put(ctx, "f", "7", clientv3.WithLease(l.ID)))
	must(cli.Delete(ctx, "d"))
	for i := range 50 {
		must(cli.Put(ctx, fmt.Sprintf("many/%02d", i), fmt.Sprint(i)))
	}
	last, err := cli.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	return history{compactRev: compactAt.Header.Revision, rev: last.Header.Revision, lease: l.ID}
}

// compareRestored compares a restored server (b) with the original (a):
// every key at every revision from the compaction to the last, reads below
// the compaction, and the lease with its keys.
func compareRestored(ctx context.Context, t *testing.T, a, b *clientv3.Client, h history) {
	t.Helper()
	for r := h.compactRev; r <= h.rev; r++ {
		ag, aerr := a.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithRev(r))
		bg, berr := b.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithRev(r))
		if aerr != nil || berr != nil {
			t.Fatalf("get at revision %d: original %v, restored %v", r, aerr, berr)
		}
		if len(ag.Kvs) != len(bg.Kvs) {
			t.Fatalf("get at revision %d: original %d keys, restored %d", r, len(ag.Kvs), len(bg.Kvs))
		}
		for i := range ag.Kvs {
			if !proto.Equal(ag.Kvs[i], bg.Kvs[i]) {
				t.Errorf("get at revision %d, key %d: original %v, restored %v", r, i, ag.Kvs[i], bg.Kvs[i])
			}
		}
		if bg.Header.Revision != h.rev {
			t.Errorf("restored: header revision %d, want %d", bg.Header.Revision, h.rev)
		}
	}
	for _, c := range []*clientv3.Client{a, b} {
		if _, err := c.Get(ctx, "a", clientv3.WithRev(h.compactRev-1)); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("get below the compaction: %v, want %v", err, rpctypes.ErrCompacted)
		}
	}
	// Watch history from the compacted revision on: the events were restored.
	if wa, wb := watchHistory(ctx, t, a, h.compactRev, h.rev), watchHistory(ctx, t, b, h.compactRev, h.rev); strings.Join(wa, "\n") != strings.Join(wb, "\n") {
		t.Errorf("watch from the compacted revision %d: original\n%s\nrestored\n%s", h.compactRev, strings.Join(wa, "\n"), strings.Join(wb, "\n"))
	}
	ttl, err := b.TimeToLive(ctx, h.lease, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	// etcd lists a lease's keys in map order.
	slices.SortFunc(ttl.Keys, bytes.Compare)
	if ttl.GrantedTTL != 600 || len(ttl.Keys) != 2 || string(ttl.Keys[0]) != "e" || string(ttl.Keys[1]) != "f" {
		t.Errorf("restored: lease %x granted %d s with keys %q; want 600 s with [e f]", h.lease, ttl.GrantedTTL, ttl.Keys)
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// restoreIntoCairn runs Cairn's restore on a snapshot file (skipHash for a
// db file) and starts a Cairn member on the result; it returns its client
// endpoint.
func restoreIntoCairn(t *testing.T, path string, skipHash bool) string {
	t.Helper()
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(backup.RestoreConfig{
		SnapshotPath: path, DataDir: dir, Name: "restored",
		InitialCluster:      map[string][]string{"restored": {peerURL.String()}},
		InitialClusterToken: "restored-token", SkipHashCheck: skipHash, Logger: discard(),
	}); err != nil {
		t.Fatalf("cairn snapshot restore: %v", err)
	}
	srv, err := cairnembed.Start(cairnembed.Config{
		Name: "restored", Dir: dir,
		ListenClientURLs:    []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}},
		ListenPeerURLs:      []url.URL{peerURL},
		InitialCluster:      "restored=" + peerURL.String(),
		InitialClusterToken: "restored-token",
		UnsafeNoFsync:       true, HeartbeatMs: 10, ElectionMs: 100,
		Logger: discard(),
	})
	if err != nil {
		t.Fatalf("start Cairn on the restored data dir: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.ClientEndpoints()[0]
}

// restoreIntoEtcd runs etcdutl's restore on a snapshot file and starts an
// embedded etcd 3.7.4 on the result; it returns its client endpoint.
func restoreIntoEtcd(t *testing.T, path string) string {
	t.Helper()
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	dir := filepath.Join(t.TempDir(), "restored")
	if err := etcdsnap.NewV3(zap.NewNop()).Restore(etcdsnap.RestoreConfig{
		SnapshotPath:        path,
		Name:                "restored",
		OutputDataDir:       dir,
		PeerURLs:            []string{peerURL.String()},
		InitialCluster:      "restored=" + peerURL.String(),
		InitialClusterToken: "restored-token",
	}); err != nil {
		t.Fatalf("etcdutl snapshot restore of Cairn's backup: %v", err)
	}
	cfg := etcdembed.NewConfig()
	cfg.Name = "restored"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = "restored=" + peerURL.String()
	cfg.InitialClusterToken = "restored-token"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(t.TempDir(), "etcd.log")}
	cfg.UnsafeNoFsync = true
	e, err := etcdembed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start etcd on the restored data dir: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("restored etcd failed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("restored etcd not ready after 30 s")
	}
	return clientURL.Host
}

// watchHistory is every event from revision from to revision to, as a
// watcher of all keys sees them.
func watchHistory(ctx context.Context, t *testing.T, c *clientv3.Client, from, to int64) []string {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out []string
	for resp := range c.Watch(wctx, "", clientv3.WithFromKey(), clientv3.WithRev(from)) {
		if err := resp.Err(); err != nil {
			t.Fatalf("watch from %d: %v", from, err)
		}
		for _, ev := range resp.Events {
			out = append(out, fmt.Sprintf("%s %q @%d v%d", ev.Type, ev.Kv.Key, ev.Kv.ModRevision, ev.Kv.Version))
			if ev.Kv.ModRevision >= to {
				return out
			}
		}
	}
	t.Fatalf("watch from %d ended before revision %d; got %d events", from, to, len(out))
	return nil
}
