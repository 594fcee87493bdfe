package compat

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

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
	rev := last.Header.Revision

	path := filepath.Join(t.TempDir(), "backup.db")
	version, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), clientv3.Config{Endpoints: eps}, path)
	if err != nil {
		t.Fatalf("snapshot save from Cairn: %v", err)
	}
	if version != backup.StorageVersion {
		t.Errorf("snapshot save: version %q, want %q", version, backup.StorageVersion)
	}

	want, err := etcdsnap.NewV3(zap.NewNop()).Status(path)
	if err != nil {
		t.Fatalf("etcdutl snapshot status: %v", err)
	}
	got, err := backup.ReadStatus(path)
	if err != nil {
		t.Fatalf("cairn snapshot status: %v", err)
	}
	if got.Hash != want.Hash || got.Revision != want.Revision || got.TotalKey != want.TotalKey || got.TotalSize != want.TotalSize || got.Version != want.Version {
		t.Errorf("snapshot status: Cairn %+v, etcdutl %+v", got, want)
	}
	if want.Revision != rev {
		t.Errorf("etcdutl snapshot status: revision %d, want %d", want.Revision, rev)
	}

	etcdEP := restoreIntoEtcd(t, path)
	ecli := newClient(t, []string{etcdEP})
	for r := compactAt.Header.Revision; r <= rev; r++ {
		cg, cerr := cli.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithRev(r))
		eg, eerr := ecli.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithRev(r))
		if cerr != nil || eerr != nil {
			t.Fatalf("get at revision %d: Cairn %v, restored etcd %v", r, cerr, eerr)
		}
		if len(cg.Kvs) != len(eg.Kvs) {
			t.Fatalf("get at revision %d: Cairn %d keys, restored etcd %d", r, len(cg.Kvs), len(eg.Kvs))
		}
		for i := range cg.Kvs {
			if !proto.Equal(cg.Kvs[i], eg.Kvs[i]) {
				t.Errorf("get at revision %d, key %d: Cairn %v, restored etcd %v", r, i, cg.Kvs[i], eg.Kvs[i])
			}
		}
		if eg.Header.Revision != rev {
			t.Errorf("restored etcd: header revision %d, want %d", eg.Header.Revision, rev)
		}
	}
	for _, c := range []*clientv3.Client{cli, ecli} {
		if _, err := c.Get(ctx, "a", clientv3.WithRev(compactAt.Header.Revision-1)); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Errorf("get below the compaction: %v, want %v", err, rpctypes.ErrCompacted)
		}
	}
	ttl, err := ecli.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	if ttl.GrantedTTL != 600 || len(ttl.Keys) != 2 || string(ttl.Keys[0]) != "e" || string(ttl.Keys[1]) != "f" {
		t.Errorf("restored etcd: lease %x granted %d s with keys %q; want 600 s with [e f]", l.ID, ttl.GrantedTTL, ttl.Keys)
	}
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
