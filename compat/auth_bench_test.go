package compat

// Benchmarks of authenticated KV requests against unauthenticated ones,
// on Cairn and on etcd 3.7.4, both in this process (compat harness: one
// member each, fsync off, 10 ms heartbeat), driven by clientv3 with
// concurrent clients:
//
//	go test -run XXX -bench BenchmarkAuthKV -benchtime 20000x -count 3 .
//
// Sub-benchmarks are server/auth/op: auth "off" is a member with auth
// disabled and a client without a user; "simple" and "jwt" (RS256) are
// members with auth enabled and a client logged in as a user whose role
// grants read-write on the prefix the requests use (so every request pays
// the token check and a permission check). op is a 256-byte put or a
// linearizable single-key get. ns/op is wall time per request over all
// clients; req/s is reported too, and cpu-µs/req, the process's CPU time
// (server and clients) per request, the steadier figure on a busy machine. The Cairn sub-benchmarks with auth are
// skipped until Cairn serves Auth (see auth_harness_test.go).

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// benchClients is the number of concurrent clients (goroutines) per run,
// all on one clientv3 connection.
const benchClients = 64

func BenchmarkAuthKV(b *testing.B) {
	modes := append([]authMode{{name: "off"}}, authModes...)
	for _, server := range []string{"etcd", "cairn"} {
		for _, mode := range modes {
			b.Run(server+"/"+mode.name, func(b *testing.B) {
				cli := benchServer(b, server, mode.name, mode.spec)
				val := strings.Repeat("v", 256)
				b.Run("put", func(b *testing.B) {
					benchParallel(b, func(ctx context.Context, i int64) error {
						_, err := cli.Put(ctx, fmt.Sprintf("bench/%06d", i%10000), val)
						return err
					})
				})
				b.Run("range", func(b *testing.B) {
					benchParallel(b, func(ctx context.Context, i int64) error {
						_, err := cli.Get(ctx, "bench/000042")
						return err
					})
				})
			})
		}
	}
}

// benchServer starts one member and returns a client for the mode: with
// auth on, logged in as user "bench" (role rw on bench/).
func benchServer(b *testing.B, server, mode string, spec func(testing.TB) string) *clientv3.Client {
	b.Helper()
	var opts cluster.Options
	if spec != nil {
		opts = authOptions(spec(b))
	}
	var eps []string
	if server == "etcd" {
		eps, _ = cluster.StartEtcdWith(b, opts)
	} else {
		eps, _ = cluster.StartCairnWith(b, opts)
		if mode != "off" {
			conn, err := grpc.NewClient(eps[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			why := cairnAuthGate(b, conn, mode)
			conn.Close()
			if why != "" {
				b.Fatalf("the Cairn side cannot run: %s", why)
			}
		}
	}
	newClient := func(user, pw string) *clientv3.Client {
		c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second,
			Username: user, Password: pw, Logger: zap.NewNop()})
		if err != nil {
			b.Fatalf("client for %s: %v", server, err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	admin := newClient("", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.Put(ctx, "bench/000042", strings.Repeat("v", 256)); err != nil {
		b.Fatal(err)
	}
	if mode == "off" {
		warmUp(b, admin)
		return admin
	}
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "bench"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "bench", "bench/", clientv3.GetPrefixRangeEnd("bench/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "bench", "benchpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "bench", "bench"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			b.Fatalf("auth setup on %s: %v", server, err)
		}
	}
	cli := newClient("bench", "benchpw")
	warmUp(b, cli)
	return cli
}

// warmUp sends a few thousand requests that are not measured, so that
// the first sub-benchmark of a process does not pay for warming the
// runtime, the connection and the server.
func warmUp(b *testing.B, cli *clientv3.Client) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, benchClients)
	for c := range benchClients {
		wg.Go(func() {
			for i := range 50 {
				if _, err := cli.Put(ctx, fmt.Sprintf("bench/w%02d", c), "w"); err != nil {
					errs <- err
					return
				}
				if _, err := cli.Get(ctx, fmt.Sprintf("bench/w%02d", (c+i)%benchClients)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("warm-up: %v", err)
	}
}

// benchParallel runs op b.N times over benchClients goroutines and
// reports req/s; any error fails the benchmark.
func benchParallel(b *testing.B, op func(ctx context.Context, i int64) error) {
	b.Helper()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	ctx := context.Background()
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(ctx, next.Add(1)); err != nil {
				if failed.Add(1) == 1 {
					firstErr.Store(err)
				}
			}
		}
	})
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed, first: %v", n, b.N, firstErr.Load())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
}

// processCPU is this process's user + system CPU time: the server's and
// the clients' (the same clients for both servers). Unlike wall time it
// hardly depends on what else runs on the machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
