package compat

// clientv3 features test.
//
// What it proves: the clientv3 layers that applications build on work
// against Cairn:
//
//   - namespace: KV, Watcher and Lease wrappers confine a client to a key
//     prefix (keys in answers, events and attached-key lists come back
//     without it, and keys outside it stay invisible);
//   - ordering: a KV that checks that revisions never go backwards reports
//     no violation in normal operation;
//   - leasing: a leasing KV caches a key it read (it owns the leasing key,
//     and answers from its cache without the server), another leasing KV's
//     write makes the owner give the key up, and every read returns the
//     value last written;
//   - naming: an endpoints Manager adds endpoints under a lease, lists them
//     and streams updates, and the gRPC resolver (etcd:///service) turns
//     them into the addresses a real gRPC client dials and balances over,
//     following deletes and the lease's revocation.
//
// Each runs against etcd as well, to show that it holds for the oracle;
// they assert behaviour rather than compare answers.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/leasing"
	"go.etcd.io/etcd/client/v3/namespace"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
	"go.etcd.io/etcd/client/v3/naming/resolver"
	"go.etcd.io/etcd/client/v3/ordering"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

func TestClientv3Features(t *testing.T) {
	for _, target := range []struct {
		name  string
		start func(testing.TB) ([]string, func())
	}{{"cairn", cluster.StartCairn}, {"etcd", cluster.StartEtcd}} {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			eps, _ := target.start(t)
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, eps []string)
			}{
				{"namespace", testNamespace},
				{"ordering", testOrdering},
				{"leasing", testLeasing},
				{"naming", testNaming},
			} {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, eps)
				})
			}
		})
	}
}

func keysOf(resp *clientv3.GetResponse) []string {
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key)+"="+string(kv.Value))
	}
	return keys
}

