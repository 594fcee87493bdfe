package cluster

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	etcdembed "go.etcd.io/etcd/server/v3/embed"

	cairnembed "github.com/cairn-kv/cairn/embed"
)

// Restartable is a Cairn member and an etcd member, started with the
// same options, that Restart stops and starts again on the same data
// directories (a clean shutdown, not a crash). Their client endpoints may
// change across a restart. Both stop when the test ends.
type Restartable struct {
	t                 testing.TB
	opts              Options
	cairnDir, etcdDir string
	logDir            string
	starts            int

	mu     sync.Mutex
	cairn  *cairnembed.Server
	etcd   *etcdembed.Etcd
	etcdEP string
}

// StartBothRestartable starts the pair.
func StartBothRestartable(t testing.TB, opts Options) *Restartable {
	t.Helper()
	r := &Restartable{t: t, opts: opts, cairnDir: t.TempDir(), etcdDir: t.TempDir(), logDir: t.TempDir()}
	t.Cleanup(r.stop)
	r.start()
	return r
}

// Endpoints are the members' current client endpoints.
func (r *Restartable) Endpoints() (cairn, etcd string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cairn.ClientEndpoints()[0], r.etcdEP
}

// Restart stops both members and starts them again on their data.
func (r *Restartable) Restart() {
	r.t.Helper()
	r.stop()
	r.start()
}

func (r *Restartable) start() {
	r.t.Helper()
	r.starts++
	var (
		wg       sync.WaitGroup
		cairnErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv, err := startCairn(r.cairnDir, r.opts)
		r.mu.Lock()
		r.cairn, cairnErr = srv, err
		r.mu.Unlock()
	}()
	// etcd keeps its data in one directory across restarts (a new one
	// per attempt would be a new member); its ports are fresh each time.
	dir := filepath.Join(r.etcdDir, "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		r.t.Fatal(err)
	}
	e, ep, err := startEtcd(dir, filepath.Join(r.logDir, "etcd.log"+string(rune('0'+r.starts))), r.opts)
	wg.Wait()
	r.mu.Lock()
	r.etcd, r.etcdEP = e, ep
	r.mu.Unlock()
	if cairnErr != nil {
		r.t.Fatalf("start cairn: %v", cairnErr)
	}
	if err != nil {
		r.t.Fatalf("start etcd: %v", err)
	}
}

func (r *Restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cairn != nil {
		if err := r.cairn.Close(); err != nil {
			r.t.Errorf("close cairn: %v", err)
		}
		r.cairn = nil
	}
	if r.etcd != nil {
		closeEtcd(r.etcd, r.etcdEP)
		r.etcd = nil
	}
}
