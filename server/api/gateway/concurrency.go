package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The Lock and Election routes. etcd generates their handlers from
// v3lock.proto and v3election.proto into its server module, which Cairn
// does not import; here the same routes forward dynamic messages whose
// descriptors repeat those files' messages (names, numbers, types), so
// protojson reads and writes exactly the JSON etcd's generated types do,
// and the wire bytes are what Cairn's Lock and Election services (package
// v3concpb) decode. The descriptors are built once and never registered
// globally, so they cannot clash with etcd's own in a process that links
// both.

// concFiles are the two files' descriptors, by proto package.
var concFiles = func() map[string]protoreflect.FileDescriptor {
	header := (&pb.ResponseHeader{}).ProtoReflect().Descriptor()
	kv := (&mvccpb.KeyValue{}).ProtoReflect().Descriptor()
	msg := func(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
	}
	scalar := func(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: typ.Enum(), JsonName: proto.String(jsonName(name))}
	}
	bytesF := func(name string, num int32) *descriptorpb.FieldDescriptorProto {
		return scalar(name, num, descriptorpb.FieldDescriptorProto_TYPE_BYTES)
	}
	int64F := func(name string, num int32) *descriptorpb.FieldDescriptorProto {
		return scalar(name, num, descriptorpb.FieldDescriptorProto_TYPE_INT64)
	}
	msgF := func(name string, num int32, typ string) *descriptorpb.FieldDescriptorProto {
		f := scalar(name, num, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE)
		f.TypeName = proto.String("." + typ)
		return f
	}
	headerF := msgF("header", 1, string(header.FullName()))
	deps := []string{header.ParentFile().Path(), kv.ParentFile().Path()}
	lock := &descriptorpb.FileDescriptorProto{
		Name: proto.String("cairn/v3lock.proto"), Package: proto.String("v3lockpb"), Syntax: proto.String("proto3"),
		Dependency: deps,
		MessageType: []*descriptorpb.DescriptorProto{
			msg("LockRequest", bytesF("name", 1), int64F("lease", 2)),
			msg("LockResponse", headerF, bytesF("key", 2)),
			msg("UnlockRequest", bytesF("key", 1)),
			msg("UnlockResponse", headerF),
		},
	}
	election := &descriptorpb.FileDescriptorProto{
		Name: proto.String("cairn/v3election.proto"), Package: proto.String("v3electionpb"), Syntax: proto.String("proto3"),
		Dependency: deps,
		MessageType: []*descriptorpb.DescriptorProto{
			msg("CampaignRequest", bytesF("name", 1), int64F("lease", 2), bytesF("value", 3)),
			msg("CampaignResponse", headerF, msgF("leader", 2, "v3electionpb.LeaderKey")),
			msg("LeaderKey", bytesF("name", 1), bytesF("key", 2), int64F("rev", 3), int64F("lease", 4)),
			msg("LeaderRequest", bytesF("name", 1)),
			msg("LeaderResponse", headerF, msgF("kv", 2, string(kv.FullName()))),
			msg("ResignRequest", msgF("leader", 1, "v3electionpb.LeaderKey")),
			msg("ResignResponse", headerF),
			msg("ProclaimRequest", msgF("leader", 1, "v3electionpb.LeaderKey"), bytesF("value", 2)),
			msg("ProclaimResponse", headerF),
		},
	}
	out := map[string]protoreflect.FileDescriptor{}
	for _, fd := range []*descriptorpb.FileDescriptorProto{lock, election} {
		f, err := protodesc.NewFile(fd, protoregistry.GlobalFiles)
		if err != nil {
			panic(fmt.Sprintf("gateway: descriptor of %s: %v", fd.GetName(), err))
		}
		out[fd.GetPackage()] = f
	}
	return out
}()

