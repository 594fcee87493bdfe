package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
)

// startExampleServer runs a fresh in-process Cairn for one example, so
// that the revisions it prints are always the same. Real programs connect
// to a running cluster instead.
func startExampleServer() (endpoints []string, stop func()) {
	srv, err := cairntest.StartServer()
	if err != nil {
		log.Fatal(err)
	}
	return srv.Endpoints(), func() { srv.Close() }
}

func Example() {
	endpoints, stop := startExampleServer()
	defer stop()

	c, err := client.New(client.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	rev, err := c.Put(ctx, "/greeting", "hello")
	if err != nil {
		log.Fatal(err)
	}
	kv, err := c.Get(ctx, "/greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("put at revision %d; %s=%s (version %d)\n", rev, kv.Key, kv.Value, kv.Version)
	if _, err := c.Get(ctx, "/nothing"); errors.Is(err, client.ErrNotFound) {
		fmt.Println("/nothing: not found")
	}
	// Output:
	// put at revision 2; /greeting=hello (version 1)
	// /nothing: not found
}

func ExampleParseConnectionString() {
	cfg, err := client.ParseConnectionString("Server=10.0.0.1:2379|10.0.0.2:2379,DialTimeout=3000,MaxCallRecvMsgSize=8388608")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Endpoints, cfg.DialTimeout, cfg.MaxCallRecvMsgSize)

	_, err = client.ParseConnectionString("Server=10.0.0.1:2379,DialTimeout=3s")
	fmt.Println(err)
	// Output:
	// [10.0.0.1:2379 10.0.0.2:2379] 3s 8388608
	// client: connection string: DialTimeout: "3s" is not a whole number of milliseconds between 0 and 9223372036854
}

func ExampleClient_GetPrefix() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, _ := client.New(client.Config{Endpoints: endpoints})
	defer c.Close()
	ctx := context.Background()

	c.Put(ctx, "/app/b", "2")
	c.Put(ctx, "/app/a", "1")
	r, err := c.GetPrefix(ctx, "/app/")
	if err != nil {
		log.Fatal(err)
	}
	for _, kv := range r.KVs {
		fmt.Printf("%s=%s (mod revision %d)\n", kv.Key, kv.Value, kv.ModRevision)
	}
	fmt.Println("read at revision", r.Revision)
	// Output:
	// /app/a=1 (mod revision 3)
	// /app/b=2 (mod revision 2)
	// read at revision 3
}

func ExampleClient_CompareAndSwap() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, _ := client.New(client.Config{Endpoints: endpoints})
	defer c.Close()
	ctx := context.Background()

	// 0: create only if absent.
	ok, rev, _ := c.CompareAndSwap(ctx, "/leader", 0, "a")
	fmt.Println("a created:", ok, "at", rev)
	ok, cur, _ := c.CompareAndSwap(ctx, "/leader", 0, "b")
	fmt.Println("b created:", ok, "; current mod revision", cur)
	ok, rev, _ = c.CompareAndSwap(ctx, "/leader", cur, "b")
	fmt.Println("b swapped:", ok, "at", rev)
	// Output:
	// a created: true at 2
	// b created: false ; current mod revision 2
	// b swapped: true at 3
}

func ExampleGetJSON() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, _ := client.New(client.Config{Endpoints: endpoints})
	defer c.Close()
	ctx := context.Background()

	type Limits struct {
		RPS   int `json:"rps"`
		Burst int `json:"burst"`
	}
	if _, err := client.PutJSON(ctx, c, "/limits", Limits{RPS: 100, Burst: 20}); err != nil {
		log.Fatal(err)
	}
	// Read, change, and write back only if nobody wrote in between.
	l, kv, err := client.GetJSON[Limits](ctx, c, "/limits")
	if err != nil {
		log.Fatal(err)
	}
	l.RPS *= 2
	ok, _, err := client.CompareAndSwapJSON(ctx, c, "/limits", kv.ModRevision, l)
	fmt.Println(ok, err)
	raw, _ := c.Get(ctx, "/limits")
	fmt.Println(raw.Value)
	// Output:
	// true <nil>
	// {"rps":200,"burst":20}
}

