package compat

// Bootstrap by v3 discovery (etcd 3.6+'s --discovery-token protocol) with
// an etcd 3.7.4 as the discovery service: three Cairn members form a
// cluster, and a member that comes too late, or names an unknown token,
// fails with the error an etcd 3.7.4 member gets on the same token.

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	etcdembed "go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
	"github.com/cairn-kv/cairn/discovery"
	cairnembed "github.com/cairn-kv/cairn/embed"
)

// discoveryCairn is the config of a Cairn member that bootstraps by v3
// discovery on token at the etcd endpoint.
func discoveryCairn(t *testing.T, name, endpoint, token string) cairnembed.Config {
	t.Helper()
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	return cairnembed.Config{
		Name:             name,
		Dir:              filepath.Join(t.TempDir(), name),
		ListenClientURLs: []url.URL{{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}},
		ListenPeerURLs:   []url.URL{{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}},
		Discovery:        cairnembed.DiscoveryConfig{V3: discovery.V3Config{Token: token, Endpoints: []string{endpoint}}},
		UnsafeNoFsync:    true,
		HeartbeatMs:      20,
		ElectionMs:       200,
		Logger:           slog.New(slog.DiscardHandler),
	}
}

// etcdDiscoveryError starts an etcd 3.7.4 member on token and returns the
// error StartEtcd fails with ("" if it started).
func etcdDiscoveryError(t *testing.T, name, endpoint, token string, opts ...func(*etcdembed.Config)) string {
	t.Helper()
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := etcdembed.NewConfig()
	cfg.Name = name
	cfg.Dir = filepath.Join(t.TempDir(), name)
	cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = ""
	cfg.DiscoveryCfg.Token = token
	cfg.DiscoveryCfg.Endpoints = []string{endpoint}
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(t.TempDir(), "etcd.log")}
	for _, o := range opts {
		o(cfg)
	}
	e, err := etcdembed.StartEtcd(cfg)
	if err == nil {
		e.Close()
		return ""
	}
	return err.Error()
}

