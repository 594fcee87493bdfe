package embed

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Keep-alives and revokes answer as etcd's under every setting of etcd
// 3.7's FastLeaseKeepAlive and PriorityRequest gates, and a gate name etcd
// does not know stops Start.
func TestLeaseFeatureGates(t *testing.T) {
	for _, gates := range []map[string]bool{
		nil, // FastLeaseKeepAlive on, PriorityRequest off
		{"FastLeaseKeepAlive": false, "PriorityRequest": true},
	} {
		cfg := testConfig(t.TempDir())
		cfg.FeatureGates = gates
		srv, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		g, err := cli.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		ka, err := cli.KeepAliveOnce(ctx, g.ID)
		if err != nil || ka.TTL != 30 || ka.ID != g.ID {
			t.Errorf("gates %v: KeepAliveOnce: %v, %v; want TTL 30", gates, ka, err)
		}
		if _, err := cli.KeepAliveOnce(ctx, g.ID+1); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Errorf("gates %v: KeepAliveOnce of an unknown lease: got %v, want %v", gates, err, rpctypes.ErrLeaseNotFound)
		}
		if _, err := cli.Revoke(ctx, g.ID); err != nil {
			t.Errorf("gates %v: Revoke: %v", gates, err)
		}
		if _, err := cli.KeepAliveOnce(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Errorf("gates %v: KeepAliveOnce of a revoked lease: got %v, want %v", gates, err, rpctypes.ErrLeaseNotFound)
		}
		cancel()
		cli.Close()
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t.TempDir())
	cfg.FeatureGates = map[string]bool{"NoSuchGate": true}
	if srv, err := Start(cfg); err == nil {
		srv.Close()
		t.Error("Start accepted an unknown feature gate")
	}
}