func ExampleClient_Watch() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, _ := client.New(client.Config{Endpoints: endpoints})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	events := make(chan client.Event, 10)
	w, err := c.WatchPrefix(ctx, "/jobs/", func(ev client.Event) { events <- ev })
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()

	c.Put(ctx, "/jobs/1", "queued")
	c.Put(ctx, "/jobs/1", "running")
	c.Delete(ctx, "/jobs/1")
	for range 3 {
		ev := <-events
		fmt.Printf("%s %s %q at %d\n", ev.Type, ev.KV.Key, ev.KV.Value, ev.Revision)
	}
	// Output:
	// CREATE /jobs/1 "queued" at 2
	// MODIFY /jobs/1 "running" at 3
	// DELETE /jobs/1 "" at 4
}

func ExampleClient_LeaseKeepAlive() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, _ := client.New(client.Config{Endpoints: endpoints})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	lease, err := c.LeaseGrant(ctx, 2*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	c.Put(ctx, "/nodes/n1", "alive", client.WithLease(lease.ID))
	ka, err := c.LeaseKeepAlive(ctx, lease.ID) // until ctx ends
	if err != nil {
		log.Fatal(err)
	}
	info, _ := c.LeaseInfo(ctx, lease.ID)
	fmt.Println("granted", lease.TTL, "keys", info.Keys)

	// Revoking deletes the key; the keep-alive reports the lease lost.
	c.LeaseRevoke(ctx, lease.ID)
	<-ka.Done()
	fmt.Println(errors.Is(ka.Err(), client.ErrLeaseLost))
	ok, _ := c.Exists(ctx, "/nodes/n1")
	fmt.Println("key exists:", ok)
	// Output:
	// granted 2s keys [/nodes/n1]
	// true
	// key exists: false
}

func ExampleClient_Lock() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, _ := client.New(client.Config{Endpoints: endpoints})
	defer c.Close()
	ctx := context.Background()

	lk, err := c.Lock(ctx, "/locks/report", 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	// Fence the protected write: it only applies while we hold the lock.
	resp, err := c.Etcd().Txn(ctx).If(lk.IsOwner()).
		Then(clientv3.OpPut("/report/owner", fmt.Sprint(lk.FencingToken()))).Commit()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("fenced write applied:", resp.Succeeded, "token", lk.FencingToken())

	_, err = c.TryLock(ctx, "/locks/report", 10*time.Second)
	fmt.Println("second TryLock:", errors.Is(err, client.ErrLocked))

	select {
	case <-lk.Lost():
		fmt.Println("lock lost: stop working")
	default:
	}
	fmt.Println("unlock:", lk.Unlock(ctx))
	// Output:
	// fenced write applied: true token 2
	// second TryLock: true
	// unlock: <nil>
}

func ExampleClient_Campaign() {
	endpoints, stop := startExampleServer()
	defer stop()
	c, _ := client.New(client.Config{Endpoints: endpoints})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	leaders := make(chan client.Leader, 10)
	w, _ := c.Observe(ctx, "/elections/scheduler", func(l client.Leader) { leaders <- l })
	defer w.Stop()
	fmt.Printf("leader: %q\n", (<-leaders).Value)

	l, err := c.Campaign(ctx, "/elections/scheduler", "node-1", 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("leader: %q\n", (<-leaders).Value)
	l.Proclaim(ctx, "node-1 (v2)")
	fmt.Printf("leader: %q\n", (<-leaders).Value)
	l.Resign(ctx)
	fmt.Printf("leader: %q\n", (<-leaders).Value)
	// Output:
	// leader: ""
	// leader: "node-1"
	// leader: "node-1 (v2)"
	// leader: ""
}
