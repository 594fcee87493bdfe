package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/pkg/codec"
)

// blob is a message that is just bytes (the Bootstrap answer).
type blob struct{ b []byte }

func (m *blob) Marshal() ([]byte, error) { return m.b, nil }
func (m *blob) Unmarshal(b []byte) error {
	m.b = append([]byte(nil), b...)
	return nil
}

func bootstrapHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	t := srv.(*Transport)
	var req blob
	if err := dec(&req); err != nil {
		return nil, err
	}
	if len(req.b) > maxCallBytes {
		return nil, status.Errorf(codes.InvalidArgument, "transport: a Bootstrap request of %d bytes (at most %d)", len(req.b), maxCallBytes)
	}
	if t.h.Bootstrap == nil {
		return nil, status.Error(codes.Unimplemented, "no bootstrap information")
	}
	b, err := t.h.Bootstrap()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &blob{b: b}, nil
}

// FetchBootstrap asks the member at peerURL to describe the cluster, for a
// member joining it (etcd --initial-cluster-state existing). tlsCfg is as
// New's.
func FetchBootstrap(ctx context.Context, peerURL string, tlsCfg func() *tls.Config) ([]byte, error) {
	u, err := url.Parse(peerURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("transport: bad peer URL %q", peerURL)
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(creds(u.Scheme, tlsCfg)),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(codec.Codec{})))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var resp blob
	if err := conn.Invoke(ctx, "/"+serviceName+"/Bootstrap", &blob{}, &resp); err != nil {
		return nil, err
	}
	return resp.b, nil
}
