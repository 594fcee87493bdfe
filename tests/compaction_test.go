package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestCompactionSurvivesKill SIGKILLs the real binary right after a
// compaction is committed, while its background removal is (most likely)
// under way, restarts it, and checks that the compaction resumes and ends
// as if it had never been interrupted: the compacted revision survives,
// reads at it and after are unchanged, and the next compaction's hash (of
// the versions at its revision as the first compaction left them, from the
// sums the resumed compaction persisted) is the HashKV read computed
// independently while the resumed compaction ran.
func TestCompactionSurvivesKill(t *testing.T) {
	m := newMember(t)
	p := m.start(t)
	cli := newClient(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// 2,000 transactions of 20 puts each over 4,000 keys: 40,000 events.
	const txns, perTxn, keys = 2000, 20, 4000
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < txns; i += 16 {
				ops := make([]clientv3.Op, perTxn)
				for j := range ops {
					ops[j] = clientv3.OpPut(fmt.Sprintf("c/%04d", (i*perTxn+j*7)%keys), fmt.Sprintf("v%d.%d", i, j))
				}
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A few deletions, so that the compacted revision has tombstones too.
	for i := range 50 {
		if _, err := cli.Delete(ctx, fmt.Sprintf("c/%04d", i*13)); err != nil {
			t.Fatal(err)
		}
	}
	head, err := cli.Get(ctx, "c/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	rev := head.Header.Revision
	compactAt := rev - 30
	if _, err := cli.Compact(ctx, compactAt); err != nil {
		t.Fatal(err)
	}
	p.kill(t)
	cli.Close()
	finished := strings.Contains(p.stderr.String(), "finished scheduled compaction")
	t.Logf("killed %s the background compaction had finished", map[bool]string{true: "after", false: "before"}[finished])

	m.start(t) // the test's cleanup kills it
	cli = newClient(t, m)
	defer cli.Close()
	if _, err := cli.Get(ctx, "c/0001", clientv3.WithRev(compactAt-1)); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Errorf("read below the compacted revision after restart: %v, want compacted", err)
	}
	// Most likely while the resumed compaction runs: from its progress.
	before, err := cli.HashKV(ctx, m.endpoint(), rev)
	if err != nil {
		t.Fatal(err)
	}
	if before.CompactRevision != compactAt {
		t.Errorf("HashKV(%d) after restart: compacted %d, want %d", rev, before.CompactRevision, compactAt)
	}
	for _, r := range []int64{compactAt, rev} {
		got, err := cli.Get(ctx, "c/", clientv3.WithPrefix(), clientv3.WithRev(r))
		if err != nil {
			t.Fatal(err)
		}
		if r == rev {
			if len(got.Kvs) != len(head.Kvs) {
				t.Fatalf("read at %d after restart: %d keys, before the kill %d", r, len(got.Kvs), len(head.Kvs))
			}
			for i, kv := range got.Kvs {
				if w := head.Kvs[i]; string(kv.Key) != string(w.Key) || string(kv.Value) != string(w.Value) || kv.ModRevision != w.ModRevision || kv.Version != w.Version {
					t.Fatalf("read at %d after restart: %s=%s mod %d ver %d, before the kill %s=%s mod %d ver %d", r, kv.Key, kv.Value, kv.ModRevision, kv.Version, w.Key, w.Value, w.ModRevision, w.Version)
				}
			}
		}
	}
	// The next compaction waits for the resumed one; its hash is of the
	// versions at rev as the first compaction left them.
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	next, err := cli.HashKV(ctx, m.endpoint(), rev)
	if err != nil {
		t.Fatal(err)
	}
	if next.Hash != before.Hash || next.CompactRevision != compactAt {
		t.Errorf("HashKV at the second compaction's revision %d = %x (compacted %d), want %x (compacted %d)", rev, next.Hash, next.CompactRevision, before.Hash, compactAt)
	}
}
