package compat

// Bootstrap by a v2 discovery URL (etcd <= 3.5's --discovery) whose
// directory lives on etcd 3.5.21's v2 keys API (compat/oracle35, a real
// etcd 3.5 with --enable-v2): three Cairn members form a cluster, and the
// failures carry etcd 3.5's errors.

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
	"github.com/cairn-kv/cairn/discovery"
	cairnembed "github.com/cairn-kv/cairn/embed"
)

func TestDiscoveryV2AgainstEtcd35(t *testing.T) {
	eps, cleanup := cluster.StartEtcd35(t, etcd35(t))
	defer cleanup()
	ep := "http://" + eps[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	durl, err := discovery.NewV2Token(ctx, ep, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	srvs := startCairnsTogether(t, func(name string) cairnembed.Config {
		cfg := discoveryCairn(t, name, "", "")
		cfg.Discovery = cairnembed.DiscoveryConfig{URL: durl}
		return cfg
	})
	cli, err := clientv3.New(clientv3.Config{Endpoints: srvs[2].ClientEndpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.MemberList(ctx)
	if err != nil || len(list.Members) != 3 {
		t.Fatalf("member list %v, %v", list, err)
	}

	// etcd 3.5 members fail with these (checked by hand against an etcd
	// 3.5.21 binary on the same service): the full cluster (with
	// --discovery-fallback=exit), and the v2 error of an unknown token.
	for _, tc := range []struct{ name, durl, want string }{
		{"full", durl, "failed to join discovery cluster (discovery: cluster is full)"},
		{"unknown", ep + "/v2/keys/discovery/nosuch", "failed to join discovery cluster (100: Key not found (/discovery/nosuch) ["},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := discoveryCairn(t, "late", "", "")
			cfg.Discovery = cairnembed.DiscoveryConfig{URL: tc.durl}
			_, err := cairnembed.Start(cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s...", err, tc.want)
			}
		})
	}
}
