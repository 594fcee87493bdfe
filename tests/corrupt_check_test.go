package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/storage"
)

// The corruption checks of issue 18, on real 3-member clusters: one
// member's copy of a key is changed on purpose in its stopped Pebble store
// (same revision, another value), as a disk or a bug might, and the member
// is restarted on it.

// corruptKey is the key whose stored value corruptValue changes.
const corruptKey = "corrupt/victim"

// TestInitialCorruptCheck: a member restarting with
// --feature-gates=InitialCorruptCheck=true (or etcd 3.5's
// --experimental-initial-corrupt-check) on a corrupted store refuses to
// start with etcd's error; a healthy member restarting with the gate passes
// the check and serves.
func TestInitialCorruptCheck(t *testing.T) {
	ms, initial, procs, cli := startCorruptCluster(t)
	loadCorruptCluster(t, cli, ms)

	// A healthy member passes the check.
	procs[1].stop(t)
	procs[1] = ms[1].start(t, initial, "--feature-gates=InitialCorruptCheck=true")
	waitReady(t, procs[1])
	if log := procs[1].stderr.String(); !strings.Contains(log, "initial corruption checking passed; no corruption") {
		t.Fatalf("the healthy member did not log a passed check; stderr:\n%s", log)
	}

	procs[2].stop(t)
	corruptValue(t, ms[2].dataDir, corruptKey)
	for _, gate := range []string{"--feature-gates=InitialCorruptCheck=true", "--experimental-initial-corrupt-check"} {
		p := ms[2].start(t, initial, gate)
		if code := p.wait(t); code == 0 {
			t.Fatalf("%s: the corrupted member exited with 0; stderr:\n%s", gate, p.stderr)
		}
		log := p.stderr.String()
		for _, want := range []string{"found different hash values from remote peer", "found data inconsistency with peers", "checkInitialHashKV failed"} {
			if !strings.Contains(log, want) {
				t.Fatalf("%s: stderr lacks %q:\n%s", gate, want, log)
			}
		}
		if strings.Contains(log, readyMsg) {
			t.Fatalf("%s: the corrupted member said it was ready:\n%s", gate, log)
		}
	}
	// Without the check it starts (as etcd): the periodic checks are
	// what find it then.
	procs[2] = ms[2].start(t, initial)
	waitReady(t, procs[2])
}

// TestPeriodicCorruptCheck: with --corrupt-check-time the leader compares
// the followers' HashKV with its own. A healthy cluster under writes raises
// nothing; once a corrupted follower rejoins, the leader raises CORRUPT
// naming it, every member then refuses writes with etcd's "etcdserver:
// corrupt cluster", reads go on, and the alarm is listed and in Status.
func TestPeriodicCorruptCheck(t *testing.T) {
	ms, initial, procs, cli := startCorruptCluster(t, "--corrupt-check-time=500ms")
	loadCorruptCluster(t, cli, ms)
	// Writes while several checks run: no false alarm.
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		ctx, cancel := opCtx()
		_, err := cli.Put(ctx, fmt.Sprintf("load/%d", i), "v")
		cancel()
		if err != nil {
			t.Fatalf("put under the checks: %v", err)
		}
	}
	expectNoAlarm(t, cli)
	if !strings.Contains(leaderLog(t, ms, procs), "finished peer corruption check") {
		t.Fatal("the leader logged no finished corruption check")
	}

	victim := followerOf(t, ms)
	id := memberID(t, ms[victim])
	procs[victim].stop(t)
	corruptValue(t, ms[victim].dataDir, corruptKey)
	procs[victim] = ms[victim].start(t, initial, "--corrupt-check-time=500ms")
	waitReady(t, procs[victim])

	waitCorruptAlarm(t, cli, ms, id)
	if log := leaderLog(t, ms, procs); !strings.Contains(log, "same compact revision then hashes must match") {
		t.Fatalf("the leader's log lacks the mismatch:\n%s", log)
	}
}

// TestCompactHashCheck: with --feature-gates=CompactHashCheck=true the
// leader compares the hashes each member computed at the same compaction;
// the corrupted follower's differs from the majority's and gets the
// CORRUPT alarm.
func TestCompactHashCheck(t *testing.T) {
	extra := []string{"--feature-gates=CompactHashCheck=true", "--compact-hash-check-time=500ms"}
	ms, initial, procs, cli := startCorruptCluster(t, extra...)
	loadCorruptCluster(t, cli, ms)
	victim := followerOf(t, ms)
	id := memberID(t, ms[victim])
	procs[victim].stop(t)
	corruptValue(t, ms[victim].dataDir, corruptKey)
	procs[victim] = ms[victim].start(t, initial, extra...)
	waitReady(t, procs[victim])
	expectNoAlarm(t, cli) // nothing compacted since the restart: nothing to compare

	ctx, cancel := opCtx()
	resp, err := cli.Put(ctx, "after-restart", "v")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = opCtx()
	_, err = cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	waitCorruptAlarm(t, cli, ms, id)
	if log := leaderLog(t, ms, procs); !strings.Contains(log, "Detected compaction hash mismatch") {
		t.Fatalf("the leader's log lacks the mismatch:\n%s", log)
	}
}