// startCairnsTogether starts three Cairn members c1, c2, c3 with the
// configs cfg gives, all at once (each Start returns only once the
// discovered cluster runs), and closes them when the test ends.
func startCairnsTogether(t *testing.T, cfg func(name string) cairnembed.Config) []*cairnembed.Server {
	t.Helper()
	var wg sync.WaitGroup
	srvs := make([]*cairnembed.Server, 3)
	errs := make([]error, 3)
	for i := range srvs {
		c := cfg(fmt.Sprintf("c%d", i+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			srvs[i], errs[i] = cairnembed.Start(c)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Cleanup(func() { srvs[i].Close() })
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member c%d: %v", i+1, err)
		}
	}
	return srvs
}

func TestDiscoveryV3AgainstEtcd(t *testing.T) {
	eps, cleanup := cluster.StartEtcd(t)
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token, err := discovery.NewV3Token(ctx, discovery.V3Config{Endpoints: eps}, 3)
	if err != nil {
		t.Fatal(err)
	}

	srvs := startCairnsTogether(t, func(name string) cairnembed.Config {
		return discoveryCairn(t, name, eps[0], token)
	})
	cli, err := clientv3.New(clientv3.Config{Endpoints: srvs[0].ClientEndpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list.Members {
		names = append(names, m.Name)
	}
	if len(names) != 3 {
		t.Fatalf("members %v, want c1, c2, c3", names)
	}

	// The registry on etcd: _config/size and one key per member ID.
	ecli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer ecli.Close()
	reg, err := ecli.Get(ctx, "/_etcd/registry/"+token+"/members/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range list.Members {
		ids["/_etcd/registry/"+token+"/members/"+strconv.FormatUint(m.ID, 16)] = true
	}
	for _, kv := range reg.Kvs {
		if !ids[string(kv.Key)] {
			t.Errorf("registry key %s is no member's ID (members %v)", kv.Key, ids)
		}
	}
	if len(reg.Kvs) != 3 {
		t.Errorf("registry holds %d members, want 3", len(reg.Kvs))
	}

	// Too late, and an unknown token: Cairn's error is etcd's.
	for _, tc := range []struct{ name, token string }{{"full", token}, {"unknown", "no-such-token"}} {
		t.Run(tc.name, func(t *testing.T) {
			want := etcdDiscoveryError(t, "late", eps[0], tc.token)
			if want == "" {
				t.Fatal("etcd started")
			}
			cfg := discoveryCairn(t, "late", eps[0], tc.token)
			_, err := cairnembed.Start(cfg)
			if err == nil {
				t.Fatal("cairn started")
			}
			if err.Error() != want {
				t.Errorf("cairn: %q\n etcd: %q", err, want)
			}
			if _, serr := os.Stat(cfg.Dir); !os.IsNotExist(serr) {
				t.Errorf("cairn left a data dir behind (%v)", serr)
			}
			if !strings.Contains(want, "discovery") {
				t.Errorf("etcd's error %q is not a discovery error", want)
			}
		})
	}
}

// With auth enabled on the etcd discovery service, a member authenticates
// with --discovery-user (user:password, split as etcd's help says) and
// bootstraps; with a wrong password it fails as etcd's member does.
func TestDiscoveryV3AuthAgainstEtcd(t *testing.T) {
	eps, cleanup := cluster.StartEtcd(t)
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token, err := discovery.NewV3Token(ctx, discovery.V3Config{Endpoints: eps}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ecli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer ecli.Close()
	if _, err := ecli.UserAdd(ctx, "root", "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := ecli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := ecli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}

	bad := discoveryCairn(t, "bad", eps[0], token)
	bad.Discovery.V3.Username, bad.Discovery.V3.Password = "root", "wrong"
	_, err = cairnembed.Start(bad)
	want := etcdDiscoveryError(t, "bad", eps[0], token, func(c *etcdembed.Config) {
		c.DiscoveryCfg.Auth.Username, c.DiscoveryCfg.Auth.Password = "root", "wrong"
	})
	if err == nil || err.Error() != want || !strings.Contains(want, "authentication failed, invalid user ID or password") {
		t.Fatalf("wrong password: cairn %v\n etcd %s", err, want)
	}

	cfg := discoveryCairn(t, "solo", eps[0], token)
	cfg.Discovery.V3.Username = "root:secret"
	srv, err := cairnembed.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.MemberList(ctx)
	if err != nil || len(list.Members) != 1 || list.Members[0].Name != "solo" {
		t.Fatalf("member list %v, %v", list, err)
	}
}

// The other way round: three etcd 3.7.4 members bootstrap by v3 discovery
// with a Cairn as the discovery service.
func TestEtcdDiscoveryV3AgainstCairn(t *testing.T) {
	eps, cleanup := cluster.StartCairn(t)
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token, err := discovery.NewV3Token(ctx, discovery.V3Config{Endpoints: eps}, 3)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	etcds := make([]*etcdembed.Etcd, 3)
	errs := make([]error, 3)
	for i := range etcds {
		ports, err := cluster.FreePorts(2)
		if err != nil {
			t.Fatal(err)
		}
		cfg := etcdembed.NewConfig()
		cfg.Name = fmt.Sprintf("e%d", i+1)
		cfg.Dir = filepath.Join(t.TempDir(), cfg.Name)
		cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
		pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfg.InitialCluster = ""
		cfg.DiscoveryCfg.Token = token
		cfg.DiscoveryCfg.Endpoints = eps
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{filepath.Join(t.TempDir(), "etcd.log")}
		cfg.UnsafeNoFsync = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			etcds[i], errs[i] = etcdembed.StartEtcd(cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("etcd e%d: %v", i+1, err)
		}
		defer etcds[i].Close()
	}
	for i, e := range etcds {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(time.Minute):
			t.Fatalf("etcd e%d not ready", i+1)
		}
		if n := len(e.Server.Cluster().Members()); n != 3 {
			t.Fatalf("etcd e%d sees %d members, want 3", i+1, n)
		}
	}
}
