package gateway

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	etcdservergw "go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// New returns the gateway's handler for the paths under /v3/, forwarding
// to conn. ctx bounds
// the handlers' registration only; closing conn fails the requests in
// flight. maxValueBytes bounds each JSON value read from a request body
// (a unary request's body, one message of a streaming one); a larger value
// fails the request with codes.ResourceExhausted (HTTP 429, as gRPC's
// own message limit answers in etcd) and "http: request body too large".
func New(ctx context.Context, conn *grpc.ClientConn, maxValueBytes int64) (http.Handler, error) {
	// etcd's options, from serve.go's registerGateway.
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard,
			&runtime.HTTPBodyMarshaler{
				Marshaler: &runtime.JSONPb{
					MarshalOptions: protojson.MarshalOptions{
						UseProtoNames:   true,
						EmitUnpopulated: false,
					},
					UnmarshalOptions: protojson.UnmarshalOptions{
						DiscardUnknown: true,
					},
				},
			},
		),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithMetadata(markGateway),
	)
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		etcdservergw.RegisterKVHandler,
		etcdservergw.RegisterWatchHandler,
		etcdservergw.RegisterLeaseHandler,
		etcdservergw.RegisterClusterHandler,
		etcdservergw.RegisterMaintenanceHandler,
		etcdservergw.RegisterAuthHandler,
		registerLockHandler,
		registerElectionHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			return nil, err
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = newValueLimitReader(r.Body, maxValueBytes)
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// errorHandler is grpc-gateway's default, except for a request whose body
// passed the gateway's bound: the generated handlers report every decoding
// error as InvalidArgument, where etcd, which reads any body, would answer
// with gRPC's ResourceExhausted for a message past its limit.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if vl, ok := r.Body.(*valueLimitReader); ok && vl.tripped.Load() {
		err = status.Error(codes.ResourceExhausted, (&http.MaxBytesError{}).Error())
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// markGateway makes sure every call the gateway makes carries
// "grpcgateway-accept", which etcd's auth (AuthInfoFromTLS) and Cairn's
// take as the sign of a gateway call, whose TLS client certificate is the
// member's own and must never name the user. grpc-gateway forwards the
// HTTP Accept header under that name only when the request has one; a
// client that sends none would otherwise be taken for the certificate's
// common name (etcd has that hole).
func markGateway(_ context.Context, r *http.Request) metadata.MD {
	if r.Header.Get("Accept") != "" {
		return nil
	}
	return metadata.Pairs("grpcgateway-accept", "*/*")
}
