package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// kvRecorder is a KV service that records the metadata of each Range.
type kvRecorder struct {
	pb.UnimplementedKVServer
	mu  sync.Mutex
	mds []metadata.MD
}

func (k *kvRecorder) Range(ctx context.Context, _ *pb.RangeRequest) (*pb.RangeResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	k.mu.Lock()
	k.mds = append(k.mds, md)
	k.mu.Unlock()
	return &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 7}}, nil
}

// The Authorization header reaches the service as "authorization"
// metadata, as etcd's gateway forwards it, and every call is marked as
// the gateway's ("grpcgateway-accept"), with or without an Accept header.
func TestGatewayForwardsAuthorization(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &kvRecorder{}
	gs := grpc.NewServer()
	pb.RegisterKVServer(gs, rec)
	go gs.Serve(ln)
	defer gs.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h, err := New(context.Background(), conn, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	defer hs.Close()

	for _, tc := range []struct{ auth, accept string }{
		{"tok1", "application/json"},
		{"tok2", ""},
	} {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v3/kv/range", strings.NewReader(`{"key":"YQ=="}`))
		req.Header.Set("Authorization", tc.auth)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"revision":"7"`) {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	if len(rec.mds) != 2 {
		t.Fatalf("got %d calls, want 2", len(rec.mds))
	}
	for i, want := range []string{"tok1", "tok2"} {
		md := rec.mds[i]
		if got := md.Get("authorization"); len(got) != 1 || got[0] != want {
			t.Errorf("call %d: authorization %q, want %q", i, got, want)
		}
		if got := md.Get("grpcgateway-accept"); len(got) == 0 {
			t.Errorf("call %d: no grpcgateway-accept metadata: %v", i, md)
		}
	}
}
