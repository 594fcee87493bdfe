package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/pkg/clock"
	"github.com/cairn-kv/cairn/server"
	"github.com/cairn-kv/cairn/server/api"
)

// A linearizable read whose read index the member has not applied within
// the request timeout fails with etcd's ErrGRPCTimeoutWaitAppliedIndex
// ("etcdserver: request timed out, waiting for the applied index took too
// long", codes.Unavailable), as etcd's linearizableReadLoop; the read
// succeeds once apply moves on. The apply loop is held before a commit,
// and the member's clock is a fake one, so the timeout is reached by
// advancing the clock, not by waiting.
func TestReadIndexTimeoutWaitingForApply(t *testing.T) {
	cfg := server.TestConfig(t, t.TempDir(), server.FreeURL(t))
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	cfg.Clock = clk
	gate := server.GateApply(&cfg)
	m := server.StartMember(t, cfg)
	defer m.Close()
	defer gate.Open() // before Close, if the test fails with apply held

	// A real gRPC server and client, as a client sees the member.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer(m, api.Options{MaxRequestBytes: cfg.MaxRequestBytes, MaxTxnOps: 128})
	go srv.Serve(l)
	defer srv.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kv := pb.NewKVClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("v1")}); err != nil {
		t.Fatal(err)
	}

	// The next write is committed, and held before its apply commits.
	gate.Shut()
	putDone := make(chan error, 1)
	go func() {
		_, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("v2")})
		putDone <- err
	}()
	select {
	case <-gate.Held:
	case <-ctx.Done():
		t.Fatal("the apply loop never reached the held write")
	}

	type result struct {
		resp *pb.RangeResponse
		err  error
	}
	get := func() <-chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k")})
			ch <- result{resp, err}
		}()
		return ch
	}
	read := get()
	// Wait (on a condition, not a duration) until the read round has its
	// read index and waits for apply; then let the timeout pass.
	for server.ReadRoundsWaitingForApply() == 0 {
		select {
		case r := <-read:
			t.Fatalf("the read returned %v, %v while apply was held", r.resp, r.err)
		case <-ctx.Done():
			t.Fatal("the read round never waited for the applied index")
		case <-time.After(5 * time.Millisecond):
		}
	}
	clk.Advance(time.Minute) // past the request timeout: 5 s + 2 election timeouts
	r := <-read
	want := rpctypes.ErrGRPCTimeoutWaitAppliedIndex
	if status.Code(r.err) != codes.Unavailable || status.Convert(r.err).Message() != status.Convert(want).Message() {
		t.Fatalf("read with apply held: got %v, want %v", r.err, want)
	}
	if got, want := rpctypes.ErrorDesc(r.err), "etcdserver: request timed out, waiting for the applied index took too long"; got != want {
		t.Fatalf("error text %q, want etcd's %q", got, want)
	}

	// Once apply moves on, the write lands and the read sees it.
	gate.Open()
	if err := <-putDone; err != nil {
		t.Fatalf("held write: %v", err)
	}
	r = <-get()
	if r.err != nil || len(r.resp.Kvs) != 1 || string(r.resp.Kvs[0].Value) != "v2" {
		t.Fatalf("read after apply resumed: got %v, %v; want k=v2", r.resp, r.err)
	}
}