// jsonName is protoc's lowerCamelCase JSON name of a field.
func jsonName(s string) string {
	var b strings.Builder
	up := false
	for _, c := range s {
		switch {
		case c == '_':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(c)))
			up = false
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// message returns the descriptor of a message of the two files, by full
// name ("v3lockpb.LockRequest").
func message(full string) protoreflect.MessageDescriptor {
	pkg, name, _ := strings.Cut(full, ".")
	d := concFiles[pkg].Messages().ByName(protoreflect.Name(name))
	if d == nil {
		panic("gateway: no message " + full)
	}
	return d
}

// route is one Lock or Election route: POST path calls method with a
// request of type in and answers type out.
type route struct {
	path, method string
	in, out      string
	stream       bool // server-streaming (Observe)
}

func registerLockHandler(_ context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return registerRoutes(mux, conn, []route{
		{path: "/v3/lock/lock", method: "/v3lockpb.Lock/Lock", in: "v3lockpb.LockRequest", out: "v3lockpb.LockResponse"},
		{path: "/v3/lock/unlock", method: "/v3lockpb.Lock/Unlock", in: "v3lockpb.UnlockRequest", out: "v3lockpb.UnlockResponse"},
	})
}

func registerElectionHandler(_ context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return registerRoutes(mux, conn, []route{
		{path: "/v3/election/campaign", method: "/v3electionpb.Election/Campaign", in: "v3electionpb.CampaignRequest", out: "v3electionpb.CampaignResponse"},
		{path: "/v3/election/proclaim", method: "/v3electionpb.Election/Proclaim", in: "v3electionpb.ProclaimRequest", out: "v3electionpb.ProclaimResponse"},
		{path: "/v3/election/leader", method: "/v3electionpb.Election/Leader", in: "v3electionpb.LeaderRequest", out: "v3electionpb.LeaderResponse"},
		{path: "/v3/election/observe", method: "/v3electionpb.Election/Observe", in: "v3electionpb.LeaderRequest", out: "v3electionpb.LeaderResponse", stream: true},
		{path: "/v3/election/resign", method: "/v3electionpb.Election/Resign", in: "v3electionpb.ResignRequest", out: "v3electionpb.ResignResponse"},
	})
}

// registerRoutes registers rs as protoc-gen-grpc-gateway's client handlers
// would (the same calls, in the same order, as etcd's generated gw code).
func registerRoutes(mux *runtime.ServeMux, conn *grpc.ClientConn, rs []route) error {
	for _, r := range rs {
		in, out := message(r.in), message(r.out)
		elems := strings.Split(strings.TrimPrefix(r.path, "/"), "/")
		ops := make([]int, 0, 2*len(elems))
		for i := range elems {
			ops = append(ops, 2, i) // OpLitPush, index into the pool
		}
		pat, err := runtime.NewPattern(1, ops, elems, "")
		if err != nil {
			return fmt.Errorf("gateway: pattern %s: %w", r.path, err)
		}
		mux.Handle(http.MethodPost, pat, func(w http.ResponseWriter, req *http.Request, _ map[string]string) {
			ctx, cancel := context.WithCancel(req.Context())
			defer cancel()
			inbound, outbound := runtime.MarshalerForRequest(mux, req)
			actx, err := runtime.AnnotateContext(ctx, mux, req, r.method, runtime.WithHTTPPathPattern(r.path))
			if err != nil {
				runtime.HTTPError(ctx, mux, outbound, w, req, err)
				return
			}
			var md runtime.ServerMetadata
			protoReq := dynamicpb.NewMessage(in)
			if err := inbound.NewDecoder(req.Body).Decode(protoReq); err != nil && !errors.Is(err, io.EOF) {
				actx = runtime.NewServerMetadataContext(actx, md)
				runtime.HTTPError(actx, mux, outbound, w, req, status.Errorf(codes.InvalidArgument, "%v", err))
				return
			}
			if req.Body != nil {
				_, _ = io.Copy(io.Discard, req.Body)
			}
			if r.stream {
				stream, err := conn.NewStream(actx, &grpc.StreamDesc{ServerStreams: true}, r.method)
				if err == nil {
					err = stream.SendMsg(protoReq)
				}
				if err == nil {
					err = stream.CloseSend()
				}
				if err == nil {
					md.HeaderMD, err = stream.Header()
				}
				actx = runtime.NewServerMetadataContext(actx, md)
				if err != nil {
					runtime.HTTPError(actx, mux, outbound, w, req, err)
					return
				}
				runtime.ForwardResponseStream(actx, mux, outbound, w, req, func() (proto.Message, error) {
					m := dynamicpb.NewMessage(out)
					if err := stream.RecvMsg(m); err != nil {
						return nil, err
					}
					return m, nil
				}, mux.GetForwardResponseOptions()...)
				return
			}
			resp := dynamicpb.NewMessage(out)
			err = conn.Invoke(actx, r.method, protoReq, resp, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
			actx = runtime.NewServerMetadataContext(actx, md)
			if err != nil {
				runtime.HTTPError(actx, mux, outbound, w, req, err)
				return
			}
			runtime.ForwardResponseMessage(actx, mux, outbound, w, req, resp, mux.GetForwardResponseOptions()...)
		})
	}
	return nil
}
