package embed

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// On Close (what SIGTERM does) the client listeners stop accepting at
// once: a new connection is refused while a stream in flight still drains
// and is still answered, as etcd's.
func TestCloseRefusesNewConnectionsWhileStreamsDrain(t *testing.T) {
	srv, err := Start(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.ClientEndpoints()[0]
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("k")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Recv(); err != nil { // created
		t.Fatal(err)
	}

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-closed
		}
	}()
	// The open watch holds the graceful stop; meanwhile a new connection
	// must be refused, not accepted and dropped.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		// A reset is a connection caught in the backlog as the listener
		// closed: try again.
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial after Close: got %v, want connection refused", err)
		}
		if c != nil {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted 10 s after Close began")
		}
		time.Sleep(time.Millisecond)
	}
	// The stream in flight is still served.
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}); err != nil {
		t.Fatalf("the watch stream was cut before the listener closed: %v", err)
	}
	resp, err := ws.Recv()
	if err != nil {
		t.Fatalf("the watch stream was cut before the listener closed: %v", err)
	}
	if resp.Header == nil || resp.Header.Revision == 0 {
		t.Fatalf("progress response %v has no revision", resp)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a stream was open and answered", err)
	default:
	}
	cancel() // the stream ends: the graceful stop completes
	stopped = true
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
