package e2e

import (
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestLeaseExpiresOnTime: a lease expires no earlier than its TTL after
// its last renewal was sent (the member renews it on receipt) and within
// expirySlack after its TTL since the renewal was acknowledged; its keys go
// with it in one revision. Two leases are renewed once, one never.
func TestLeaseExpiresOnTime(t *testing.T) {
	t.Parallel()
	m := newMember(t)
	m.start(t)
	cli := newClient(t, m)
	defer cli.Close()
	short := grantWithKeys(t, cli, "short", 2*time.Second) // the minimum TTL: 1.5 election timeouts
	renewed := grantWithKeys(t, cli, "renewed", 3*time.Second)
	idle := grantWithKeys(t, cli, "idle", 4*time.Second)
	leases := []*testLease{short, renewed, idle}
	put(t, cli, unleasedKey)
	ctx, cancel := opCtx()
	now, err := cli.Get(ctx, leasePrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	w := watchFrom(t, cli, leasePrefix, now.Header.Revision+1)

	time.Sleep(time.Second) // renew part-way through the TTL
	keepAliveOnce(t, cli, short)
	keepAliveOnce(t, cli, renewed)

	var wg sync.WaitGroup
	for _, l := range leases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gone := awaitExpiry(t, cli, l, l.renewSent.Add(l.ttl), l.renewAcked.Add(l.ttl+expirySlack))
			t.Logf("%s lease (TTL %v) gone %v after its TTL", l.name, l.ttl, gone.Sub(l.renewAcked.Add(l.ttl)).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	checkDeletes(t, w, leases, now.Header.Revision)
	checkOnlyUnleasedLeft(t, cli)
}
