package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestSnapshotRestoreCLI: `cairn snapshot restore` builds a data dir that a
// member started with the same name, cluster and token serves, with
// --bump-revision and --mark-compacted as etcdutl's; bad input writes
// nothing.
func TestSnapshotRestoreCLI(t *testing.T) {
	src := newMember(t)
	src.start(t)
	cli := newClient(t, src)
	ctx, cancel := opCtx()
	defer cancel()
	for i := range 20 {
		if _, err := cli.Put(ctx, fmt.Sprintf("k%02d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	saveSnapshot(ctx, t, cli, path)
	last, err := cli.Get(ctx, "k", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}

	m := newMember(t)
	m.name = "restored"
	cluster := m.name + "=" + m.peerURL
	flags := []string{"--data-dir", m.dataDir, "--name", m.name, "--initial-cluster", cluster,
		"--initial-advertise-peer-urls", m.peerURL, "--initial-cluster-token", "tok"}

	// Refused, with nothing written: damaged file, bad flag combinations.
	cut := filepath.Join(t.TempDir(), "cut.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut, b[:len(b)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{append([]string{"snapshot", "restore", cut}, flags...), 1, "truncated or damaged"},
		{append([]string{"snapshot", "restore", path, "--bump-revision", "10"}, flags...), 1, "--mark-compacted required if --bump-revision > 0"},
		{append([]string{"snapshot", "restore", path, "--initial-advertise-peer-urls", "http://127.0.0.1:1"}, flags[:6]...), 2, "--initial-advertise-peer-urls"},
		{append([]string{"snapshot", "restore"}, flags...), 2, "snapshot path required"},
	} {
		p := startCairn(t, tc.args...)
		if code := p.wait(t); code != tc.code || !strings.Contains(p.stderr.String(), tc.want) {
			t.Errorf("cairn %q: exit %d, stderr %q; want %d and %q", tc.args, code, p.stderr, tc.code, tc.want)
		}
		if _, err := os.Stat(m.dataDir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("cairn %q left a data dir (%v)", tc.args, err)
		}
	}

	p := startCairn(t, append([]string{"snapshot", "restore", path, "--bump-revision", "1000", "--mark-compacted"}, flags...)...)
	if code := p.wait(t); code != 0 {
		t.Fatalf("restore: exit %d, stderr:\n%s", code, p.stderr)
	}
	// A second restore into the same (now non-empty) dir is refused.
	p = startCairn(t, append([]string{"snapshot", "restore", path}, flags...)...)
	if code := p.wait(t); code != 1 || !strings.Contains(p.stderr.String(), "is not empty") {
		t.Errorf("restore into a non-empty dir: exit %d, stderr %q", code, p.stderr)
	}

	m.extra = []string{"--initial-cluster-token", "tok"}
	m.start(t)
	rcli := newClient(t, m)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	got, err := rcli.Get(ctx2, "k", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	want := last.Header.Revision + 1000
	if got.Header.Revision != want || len(got.Kvs) != 20 {
		t.Fatalf("restored member: revision %d with %d keys; want %d with 20", got.Header.Revision, len(got.Kvs), want)
	}
	for i, kv := range got.Kvs {
		if string(kv.Value) != fmt.Sprint(i) || kv.ModRevision != last.Kvs[i].ModRevision {
			t.Errorf("restored key %s = %q at %d; want %q at %d", kv.Key, kv.Value, kv.ModRevision, fmt.Sprint(i), last.Kvs[i].ModRevision)
		}
	}
	// --mark-compacted: history before the bumped revision is gone, so a
	// watcher that resumes from an old revision learns it must re-list.
	if _, err := rcli.Get(ctx2, "k00", clientv3.WithRev(want-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("get below the bumped revision: %v, want %v", err, rpctypes.ErrCompacted)
	}
	put, err := rcli.Put(ctx2, "new", "v")
	if err != nil || put.Header.Revision != want+1 {
		t.Errorf("put after restore: %v, %v; want revision %d", put, err, want+1)
	}
}
