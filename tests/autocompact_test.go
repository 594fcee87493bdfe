package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestAutoCompactionPeriodic: with --auto-compaction-retention=2s the member
// compacts on its own, to a revision about two seconds old, logging etcd's
// lines; reads below it then fail with etcd's compaction error, and the
// recent history stays readable.
func TestAutoCompactionPeriodic(t *testing.T) {
	m := newMember(t, "--auto-compaction-mode=periodic", "--auto-compaction-retention=2s")
	p := m.start(t)
	cli := newClient(t, m)

	// Write until the log says a compaction past the first write completed
	// (the first, two seconds after start, compacts to revision 1).
	var last, compacted int64
	deadline := time.Now().Add(20 * time.Second)
	for compacted = lastCompleted(p.stderr.String()); compacted < 2; compacted = lastCompleted(p.stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no auto compaction within 20 s; stderr:\n%s", p.stderr)
		}
		ctx, cancel := opCtx()
		resp, err := cli.Put(ctx, "k", fmt.Sprint(time.Now().UnixNano()))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		last = resp.Header.Revision
		time.Sleep(20 * time.Millisecond)
	}
	if compacted >= last {
		t.Fatalf("auto compaction to revision %d; want one below the last write's %d", compacted, last)
	}

	ctx, cancel := opCtx()
	defer cancel()
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(compacted-1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("Get at revision %d below the auto compaction: got %v, want %v", compacted-1, err, rpctypes.ErrCompacted)
	}
	resp, err := cli.Get(ctx, "k", clientv3.WithRev(last))
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].ModRevision != last {
		t.Errorf("Get at the last write's revision %d after the auto compaction: %v, %v", last, resp, err)
	}
}

// lastCompleted is the revision of the last "completed auto periodic
// compaction" line of a member's JSON log (0: none).
func lastCompleted(log string) int64 {
	var rev int64
	for _, line := range strings.Split(log, "\n") {
		var rec struct {
			Msg      string
			Revision int64 `json:"revision"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "completed auto periodic compaction" {
			rev = rec.Revision
		}
	}
	return rev
}

// TestAutoCompactionBadFlags: a retention or mode Cairn cannot read stops
// start-up with a message naming the flag, before the data dir exists.
func TestAutoCompactionBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--auto-compaction-retention=abc"}, `invalid --auto-compaction-retention "abc"`},
		{[]string{"--auto-compaction-retention=-1"}, `invalid --auto-compaction-retention "-1": must not be negative`},
		{[]string{"--auto-compaction-mode=revision", "--auto-compaction-retention=5m"}, "revision mode takes a revision count"},
		{[]string{"--auto-compaction-mode=weekly", "--auto-compaction-retention=1"}, `unknown auto-compaction-mode "weekly"`},
	} {
		dir := t.TempDir()
		p := startCairn(t, append([]string{"--data-dir", dir + "/data"}, tc.args...)...)
		code := p.wait(t)
		if code == 0 {
			t.Errorf("%q: exit code 0, want non-zero", tc.args)
		}
		if !strings.Contains(p.stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q does not say %q", tc.args, p.stderr, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%q: created %v", tc.args, entries)
		}
	}
}
