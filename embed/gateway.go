package embed

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairn-kv/cairn/server/api/gateway"
)

// startGateway builds etcd's gRPC-JSON gateway (/v3/...), unless
// --enable-grpc-gateway=false, over a gRPC client connection to the first
// client listener that serves gRPC, as etcd's grpcGatewayDial: every
// gateway request then passes the gRPC server's interceptors and limits
// (--max-request-bytes, --max-concurrent-streams on that one connection).
// The connection is lazy: it connects on the first request.
func (s *Server) startGateway() error {
	if s.cfg.DisableGRPCGateway || len(s.clientMuxes) == 0 {
		return nil
	}
	m := s.clientMuxes[0]
	addr := m.root.Addr()
	target := addr.String()
	if addr.Network() == "unix" {
		target = "unix:" + target
	}
	creds := insecure.NewCredentials()
	if m.tls != nil {
		creds = credentials.NewTLS(s.tls.selfDial.Clone())
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err != nil {
		return fmt.Errorf("grpc gateway: connect to %s: %w", target, err)
	}
	h, err := gateway.New(context.Background(), conn, gatewayValueBytes(s.cfg.MaxRequestBytes))
	if err != nil {
		conn.Close()
		return fmt.Errorf("grpc gateway: %w", err)
	}
	s.gwConn, s.gateway = conn, h
	return nil
}

// gatewayValueBytes bounds one JSON request read by the gateway: twice
// the gRPC server's message limit, so that a request whose bytes fields
// take a third more room in base64 still reaches the gRPC server and gets
// etcd's answer (ErrRequestTooLarge, or ResourceExhausted past the
// message limit). A larger one gets ResourceExhausted from the gateway.
func gatewayValueBytes(maxRequestBytes uint) int64 {
	return 2 * (int64(maxRequestBytes) + maxBodyOverheadBytes)
}

// withGateway routes /v3/ (and /v3beta/, rewritten to /v3/ as etcd's
// accessController does) to the gateway and the rest to h.
func (s *Server) withGateway(h http.Handler) http.Handler {
	if s.gateway == nil {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.Handle("/v3/", s.gateway)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v3beta/") {
			r.URL.Path = strings.Replace(r.URL.Path, "/v3beta/", "/v3/", 1)
		}
		mux.ServeHTTP(w, r)
	})
}

// closeGateway fails the gateway's requests in flight, so their gRPC
// streams end before the gRPC server stops.
func (s *Server) closeGateway() {
	if s.gwConn != nil {
		s.gwConn.Close()
	}
}

// http2Config is etcd's configureHTTPServer: --max-concurrent-streams for
// HTTP/2 connections to the HTTP server, clamped because net/http
// replaces a value above math.MaxInt32 with its default (250).
func (s *Server) http2Config() *http.HTTP2Config {
	streams := s.cfg.MaxConcurrentStreams
	if streams == 0 {
		streams = math.MaxUint32
	}
	return &http.HTTP2Config{MaxConcurrentStreams: int(min(streams, math.MaxInt32))}
}

// httpProtocols serves HTTP/1 and HTTP/2, over TLS and, for connections
// connMux has already decrypted and sniffed (h2sniff.go), HTTP/2 with
// prior knowledge.
func httpProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}