// testNamespace drives the namespace wrappers and checks every answer and
// event against the raw keys.
func testNamespace(t *testing.T, eps []string) {
	ctx, cancel := context.WithTimeout(context.Background(), concurrencyTimeout)
	defer cancel()
	c := newClient(t, eps)
	const pfx = "ns1/"
	kv, w, l := namespace.NewKV(c.KV, pfx), namespace.NewWatcher(c.Watcher, pfx), namespace.NewLease(c.Lease, pfx)
	defer w.Close()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := c.Put(ctx, "outside", "x")
	must("put outside", err)
	_, err = c.Put(ctx, "ns10", "sibling") // shares the prefix's bytes but not its slash
	must("put ns10", err)

	wch := w.Watch(ctx, "k", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	if wr := <-wch; !wr.Created {
		t.Fatalf("namespaced watch: first response %+v, want created", wr)
	}
	all := w.Watch(ctx, "", clientv3.WithFromKey(), clientv3.WithCreatedNotify())
	if wr := <-all; !wr.Created {
		t.Fatalf("namespaced watch of every key: first response %+v, want created", wr)
	}

	_, err = kv.Put(ctx, "k1", "v1")
	must("put k1", err)
	_, err = kv.Put(ctx, "k2", "v2")
	must("put k2", err)
	raw, err := c.Get(ctx, pfx+"k1")
	must("raw get", err)
	if got := keysOf(raw); !slices.Equal(got, []string{"ns1/k1=v1"}) {
		t.Errorf("raw get ns1/k1: got %v, want [ns1/k1=v1]", got)
	}
	got, err := kv.Get(ctx, "k", clientv3.WithPrefix())
	must("get k prefix", err)
	if keys := keysOf(got); !slices.Equal(keys, []string{"k1=v1", "k2=v2"}) {
		t.Errorf("namespaced get of prefix k: got %v, want [k1=v1 k2=v2]", keys)
	}
	got, err = kv.Get(ctx, "", clientv3.WithFromKey())
	must("get from key", err)
	if keys := keysOf(got); !slices.Equal(keys, []string{"k1=v1", "k2=v2"}) {
		t.Errorf("namespaced get of every key: got %v, want only the namespace's [k1=v1 k2=v2]", keys)
	}
	dr, err := kv.Delete(ctx, "k1", clientv3.WithPrevKV())
	must("delete k1", err)
	if dr.Deleted != 1 || len(dr.PrevKvs) != 1 || string(dr.PrevKvs[0].Key) != "k1" {
		t.Errorf("namespaced delete: deleted %d, prev kvs %v; want k1", dr.Deleted, dr.PrevKvs)
	}
	tr, err := kv.Txn(ctx).If(clientv3.Compare(clientv3.Value("k2"), "=", "v2")).
		Then(clientv3.OpPut("k3", "v3"), clientv3.OpGet("k", clientv3.WithPrefix())).Commit()
	must("txn", err)
	if !tr.Succeeded {
		t.Fatalf("namespaced txn: compare on k2 failed")
	}
	if keys := keysOf((*clientv3.GetResponse)(tr.Responses[1].GetResponseRange())); !slices.Equal(keys, []string{"k2=v2", "k3=v3"}) {
		t.Errorf("namespaced txn get: got %v, want [k2=v2 k3=v3]", keys)
	}

	lr, err := l.Grant(ctx, 60)
	must("grant", err)
	_, err = kv.Put(ctx, "leased", "x", clientv3.WithLease(lr.ID))
	must("put with lease", err)
	ttl, err := l.TimeToLive(ctx, lr.ID, clientv3.WithAttachedKeys())
	must("time to live", err)
	if len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "leased" {
		t.Errorf("namespaced TimeToLive keys: got %q, want [leased]", ttl.Keys)
	}
	leases, err := l.Leases(ctx)
	must("leases", err)
	// Leases are not namespaced: the list holds other clients' leases too.
	if !slices.ContainsFunc(leases.Leases, func(s clientv3.LeaseStatus) bool { return s.ID == lr.ID }) {
		t.Errorf("namespaced Leases: got %v, want it to hold %x", leases.Leases, lr.ID)
	}
	_, err = l.Revoke(ctx, lr.ID)
	must("revoke", err)
	got, err = kv.Get(ctx, "leased")
	must("get leased", err)
	if len(got.Kvs) != 0 {
		t.Errorf("namespaced key of a revoked lease: got %v, want none", keysOf(got))
	}
	_, err = c.Put(ctx, "outside", "y") // no event in the namespace
	must("put outside", err)
	_, err = kv.Put(ctx, "z", "last")
	must("put z", err)

	want := []string{"PUT k1=v1", "PUT k2=v2", "DELETE k1 prev=v1", "PUT k3=v3"}
	if got := collectEvents(t, wch, len(want)); !slices.Equal(got, want) {
		t.Errorf("namespaced watch of prefix k: got %v, want %v", got, want)
	}
	wantAll := []string{"PUT k1=v1", "PUT k2=v2", "DELETE k1", "PUT k3=v3", "PUT leased=x", "DELETE leased", "PUT z=last"}
	if got := collectEvents(t, all, len(wantAll)); !slices.Equal(got, wantAll) {
		t.Errorf("namespaced watch of every key: got %v, want %v", got, wantAll)
	}
}

// collectEvents reads n events from wch, printed as "PUT key=value" or
// "DELETE key" with " prev=value" when the event has one.
func collectEvents(t *testing.T, wch clientv3.WatchChan, n int) []string {
	t.Helper()
	var out []string
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				t.Fatalf("watch ended after %v: %v", out, wr.Err())
			}
			for _, ev := range wr.Events {
				s := fmt.Sprintf("%s %s", ev.Type, ev.Kv.Key)
				if ev.Type == clientv3.EventTypePut {
					s += "=" + string(ev.Kv.Value)
				}
				if ev.PrevKv != nil {
					s += " prev=" + string(ev.PrevKv.Value)
				}
				out = append(out, s)
			}
		case <-timeout:
			t.Fatalf("got %d events after 10 s, want %d: %v", len(out), n, out)
		}
	}
	return out
}