// startCorruptCluster starts a 3-member cluster with extra flags and a
// client of all three.
func startCorruptCluster(t *testing.T, extra ...string) ([]*clusterMember, string, []*proc, *clientv3.Client) {
	t.Helper()
	ms, initial := newCluster(t, 3)
	procs := make([]*proc, len(ms))
	var eps []string
	for i, m := range ms {
		procs[i] = m.start(t, initial, extra...)
		eps = append(eps, m.endpoint())
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return ms, initial, procs, cli
}

// loadCorruptCluster writes some keys and corruptKey, and waits until every
// member has applied them (same HashKV at the last revision).
func loadCorruptCluster(t *testing.T, cli *clientv3.Client, ms []*clusterMember) {
	t.Helper()
	var rev int64
	for i := range 50 {
		ctx, cancel := opCtx()
		resp, err := cli.Put(ctx, fmt.Sprintf("key/%02d", i), strings.Repeat("v", i))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	ctx, cancel := opCtx()
	resp, err := cli.Put(ctx, corruptKey, "the value every member agrees on")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	rev = resp.Header.Revision
	eventually(t, "members agree on HashKV", func() error {
		var hashes []uint32
		for _, m := range ms {
			ctx, cancel := opCtx()
			h, err := cli.HashKV(ctx, m.endpoint(), rev)
			cancel()
			if err != nil {
				return err
			}
			hashes = append(hashes, h.Hash)
		}
		if hashes[0] != hashes[1] || hashes[0] != hashes[2] {
			return fmt.Errorf("hashes %v", hashes)
		}
		return nil
	})
}

// corruptValue flips the last byte of key's value in every version of it
// that a stopped member's store holds (the record's value is its tail), so
// the member reads another value at the same revisions.
func corruptValue(t *testing.T, dataDir, key string) {
	t.Helper()
	eng, err := storage.Open(dataDir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	b := eng.DB.NewBatch()
	defer b.Close()
	n := 0
	for _, ks := range []byte{storage.KeyspaceVersions, storage.KeyspaceLatest} {
		prefix := storage.AppendEscaped([]byte{ks}, []byte(key))
		upper := bytes.Clone(prefix)
		upper[len(upper)-1]++ // past the escape's terminator
		it, err := eng.DB.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			v := bytes.Clone(it.Value())
			v[len(v)-1] ^= 1
			if err := b.Set(bytes.Clone(it.Key()), v, nil); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n != 2 {
		t.Fatalf("changed %d records of %q, want its version and its latest record", n, key)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// followerOf returns the index of a member that is not the leader.
func followerOf(t *testing.T, ms []*clusterMember) int {
	t.Helper()
	cli := clusterClient(t, ms[0])
	ctx, cancel := opCtx()
	defer cancel()
	st, err := cli.Status(ctx, ms[0].endpoint())
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if id := memberID(t, m); id != st.Leader {
			return i
		}
	}
	t.Fatal("every member is the leader")
	return -1
}

// leaderLog is the current leader's stderr.
func leaderLog(t *testing.T, ms []*clusterMember, procs []*proc) string {
	t.Helper()
	cli := clusterClient(t, ms[0])
	ctx, cancel := opCtx()
	defer cancel()
	st, err := cli.Status(ctx, ms[0].endpoint())
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if memberID(t, m) == st.Leader {
			return procs[i].stderr.String()
		}
	}
	t.Fatal("no leader")
	return ""
}

func memberID(t *testing.T, m *clusterMember) uint64 {
	t.Helper()
	cli := clusterClient(t, m)
	ctx, cancel := opCtx()
	defer cancel()
	st, err := cli.Status(ctx, m.endpoint())
	if err != nil {
		t.Fatal(err)
	}
	return st.Header.MemberId
}

// clusterClient is a client of m alone.
func clusterClient(t *testing.T, m *clusterMember) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func expectNoAlarm(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := opCtx()
	defer cancel()
	al, err := cli.AlarmList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(al.Alarms) != 0 {
		t.Fatalf("alarms %v, want none", al.Alarms)
	}
}

// waitCorruptAlarm waits until the CORRUPT alarm names member id and only
// it, then checks what a client sees on every member (nil: stopped): writes refused with
// etcd's error, reads served, the alarm in Status.
func waitCorruptAlarm(t *testing.T, cli *clientv3.Client, ms []*clusterMember, id uint64) {
	t.Helper()
	want := []*pb.AlarmMember{{MemberID: id, Alarm: pb.AlarmType_CORRUPT}}
	eventually(t, "the CORRUPT alarm is raised", func() error {
		ctx, cancel := opCtx()
		defer cancel()
		al, err := cli.AlarmList(ctx)
		if err != nil {
			return err
		}
		if len(al.Alarms) != 1 || al.Alarms[0].MemberID != want[0].MemberID || al.Alarms[0].Alarm != want[0].Alarm {
			return fmt.Errorf("alarms %v, want %v", al.Alarms, want)
		}
		return nil
	})
	statusErr := fmt.Sprintf("memberID:%d alarm:CORRUPT", id)
	for _, m := range ms {
		if m == nil {
			continue // stopped
		}
		c := clusterClient(t, m)
		ctx, cancel := opCtx()
		_, err := c.Put(ctx, "refused", "v")
		cancel()
		if !errors.Is(err, rpctypes.ErrCorrupt) || err.Error() != "etcdserver: corrupt cluster" {
			t.Fatalf("%s: put under CORRUPT: %v, want %v", m.name, err, rpctypes.ErrCorrupt)
		}
		ctx, cancel = opCtx()
		_, err = c.Delete(ctx, "key/00")
		cancel()
		if !errors.Is(err, rpctypes.ErrCorrupt) {
			t.Fatalf("%s: delete under CORRUPT: %v, want %v", m.name, err, rpctypes.ErrCorrupt)
		}
		ctx, cancel = opCtx()
		_, err = c.Get(ctx, "key/01")
		cancel()
		if err != nil {
			t.Fatalf("%s: get under CORRUPT: %v", m.name, err)
		}
		ctx, cancel = opCtx()
		st, err := c.Status(ctx, m.endpoint())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Errors) != 1 || st.Errors[0] != statusErr {
			t.Fatalf("%s: status errors %q, want [%q]", m.name, st.Errors, statusErr)
		}
		// etcd's /readyz and /health answers under the alarm.
		for path, want := range map[string]string{
			"/readyz/data_corruption": "503 [-]data_corruption failed: alarm activated: CORRUPT\n",
			"/health":                 `503 {"health":"false","reason":"ALARM CORRUPT"}`,
		} {
			if got := httpGet(t, m.clientURL+path); !strings.HasPrefix(got, want) {
				t.Fatalf("%s: %s: %q, want %q", m.name, path, got, want)
			}
		}
	}
}

// TestRuntimeStorageCorruption: a member whose Pebble store fails a block
// checksum while it serves stops (as before) and, on its way out, has a
// peer raise the CORRUPT alarm naming it, so the cluster refuses writes
// instead of going on without a word (etcd's member panics on a corrupt
// bbolt file and the others go on).
func TestRuntimeStorageCorruption(t *testing.T) {
	ms, initial, procs, cli := startCorruptCluster(t)
	loadCorruptCluster(t, cli, ms)
	// 8 MiB of random 4 KiB values: at least one flush to an sstable.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 18))
	var rev int64
	for i := range 2048 {
		ctx, cancel := opCtx()
		resp, err := cli.Put(ctx, fmt.Sprintf("big/%04d", i), string(randomBytes(rng, 4096)))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	victim := followerOf(t, ms)
	id := memberID(t, ms[victim])
	procs[victim].stop(t)
	t.Logf("damage: %s", corruptSSTable(t, ms[victim].dataDir, rng))
	procs[victim] = ms[victim].start(t, initial)
	waitReady(t, procs[victim])

	// Every value, from the latest records and from the versions.
	vc := clusterClient(t, ms[victim])
	failed := false
	for _, opts := range [][]clientv3.OpOption{{}, {clientv3.WithRev(rev - 1)}} {
		ctx, cancel := opCtx()
		_, err := vc.Get(ctx, "big/", append(opts, clientv3.WithPrefix(), clientv3.WithSerializable())...)
		cancel()
		failed = failed || err != nil
	}
	if !failed {
		t.Fatalf("reading every value on the damaged member succeeded")
	}
	if code := procs[victim].wait(t); code == 0 {
		t.Fatalf("the damaged member exited with 0; stderr:\n%s", procs[victim].stderr)
	}
	if log := procs[victim].stderr.String(); !strings.Contains(log, "raised the CORRUPT alarm through a peer") {
		t.Fatalf("the damaged member did not report itself; stderr:\n%s", log)
	}
	live := slices.Clone(ms)
	live[victim] = nil
	var eps []string
	for _, m := range live {
		if m != nil {
			eps = append(eps, m.endpoint())
		}
	}
	cli.SetEndpoints(eps...)
	waitCorruptAlarm(t, cli, live, id)
}
