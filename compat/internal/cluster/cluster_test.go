package cluster

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestStart checks that both launchers return a member that serves a write
// and a read, and that cleanup may be called twice.
func TestStart(t *testing.T) {
	for name, start := range map[string]func(testing.TB) ([]string, func()){
		"cairn": StartCairn,
		"etcd":  StartEtcd,
	} {
		t.Run(name, func(t *testing.T) {
			t0 := time.Now()
			eps, cleanup := start(t)
			t.Logf("%s ready in %v at %v", name, time.Since(t0), eps)
			c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.Put(ctx, "k", "v"); err != nil {
				t.Fatalf("put: %v", err)
			}
			resp, err := c.Get(ctx, "k")
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
				t.Fatalf("get k: got %v, want one kv with value v", resp.Kvs)
			}
			c.Close()
			t1 := time.Now()
			cleanup()
			cleanup()
			t.Logf("%s closed in %v", name, time.Since(t1))
		})
	}
}
