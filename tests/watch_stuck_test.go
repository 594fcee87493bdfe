package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Issue 13, item 1, against the real binary: a client whose watch stream
// never reads, stuck behind 300 × 64 KiB events, must cost only itself.
// After 10,100 more writes a watcher 5 revisions behind the head gets its
// events at once, and one 10,100 revisions behind gets every event, in
// order, without a gap. (Before the fix the first got nothing and the
// second stopped where a 10,000-event read from the stuck watcher's
// position ended.) The member's RSS while the stuck stream holds its
// share is logged and bounded.
func TestWatchStuckStreamCostsOnlyItself(t *testing.T) {
	m := newMember(t, "--unsafe-no-fsync")
	p := m.start(t)
	writer, stuckCli, cli := newClient(t, m), newClient(t, m), newClient(t, m)
	defer writer.Close()
	defer stuckCli.Close()
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The stuck client: a raw stream on its own connection that reads the
	// created response and nothing more.
	stuck, err := pb.NewWatchClient(stuckCli.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stuck.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
		CreateRequest: &pb.WatchCreateRequest{Key: []byte("a/"), RangeEnd: []byte("a0")}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := stuck.Recv(); err != nil || !r.Created {
		t.Fatalf("stuck watcher: %v %v", r, err)
	}
	rss0 := rssBytes(t, p)
	big := strings.Repeat("v", 64<<10)
	putsFrom32(t, writer, 300, func(i int) (string, string) { return fmt.Sprintf("a/%03d", i), big })
	rss1 := rssBytes(t, p)

	const small = 10100
	first := putRev(t, writer, "x/00000", "v")
	putsFrom32(t, writer, small-1, func(i int) (string, string) { return fmt.Sprintf("x/%05d", i+1), "v" })
	head := putRev(t, writer, "x/zzzzz", "last")

	near := cli.Watch(ctx, "x/", clientv3.WithPrefix(), clientv3.WithRev(head-4))
	far := cli.Watch(ctx, "x/", clientv3.WithPrefix(), clientv3.WithRev(first))
	// Generous bounds: the old code never delivered; etcd takes about a second.
	if got := watchUntil(t, near, head, 10*time.Second); len(got) != 5 || got[0] != head-4 {
		t.Fatalf("watcher 5 revisions behind got revisions %v, want %d..%d", got, head-4, head)
	}
	got := watchUntil(t, far, head, 30*time.Second)
	if int64(len(got)) != head-first+1 {
		t.Fatalf("watcher %d revisions behind got %d events, want %d", head-first, len(got), head-first+1)
	}
	for i, rev := range got {
		if rev != first+int64(i) {
			t.Fatalf("event %d at revision %d, want %d (a gap or reordering)", i, rev, first+int64(i))
		}
	}
	rss2 := rssBytes(t, p)
	t.Logf("member RSS: %d MiB before the stuck stream's 19 MiB of events, %d MiB after them, %d MiB after the catch-ups",
		rss0>>20, rss1>>20, rss2>>20)
	// The stuck stream holds at most --watch stream bytes (8 MiB) on top
	// of what gRPC buffers; the values also sit in Pebble's memtable.
	if grew := int64(rss2) - int64(rss0); grew > 256<<20 {
		t.Errorf("member RSS grew by %d MiB with a stuck watch stream", grew>>20)
	}
}

// putRev puts key=value and returns the revision.
func putRev(t *testing.T, cli *clientv3.Client, key, value string) int64 {
	t.Helper()
	ctx, cancel := opCtx()
	defer cancel()
	resp, err := cli.Put(ctx, key, value)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// putsFrom32 makes n puts, kv(i) for i in [0, n), from 32 goroutines.
func putsFrom32(t *testing.T, cli *clientv3.Client, n int, kv func(i int) (string, string)) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				k, v := kv(int(i))
				ctx, cancel := opCtx()
				_, err := cli.Put(ctx, k, v)
				cancel()
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("put: %v", err)
	}
}

// watchUntil collects the revisions of wch's events until one at revision
// last, failing after timeout.
func watchUntil(t *testing.T, wch clientv3.WatchChan, last int64, timeout time.Duration) []int64 {
	t.Helper()
	var got []int64
	deadline := time.After(timeout)
	for {
		select {
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil {
				t.Fatalf("watch ended: %v after %d events", resp.Err(), len(got))
			}
			for _, ev := range resp.Events {
				got = append(got, ev.Kv.ModRevision)
				if ev.Kv.ModRevision >= last {
					return got
				}
			}
		case <-deadline:
			t.Fatalf("watch: %d events after %v, none at revision %d yet", len(got), timeout, last)
		}
	}
}

// rssBytes is the process's resident set size.
func rssBytes(t *testing.T, p *proc) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/pid/status")
	return 0
}
