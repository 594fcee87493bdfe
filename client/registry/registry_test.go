package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
	"github.com/cairn-kv/cairn/client/registry"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// updates records Discover's updates as "rev +added ~updated -removed = set".
type updates struct{ ch chan string }

func newUpdates() *updates { return &updates{ch: make(chan string, 100)} }

func (u *updates) fn(up registry.Update) {
	var b strings.Builder
	for _, s := range up.Added {
		fmt.Fprintf(&b, "+%s ", s.ID)
	}
	for _, s := range up.Updated {
		fmt.Fprintf(&b, "~%s ", s.ID)
	}
	for _, s := range up.Removed {
		fmt.Fprintf(&b, "-%s ", s.ID)
	}
	b.WriteString("=")
	for _, s := range up.Instances {
		fmt.Fprintf(&b, " %s@%s", s.ID, s.Addr)
	}
	u.ch <- b.String()
}

func (u *updates) expect(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	timeout := time.After(15 * time.Second)
	for len(got) < len(want) {
		select {
		case s := <-u.ch:
			got = append(got, s)
		case <-timeout:
			t.Fatalf("timed out after updates %q, want %q", got, want)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("updates %q, want %q", got, want)
		}
	}
}

// statuses records OnStatus calls as "id state".
type statuses struct{ ch chan registry.Status }

func newStatuses() *statuses { return &statuses{ch: make(chan registry.Status, 100)} }

func (s *statuses) fn(st registry.Status) { s.ch <- st }

func (s *statuses) expect(t *testing.T, id string, state registry.State) registry.Status {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case st := <-s.ch:
			if st.Service.ID == id && st.State == state {
				return st
			}
			t.Logf("status %s %s (%v)", st.Service.ID, st.State, st.Err)
		case <-timeout:
			t.Fatalf("no status %s %s", id, state)
		}
	}
}

func svc(id string) registry.Service {
	return registry.Service{Name: "greeter", ID: id, Addr: "10.0.0." + id + ":80", Metadata: map[string]string{"zone": "z"}}
}