// testOrdering runs reads and writes, from this client and another one,
// through an ordering KV: none sees a revision older than one it saw.
func testOrdering(t *testing.T, eps []string) {
	ctx, cancel := context.WithTimeout(context.Background(), concurrencyTimeout)
	defer cancel()
	c, other := newClient(t, eps), newClient(t, eps)
	var violations atomic.Int32
	okv := ordering.NewKV(c.KV, func(op clientv3.Op, resp clientv3.OpResponse, prevRev int64) error {
		violations.Add(1)
		return fmt.Errorf("ordering violation: revision %d after %d", revisionOf(resp), prevRev)
	})
	last := int64(0)
	for i := range 30 {
		if _, err := other.Put(ctx, "o/other", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := okv.Put(ctx, "o/mine", fmt.Sprint(i)); err != nil {
			t.Fatalf("ordering put %d: %v", i, err)
		}
		resp, err := okv.Get(ctx, "o/", clientv3.WithPrefix())
		if err != nil {
			t.Fatalf("ordering get %d: %v", i, err)
		}
		if resp.Header.Revision <= last {
			t.Fatalf("get %d at revision %d, after %d", i, resp.Header.Revision, last)
		}
		last = resp.Header.Revision
		if _, err := okv.Get(ctx, "o/mine", clientv3.WithSerializable()); err != nil {
			t.Fatalf("ordering serializable get %d: %v", i, err)
		}
		tr, err := okv.Txn(ctx).If(clientv3.Compare(clientv3.Value("o/mine"), "=", fmt.Sprint(i))).
			Then(clientv3.OpGet("o/other")).Commit()
		if err != nil || !tr.Succeeded {
			t.Fatalf("ordering txn %d: %v, succeeded %v", i, err, tr != nil && tr.Succeeded)
		}
	}
	if n := violations.Load(); n != 0 {
		t.Errorf("%d ordering violations", n)
	}
}

func revisionOf(resp clientv3.OpResponse) int64 {
	switch {
	case resp.Get() != nil:
		return resp.Get().Header.Revision
	case resp.Put() != nil:
		return resp.Put().Header.Revision
	case resp.Del() != nil:
		return resp.Del().Header.Revision
	case resp.Txn() != nil:
		return resp.Txn().Header.Revision
	}
	return 0
}

// testLeasing has two leasing KVs on one prefix and a plain client: a read
// makes its leasing KV own the key and cache it; the other leasing KV's
// write makes the owner give the key up; reads return the last value.
func testLeasing(t *testing.T, eps []string) {
	ctx, cancel := context.WithTimeout(context.Background(), concurrencyTimeout)
	defer cancel()
	const pfx = "leasing/"
	plain := newClient(t, eps)
	lkv1, close1, err := leasing.NewKV(newClient(t, eps), pfx)
	if err != nil {
		t.Fatalf("leasing.NewKV: %v", err)
	}
	defer close1()
	lkv2, close2, err := leasing.NewKV(newClient(t, eps), pfx)
	if err != nil {
		t.Fatalf("leasing.NewKV: %v", err)
	}
	defer close2()
	get := func(who string, kv clientv3.KV, key, want string) *clientv3.GetResponse {
		t.Helper()
		resp, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatalf("%s get %s: %v", who, key, err)
		}
		got := ""
		if len(resp.Kvs) > 0 {
			got = string(resp.Kvs[0].Value)
		}
		if got != want {
			t.Fatalf("%s get %s: got %q, want %q", who, key, got, want)
		}
		return resp
	}
	owned := func(key string) bool {
		t.Helper()
		resp, err := plain.Get(ctx, pfx+key)
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Kvs) == 1 && resp.Kvs[0].Lease != 0
	}

	if _, err := lkv1.Put(ctx, "abc", "v1"); err != nil {
		t.Fatalf("leasing put: %v", err)
	}
	first := get("lkv1", lkv1, "abc", "v1")
	if !owned("abc") {
		t.Fatalf("after lkv1 read abc, no leasing key %sabc under a lease", pfx)
	}
	// An unrelated write moves the store on; a cached answer stays at the
	// revision it was read at, a server's would not.
	if _, err := plain.Put(ctx, "unrelated", "x"); err != nil {
		t.Fatal(err)
	}
	cached := get("lkv1 (cached)", lkv1, "abc", "v1")
	if cached.Header.Revision != first.Header.Revision {
		t.Errorf("lkv1's second read of abc at revision %d, the first at %d: not served from its cache", cached.Header.Revision, first.Header.Revision)
	}

	if _, err := lkv2.Put(ctx, "abc", "v2"); err != nil {
		t.Fatalf("lkv2 put: %v", err)
	}
	get("lkv1 after lkv2's write", lkv1, "abc", "v2")
	get("lkv2", lkv2, "abc", "v2")
	get("plain", plain, "abc", "v2")
	if _, err := lkv1.Delete(ctx, "abc"); err != nil {
		t.Fatalf("lkv1 delete: %v", err)
	}
	get("lkv2 after lkv1's delete", lkv2, "abc", "")
	if _, err := lkv2.Put(ctx, "abc", "v3"); err != nil {
		t.Fatalf("lkv2 put: %v", err)
	}
	tr, err := lkv1.Txn(ctx).If(clientv3.Compare(clientv3.Value("abc"), "=", "v3")).
		Then(clientv3.OpPut("abc", "v4")).Commit()
	if err != nil || !tr.Succeeded {
		t.Fatalf("lkv1 txn on abc=v3: %v, succeeded %v", err, tr != nil && tr.Succeeded)
	}
	get("lkv2 after lkv1's txn", lkv2, "abc", "v4")
	get("lkv1", lkv1, "abc", "v4")
	get("plain", plain, "abc", "v4")
}

