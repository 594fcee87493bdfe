package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairn-kv/cairn/storage"
)

// holdPebbleLock takes the lock Pebble takes on dir's state LSM, so that a
// member's first start fails right after it marked dir as its own (and,
// with discovery, after discovery): the window a crash can leave. It
// returns the release.
func holdPebbleLock(t *testing.T, dir string) func() {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	lk, err := vfs.Default.Lock(filepath.Join(dir, "db", "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			lk.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// A member whose first start stops after discovery and before it stored
// its membership bootstraps the cluster discovery found when started
// again, instead of a one-member cluster of its own (as it did when the
// data dir's marker was written first) or a second registration (which
// the discovery service refuses as a duplicate ID).
func TestDiscoveryFirstStartStoppedMidway(t *testing.T) {
	disc := newMember(t)
	disc.start(t)
	token := discoveryNew(t, "--v3", "--size", "3", "--endpoint", disc.endpoint())
	ms := newDiscoveryMembers(t, "d1", "d2", "d3")
	flags := []string{"--discovery-token", token, "--discovery-endpoints", disc.endpoint()}

	release := holdPebbleLock(t, ms[0].dataDir)
	var procs []*proc
	for _, m := range ms {
		procs = append(procs, m.start(t, nil, flags...))
	}
	if code := procs[0].wait(t); code == 0 {
		t.Fatalf("d1 started with its store locked; stderr:\n%s", procs[0].stderr)
	}
	if !strings.Contains(procs[0].stderr.String(), "discovered the initial cluster") {
		t.Fatalf("d1 failed before discovery finished; stderr:\n%s", procs[0].stderr)
	}
	if storage.HasData(ms[0].dataDir) {
		t.Fatal("d1's data dir counts as a member's after a first start that stopped")
	}
	cluster, _, ok, err := storage.Discovered(ms[0].dataDir)
	if err != nil || !ok || strings.Count(cluster, "=") != 3 {
		t.Fatalf("d1's data dir keeps no discovered cluster: %q %v %v", cluster, ok, err)
	}
	waitReady(t, procs[1])
	waitReady(t, procs[2])

	release()
	p := ms[0].start(t, nil, flags...)
	waitReady(t, p)
	if !strings.Contains(p.stderr.String(), "resuming a first start that stopped after discovery") {
		t.Errorf("d1: no notice of the resumed bootstrap; stderr:\n%s", p.stderr)
	}
	checkFormed(t, ms)
	if !storage.HasData(ms[0].dataDir) {
		t.Fatal("d1's data dir is not marked whole once it serves")
	}

	// A data dir marked whole but holding no membership (what the old
	// order could leave) is refused, not bootstrapped as a cluster of one.
	d4 := newDiscoveryMembers(t, "d4")[0]
	e, err := storage.Open(d4.dataDir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	p4 := d4.start(t, nil, flags...)
	if code := p4.wait(t); code != 1 || !strings.Contains(p4.stderr.String(), "holds no membership") {
		t.Fatalf("d4: exit status %d, want 1 and a refusal; stderr:\n%s", code, p4.stderr)
	}
}

// The same window without discovery: a first start with --initial-cluster
// that stops before its member is stored is done again on the next start;
// a data dir a snapshot restore left half-written is refused by name.
func TestFirstStartStoppedMidway(t *testing.T) {
	m := newMember(t)
	release := holdPebbleLock(t, m.dataDir)
	p := startCairn(t, m.args()...)
	if code := p.wait(t); code == 0 {
		t.Fatalf("started with its store locked; stderr:\n%s", p.stderr)
	}
	if storage.HasData(m.dataDir) {
		t.Fatal("data dir counts as a member's after a first start that stopped")
	}
	release()
	m.start(t)
	if !storage.HasData(m.dataDir) {
		t.Fatal("data dir not marked whole once the member serves")
	}

	r := newMember(t)
	e, err := storage.Open(r.dataDir, storage.Options{Creating: "restore"})
	if err != nil {
		t.Fatal(err)
	}
	e.Close() // the restore stopped before it finished
	p = startCairn(t, r.args()...)
	if code := p.wait(t); code != 1 || !strings.Contains(p.stderr.String(), "was left by a snapshot restore (or migrate) that stopped before it finished") {
		t.Fatalf("half-restored dir: exit status %d, want 1 and the reason; stderr:\n%s", code, p.stderr)
	}
}
