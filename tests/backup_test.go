package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/backup"
)

// TestSnapshotSaveWhileWriting: a backup taken while clients write is the
// state at one applied index (revision R, every key of R and none after),
// it passes its SHA-256 check, `cairn snapshot status` reads it, and the
// member leaves no backup file behind.
func TestSnapshotSaveWhileWriting(t *testing.T) {
	m := newMember(t)
	m.start(t)
	cli := newClient(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for i := range 500 {
		if _, err := cli.Put(ctx, fmt.Sprintf("pre/%04d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // keep writing while the backup is taken
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_, _ = cli.Put(ctx, fmt.Sprintf("during/%06d", i), "x")
		}
	}()
	path := filepath.Join(t.TempDir(), "backup.db")
	saveSnapshot(ctx, t, cli, path)
	cancel()
	wg.Wait()

	if _, err := backup.VerifySHA256(path); err != nil {
		t.Fatalf("saved file: %v", err)
	}
	p := startCairn(t, "snapshot", "status", path, "-w", "json")
	if code := p.wait(t); code != 0 {
		t.Fatalf("cairn snapshot status: exit %d, stderr:\n%s", code, p.stderr)
	}
	var st backup.Status
	if err := json.Unmarshal([]byte(p.stdout.String()), &st); err != nil {
		t.Fatalf("cairn snapshot status -w json: %v in %q", err, p.stdout)
	}
	// Revision R holds the 500 keys written before plus the R-501 written
	// during the save (one revision each, from revision 2 on).
	if st.Revision < 501 || st.TotalKey != int(st.Revision-1) || st.Version != backup.StorageVersion {
		t.Errorf("status %+v: want revision >= 501, total keys = revision-1, version %s", st, backup.StorageVersion)
	}
	if left, _ := filepath.Glob(filepath.Join(m.dataDir, "backup.tmp", "*")); len(left) != 0 {
		t.Errorf("backup files left in the data dir: %v", left)
	}

	// A damaged copy is refused by the hash check and by status.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.db")
	if err := os.WriteFile(cut, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.VerifySHA256(cut); err == nil {
		t.Error("a file cut in half passed the SHA-256 check")
	}
	p = startCairn(t, "snapshot", "status", cut)
	if code := p.wait(t); code != 1 || !strings.HasPrefix(p.stderr.String(), "Error: ") {
		t.Errorf("cairn snapshot status of a cut file: exit %d, stderr %q; want 1 and an error", code, p.stderr)
	}
}

// saveSnapshot streams Maintenance.Snapshot into path, as etcdctl snapshot
// save does (the last chunk is the SHA-256 of the others).
func saveSnapshot(ctx context.Context, t *testing.T, cli *clientv3.Client, path string) {
	t.Helper()
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatalf("snapshot stream: %v", err)
	}
}
