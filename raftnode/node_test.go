package raftnode

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/storage"
)

func startNode(t *testing.T, eng *storage.Engine, applied uint64) *Node {
	t.Helper()
	n, err := Start(Config{
		ID: 1, Voters: []uint64{1}, Engine: eng, Applied: applied,
		TickInterval: 10 * time.Millisecond, ElectionTicks: 10, SnapshotCount: 10000,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// nextData collects the data of committed normal entries until it has n.
func nextData(t *testing.T, n *Node, want int) (data []string, last uint64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for len(data) < want {
		select {
		case a := <-n.Committed():
			ents := a.Entries
			for _, e := range ents {
				last = e.GetIndex()
				if e.GetType() == raftpb.EntryNormal && len(e.Data) > 0 {
					data = append(data, string(e.Data))
				}
			}
		case <-timeout:
			t.Fatalf("got %q, want %d entries", data, want)
		}
	}
	return data, last
}

func propose(t *testing.T, n *Node, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		err := n.Propose(ctx, []byte(data))
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("propose %q: %v", data, err)
		}
		time.Sleep(5 * time.Millisecond) // no leader yet
	}
}

// The log is durable: after a restart, entries past the applied index are
// delivered again, and entries at or below it are not.
func TestLogSurvivesRestart(t *testing.T) {
	eng, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	n := startNode(t, eng, 0)
	for _, d := range []string{"a", "b", "c"} {
		propose(t, n, d)
	}
	got, last := nextData(t, n, 3)
	if len(got) != 3 || got[0] != "a" || got[2] != "c" {
		t.Fatalf("committed %q, want [a b c]", got)
	}
	n.Stop()

	// Nothing applied: all three come back, in order.
	n = startNode(t, eng, 0)
	if got, _ := nextData(t, n, 3); got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Fatalf("replayed %q, want [a b c]", got)
	}
	n.Stop()

	// All applied: only new entries come.
	n = startNode(t, eng, last)
	propose(t, n, "d")
	if got, _ := nextData(t, n, 1); got[0] != "d" {
		t.Fatalf("after restart at applied %d got %q, want [d]", last, got)
	}
	st := n.Status()
	if st.Lead != 1 || st.Term < 2 {
		t.Fatalf("status %+v, want leader 1 at term >= 2", st)
	}
	n.Stop()
}

// A crash between a snapshot's install (which writes its metadata and
// clears the log) and the next hard state write leaves a commit index
// below the snapshot's: the node starts anyway, committed up to it.
func TestStartAfterSnapshotInstallCrash(t *testing.T) {
	eng, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	n := startNode(t, eng, 0)
	propose(t, n, "a")
	nextData(t, n, 1)
	n.Stop()

	// What an installed snapshot file leaves: metadata at index 50, term 3,
	// no log; the hard state still says commit 2, term 2.
	meta := &raftpb.SnapshotMetadata{Index: proto.Uint64(50), Term: proto.Uint64(3), ConfState: &raftpb.ConfState{Voters: []uint64{1}}}
	mb, _ := proto.Marshal(meta)
	f, err := eng.CreateSnapshotFile(map[string][]byte{string(keySnapshot): mb})
	if err != nil {
		t.Fatal(err)
	}
	path, err := f.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.IngestSnapshot(path); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, eng, 50)
	defer n.Stop()
	propose(t, n, "b")
	got, last := nextData(t, n, 1)
	if got[0] != "b" || last <= 50 {
		t.Fatalf("after the install got %q at index %d, want b after index 50", got, last)
	}
	if st := n.Status(); st.Term <= 3 || st.Commit <= 50 {
		t.Fatalf("status %+v, want term > 3 and commit > 50", st)
	}
}

// A snapshot reaches Raft only through ReceiveSnapshot, which keeps the
// file it wrote under the snapshot's (index, term): a MsgSnap handed to
// Step (here one naming another file, from a higher term) is dropped, and
// the node goes on leading.
func TestStepDropsSnapshotMessages(t *testing.T) {
	eng, err := storage.Open(t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	n := startNode(t, eng, 0)
	defer n.Stop()
	propose(t, n, "a")
	nextData(t, n, 1)
	before := n.Status()
	n.Step(&raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(before.Term + 10),
		Snapshot: &raftpb.Snapshot{Data: []byte("/etc/passwd"), Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(1000), Term: proto.Uint64(before.Term + 10), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}})
	propose(t, n, "b")
	if got, _ := nextData(t, n, 1); got[0] != "b" {
		t.Fatalf("after the forged snapshot got %q, want [b]", got)
	}
	if st := n.Status(); st.Term != before.Term || st.Lead != 1 {
		t.Fatalf("status %+v after the forged snapshot, want leader 1 at term %d", st, before.Term)
	}
	select {
	case <-n.Done():
		t.Fatalf("the loop stopped: %v", n.Err())
	default:
	}
}