func TestRegisterDiscoverDeregister(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	st := newStatuses()
	r := registry.New(c, registry.Options{OnStatus: st.fn})

	a, err := r.Register(ctx, svc("1"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st.expect(t, "1", registry.StateRegistered)
	kv, err := c.Get(ctx, "/cairn/services/greeter/1")
	if err != nil || kv.Lease != a.Lease() || kv.Value != `{"name":"greeter","id":"1","addr":"10.0.0.1:80","metadata":{"zone":"z"}}` {
		t.Fatalf("stored instance = %+v, %v", kv, err)
	}

	u := newUpdates()
	in, err := r.Discover(ctx, "greeter", u.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	u.expect(t, "+1 = 1@10.0.0.1:80")

	b, err := r.Register(ctx, svc("2"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	u.expect(t, "+2 = 1@10.0.0.1:80 2@10.0.0.2:80")
	// A changed address (here edited in place, under the same lease) is an
	// update.
	moved := svc("2")
	moved.Addr = "10.0.1.2:80"
	if _, err := client.PutJSON(ctx, c, b.Key(), moved, client.WithLease(b.Lease())); err != nil {
		t.Fatal(err)
	}
	u.expect(t, "~2 = 1@10.0.0.1:80 2@10.0.1.2:80")

	// Ending the context deregisters: the key goes at once.
	cctx, cancel := context.WithCancel(ctx)
	if _, err := r.Register(cctx, svc("3"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	u.expect(t, "+3 = 1@10.0.0.1:80 2@10.0.1.2:80 3@10.0.0.3:80")
	cancel()
	u.expect(t, "-3 = 1@10.0.0.1:80 2@10.0.1.2:80")
	st.expect(t, "3", registry.StateDeregistered)
	if err := b.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	u.expect(t, "-2 = 1@10.0.0.1:80")
	if err := a.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	st.expect(t, "1", registry.StateDeregistered)
	u.expect(t, "-1 =")
	if got := in.List(); len(got) != 0 {
		t.Fatalf("List() after deregistering all = %+v", got)
	}
	if ok, _ := c.Exists(ctx, "/cairn/services/greeter/1"); ok {
		t.Fatal("key survived Deregister")
	}
	if in.Revision() == 0 {
		t.Fatal("Revision() = 0")
	}
}

func TestRegisterRejectsInvalidServices(t *testing.T) {
	t.Parallel()
	c := cairntest.Start(t).Client(t)
	r := registry.New(c, registry.Options{})
	for _, s := range []registry.Service{
		{ID: "a", Addr: "x"}, {Name: "n/m", ID: "a", Addr: "x"}, {Name: "n", Addr: "x"}, {Name: "n", ID: "a/b", Addr: "x"}, {Name: "n", ID: "a"},
	} {
		if _, err := r.Register(testContext(t), s, time.Second); !errors.Is(err, registry.ErrInvalidService) {
			t.Errorf("Register(%+v) error = %v, want ErrInvalidService", s, err)
		}
	}
}

// An operator revokes the instance's lease (or deletes its key): the
// Registration notices and registers again under a new lease, and
// discoverers see the instance leave and come back.
func TestReRegisterAfterLeaseLoss(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	st := newStatuses()
	r := registry.New(c, registry.Options{OnStatus: st.fn})
	reg, err := r.Register(ctx, svc("1"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Deregister(ctx)
	first := st.expect(t, "1", registry.StateRegistered)
	u := newUpdates()
	in, err := r.Discover(ctx, "greeter", u.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	u.expect(t, "+1 = 1@10.0.0.1:80")

	if err := c.LeaseRevoke(ctx, first.Lease); err != nil {
		t.Fatal(err)
	}
	// The key's deletion or the failed keep-alive, whichever is seen first.
	if lost := st.expect(t, "1", registry.StateLost); lost.Err == nil || lost.Lease != first.Lease {
		t.Fatalf("lost %+v, want the first lease and a reason", lost)
	}
	second := st.expect(t, "1", registry.StateRegistered)
	if second.Lease == first.Lease || reg.Lease() != second.Lease {
		t.Fatalf("re-registered under lease %x (Lease() %x), want a new one (old %x)", second.Lease, reg.Lease(), first.Lease)
	}
	u.expect(t, "-1 =", "+1 = 1@10.0.0.1:80")
	if kv, err := c.Get(ctx, reg.Key()); err != nil || kv.Lease != second.Lease {
		t.Fatalf("key after re-registration = %+v, %v", kv, err)
	}

	// Deleting the key by hand has the same effect.
	if _, err := c.Delete(ctx, reg.Key()); err != nil {
		t.Fatal(err)
	}
	st.expect(t, "1", registry.StateLost)
	third := st.expect(t, "1", registry.StateRegistered)
	u.expect(t, "-1 =", "+1 = 1@10.0.0.1:80")
	if info, err := c.LeaseInfo(ctx, second.Lease); !errors.Is(err, client.ErrLeaseNotFound) {
		t.Fatalf("old lease after re-registration: %+v, %v; want it revoked", info, err)
	}
	if third.Lease == second.Lease {
		t.Fatal("re-registered under the old lease")
	}
}

// The instance is cut off from the cluster for longer than its TTL: the
// lease expires (discoverers see it leave), and once the partition heals
// it registers again by itself.
func TestReRegisterAfterPartition(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	proxy := cairntest.NewProxy(t, srv.Endpoints()[0])
	cut, err := client.New(cairntest.ClientConfig(proxy.Endpoint()))
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close()
	st := newStatuses()
	reg, err := registry.New(cut, registry.Options{OnStatus: st.fn, MaxBackoff: 200 * time.Millisecond}).
		Register(ctx, svc("1"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Deregister(ctx)
	st.expect(t, "1", registry.StateRegistered)

	u := newUpdates()
	in, err := registry.New(srv.Client(t), registry.Options{}).Discover(ctx, "greeter", u.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	u.expect(t, "+1 = 1@10.0.0.1:80")

	proxy.Cut()
	u.expect(t, "-1 =") // the server expired the lease
	st.expect(t, "1", registry.StateLost)
	proxy.Restore()
	st.expect(t, "1", registry.StateRegistered)
	u.expect(t, "+1 = 1@10.0.0.1:80")
}

// A discoverer that was away while the history it needed was compacted
// re-reads the set and reports the difference.
func TestDiscoverAfterCompaction(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := cairntest.Start(t)
	proxy := cairntest.NewProxy(t, srv.Endpoints()[0])
	far, err := client.New(cairntest.ClientConfig(proxy.Endpoint()))
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	c := srv.Client(t)
	r := registry.New(c, registry.Options{})
	a, _ := r.Register(ctx, svc("1"), 5*time.Second)
	defer a.Deregister(ctx)

	u := newUpdates()
	in, err := registry.New(far, registry.Options{}).Discover(ctx, "greeter", u.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	u.expect(t, "+1 = 1@10.0.0.1:80")
	proxy.Cut()
	b, _ := r.Register(ctx, svc("2"), 5*time.Second)
	defer b.Deregister(ctx)
	a.Deregister(ctx)
	rev, err := c.Put(ctx, "/unrelated", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Etcd().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	proxy.Restore()
	u.expect(t, "+2 -1 = 2@10.0.0.2:80")
	if in.Revision() != rev {
		t.Fatalf("Revision() = %d, want %d", in.Revision(), rev)
	}
}
