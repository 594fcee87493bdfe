package compat

// go-kit sd/etcdv3 test.
//
// What it proves: go-kit's service discovery on etcd (github.com/go-kit/kit
// v0.13.0, sd/etcdv3, built here against the etcd v3.7.4 client) works
// against Cairn: a Registrar puts its instance under a lease with a TTL
// and keeps the lease alive; an Instancer, which reads the prefix and
// re-reads it on every watch event, sees instances come (Register), stay
// while their leases are kept alive for several TTLs, and go, both by
// Deregister and by a registrar that stops without deregistering, whose
// lease then expires. The same test runs against etcd, to show that it
// holds for the oracle; it asserts behaviour rather than comparing
// answers, since lease expiry is a matter of timers.

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/etcdv3"
	"github.com/go-kit/log"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// gokitTTL is each registration's lease TTL; go-kit's client renews it
// through clientv3's keep-alive, every third of it.
const gokitTTL = 2 * time.Second

func TestGoKitEtcdv3(t *testing.T) {
	for _, target := range []struct {
		name  string
		start func(testing.TB) ([]string, func())
	}{{"cairn", cluster.StartCairn}, {"etcd", cluster.StartEtcd}} {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			eps, _ := target.start(t)
			testGoKit(t, eps)
		})
	}
}

func testGoKit(t *testing.T, eps []string) {
	logger := log.LoggerFunc(func(kv ...any) error { t.Log(kv...); return nil })
	newClient := func() (etcdv3.Client, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		c, err := etcdv3.NewClient(ctx, eps, etcdv3.ClientOptions{DialTimeout: 5 * time.Second})
		if err != nil {
			cancel()
			t.Fatalf("go-kit etcdv3.NewClient: %v", err)
		}
		t.Cleanup(cancel)
		return c, cancel
	}

	watcher, _ := newClient()
	instancer, err := etcdv3.NewInstancer(watcher, "/services/echo/", logger)
	if err != nil {
		t.Fatalf("NewInstancer: %v", err)
	}
	defer instancer.Stop()
	events := make(chan sd.Event, 64)
	instancer.Register(events)
	defer instancer.Deregister(events)
	expect := func(what string, want ...string) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.Err != nil {
					t.Fatalf("%s: instancer error: %v", what, ev.Err)
				}
				got := slices.Sorted(slices.Values(ev.Instances))
				if slices.Equal(got, want) {
					return
				}
				t.Logf("%s: instances %v, waiting for %v", what, got, want)
			case <-deadline:
				t.Fatalf("%s: instancer did not report %v within 15 s", what, want)
			}
		}
	}
	expect("at start")

	ttl := etcdv3.NewTTLOption(gokitTTL/3, gokitTTL)
	c1, _ := newClient()
	r1 := etcdv3.NewRegistrar(c1, etcdv3.Service{Key: "/services/echo/1", Value: "10.0.0.1:8080", TTL: ttl}, logger)
	r1.Register()
	expect("after the first Register", "10.0.0.1:8080")
	c2, stop2 := newClient()
	r2 := etcdv3.NewRegistrar(c2, etcdv3.Service{Key: "/services/echo/2", Value: "10.0.0.2:8080", TTL: ttl}, logger)
	r2.Register()
	expect("after the second Register", "10.0.0.1:8080", "10.0.0.2:8080")
	if c1.LeaseID() == 0 || c2.LeaseID() == 0 {
		t.Fatalf("registrations without a lease: %d, %d", c1.LeaseID(), c2.LeaseID())
	}

	// Heart-beats: nothing changes for two TTLs.
	select {
	case ev := <-events:
		t.Fatalf("instances changed while both registrars keep their leases alive: %v, %v", ev.Instances, ev.Err)
	case <-time.After(2 * gokitTTL):
	}
	entries, err := watcher.GetEntries("/services/echo/")
	if err != nil || len(entries) != 2 {
		t.Fatalf("GetEntries after two TTLs: %v, %v; want both instances", entries, err)
	}

	r1.Deregister()
	expect("after Deregister", "10.0.0.2:8080")

	// The second registrar stops without deregistering: its lease expires.
	stop2()
	stopped := time.Now()
	expect("after the second registrar stopped", []string{}...)
	if d := time.Since(stopped); d < gokitTTL/2 {
		t.Errorf("the instance went %v after its registrar stopped, before its lease could expire (TTL %v)", d, gokitTTL)
	}
}