// testNaming registers two gRPC servers as endpoints of a service and
// dials etcd:///svc through the resolver: calls reach both, then only the
// one left, then none once the lease is revoked.
func testNaming(t *testing.T, eps []string) {
	ctx, cancel := context.WithTimeout(context.Background(), concurrencyTimeout)
	defer cancel()
	c := newClient(t, eps)
	var hits [2]atomic.Int32
	var addrs [2]string
	for i := range 2 {
		addrs[i] = startHealthServer(t, &hits[i])
	}

	const service = "naming-test/svc"
	em, err := endpoints.NewManager(c, service)
	if err != nil {
		t.Fatalf("endpoints.NewManager: %v", err)
	}
	lease, err := c.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	keys := [2]string{service + "/a", service + "/b"}
	for i := range 2 {
		if err := em.AddEndpoint(ctx, keys[i], endpoints.Endpoint{Addr: addrs[i]}, clientv3.WithLease(lease.ID)); err != nil {
			t.Fatalf("AddEndpoint: %v", err)
		}
	}
	list, err := em.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 2 || list[keys[0]].Addr != addrs[0] || list[keys[1]].Addr != addrs[1] {
		t.Fatalf("List: got %v, want %s at %s and %s at %s", list, keys[0], addrs[0], keys[1], addrs[1])
	}
	wch, err := em.NewWatchChannel(ctx)
	if err != nil {
		t.Fatalf("NewWatchChannel: %v", err)
	}
	if ups := <-wch; len(ups) != 2 {
		t.Fatalf("first update of the watch channel: got %v, want the two endpoints", ups)
	}

	builder, err := resolver.NewBuilder(c)
	if err != nil {
		t.Fatalf("resolver.NewBuilder: %v", err)
	}
	conn, err := grpc.NewClient("etcd:///"+service, grpc.WithResolvers(builder),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		t.Fatalf("dial etcd:///%s: %v", service, err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	// callsReach makes calls until the servers in want get them and the
	// others get none for 20 calls in a row.
	callsReach := func(what string, want [2]bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			before := [2]int32{hits[0].Load(), hits[1].Load()}
			for range 20 {
				if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
					t.Fatalf("%s: health check through etcd:///%s: %v", what, service, err)
				}
			}
			var got [2]bool
			for i := range 2 {
				got[i] = hits[i].Load() > before[i]
			}
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: calls reached servers %v, want %v", what, got, want)
			}
		}
	}
	callsReach("both endpoints", [2]bool{true, true})

	if err := em.DeleteEndpoint(ctx, keys[0]); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	if ups := <-wch; len(ups) != 1 || ups[0].Op != endpoints.Delete || ups[0].Key != keys[0] {
		t.Fatalf("update after DeleteEndpoint: got %+v, want the delete of %s", ups, keys[0])
	}
	callsReach("after deleting the first endpoint", [2]bool{false, true})

	if _, err := c.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	if ups := <-wch; len(ups) != 1 || ups[0].Op != endpoints.Delete || ups[0].Key != keys[1] {
		t.Fatalf("update after revoking the lease: got %+v, want the delete of %s", ups, keys[1])
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := hc.Check(short, &healthpb.HealthCheckRequest{})
		cancel()
		if code := status.Code(err); code == codes.Unavailable || code == codes.DeadlineExceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still succeed 10 s after the last endpoint's lease was revoked (err %v)", err)
		}
	}
}

// startHealthServer starts a gRPC health server on 127.0.0.1 that counts
// the calls it serves, and returns its address.
func startHealthServer(t *testing.T, hits *atomic.Int32) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		hits.Add(1)
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("health server: %v", err)
		}
	})
	return ln.Addr().String()
}
