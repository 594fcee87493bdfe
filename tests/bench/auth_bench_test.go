package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/embed"
)

// The auth benchmarks share a member of their own, with auth enabled and
// etcd's default bcrypt cost (10).
var authShared struct {
	once sync.Once
	srv  *embed.Server
	err  error
	// users and anons are made once per run: each user client
	// authenticates when it connects, which costs a bcrypt comparison.
	clients      sync.Once
	users, anons []*clientv3.Client
}

const (
	authConns   = 100 // clients putting, each its own connection and token
	authHammers = 50  // clients sending Authenticate with a wrong password
)

func authServer(b *testing.B) string {
	b.Helper()
	authShared.once.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-bench-auth-")
		if err != nil {
			authShared.err = err
			return
		}
		local := []url.URL{{Scheme: "http", Host: "127.0.0.1:0"}}
		authShared.srv, authShared.err = embed.Start(embed.Config{
			Dir: filepath.Join(dir, "data"), ListenClientURLs: local, ListenPeerURLs: local,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if authShared.err != nil {
			return
		}
		ep := authShared.srv.ClientEndpoints()[0]
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Logger: zap.NewNop()})
		if err != nil {
			authShared.err = err
			return
		}
		defer cli.Close()
		ctx := context.Background()
		for _, f := range []func() error{
			func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
			func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
			func() error { _, err := cli.RoleAdd(ctx, "w"); return err },
			func() error {
				_, err := cli.RoleGrantPermission(ctx, "w", "\x00", "\x00", clientv3.PermissionType(clientv3.PermReadWrite))
				return err
			},
			func() error { _, err := cli.UserAdd(ctx, "u", "upw"); return err },
			func() error { _, err := cli.UserGrantRole(ctx, "u", "w"); return err },
			func() error { _, err := cli.AuthEnable(ctx); return err },
		} {
			if authShared.err = f(); authShared.err != nil {
				return
			}
		}
	})
	if authShared.err != nil {
		b.Fatalf("start cairn with auth: %v", authShared.err)
	}
	return authShared.srv.ClientEndpoints()[0]
}

// authClients returns the run's authConns clients of user u and
// authHammers anonymous ones (never closed: the run ends with them).
func authClients(b *testing.B) (users, anons []*clientv3.Client) {
	b.Helper()
	ep := authServer(b)
	var err error
	authShared.clients.Do(func() {
		dial := func(user, password string) *clientv3.Client {
			c, derr := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 60 * time.Second, Logger: zap.NewNop(),
				Username: user, Password: password})
			if derr != nil {
				err = derr
			}
			return c
		}
		for range authConns {
			authShared.users = append(authShared.users, dial("u", "upw"))
		}
		for range authHammers {
			authShared.anons = append(authShared.anons, dial("", ""))
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return authShared.users, authShared.anons
}

// BenchmarkAuthPutParallel: puts of a non-root user whose role covers
// every key (so each put is checked against its permissions), over
// authConns connections, sequential keys.
func BenchmarkAuthPutParallel(b *testing.B) { benchAuthPut(b, false) }

// BenchmarkAuthPutParallelWrongPasswords: the same while authHammers
// clients send Authenticate with a wrong password as fast as they are
// answered (issue 17: put throughput must stay at least 80% of the run
// without them).
func BenchmarkAuthPutParallelWrongPasswords(b *testing.B) { benchAuthPut(b, true) }

func benchAuthPut(b *testing.B, hammer bool) {
	clis, anon := authClients(b)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int64
	if hammer {
		for _, c := range anon {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := c.Authenticate(ctx, "u", "wrong")
					cancel()
					if err != nil && errors.Is(err, rpctypes.ErrAuthFailed) {
						failed.Add(1)
					}
				}
			}()
		}
		time.Sleep(500 * time.Millisecond) // let the hammering start
	}
	runParallelPuts(b, clis)
	b.StopTimer()
	close(stop)
	wg.Wait()
	if hammer {
		b.ReportMetric(float64(failed.Load())/b.Elapsed().Seconds(), "failed-auths/s")
	}
}

// BenchmarkAuthRangeSerializableParallel: many concurrent one-key local
// reads by user u (token check and permission check on each), as
// BenchmarkRangeSerializableParallel does without auth.
func BenchmarkAuthRangeSerializableParallel(b *testing.B) {
	clis, _ := authClients(b)
	authRangeKeys.Do(func() { rangeKeysAuth(b, clis[0]) })
	ctx := context.Background()
	runParallel(b, clis, func(cli *clientv3.Client, i int64) error {
		key := rangeKey(i)
		resp, err := cli.Get(ctx, key, clientv3.WithSerializable())
		if err != nil {
			return fmt.Errorf("get %s: %v", key, err)
		}
		if len(resp.Kvs) != 1 {
			return fmt.Errorf("get %s: %d keys, want 1", key, len(resp.Kvs))
		}
		return nil
	})
}

var authRangeKeys sync.Once

// rangeKeysAuth loads the range keys into the auth member.
func rangeKeysAuth(b *testing.B, cli *clientv3.Client) {
	ctx := context.Background()
	for p := 0; p < rangePrefixes; p++ {
		var ops []clientv3.Op
		for k := 0; k < rangePerPref; k++ {
			ops = append(ops, clientv3.OpPut(rangeKey(int64(p*rangePerPref+k)), value))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
