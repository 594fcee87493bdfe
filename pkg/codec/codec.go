// Package codec is the gRPC codec Cairn's servers and peers use: protobuf
// for generated messages, and the Marshal and Unmarshal methods of the
// hand-written wire types of package v3concpb (etcd's Lock and Election
// messages), which are not proto.Message and which grpc's default codec
// would therefore reject. Servers and clients install it with
// grpc.ForceServerCodec and grpc.ForceCodec; it keeps the name "proto" so
// the content-type on the wire stays application/grpc+proto, as etcd's.
package codec

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// selfMarshaler is a type that encodes itself without being a
// proto.Message (the v3concpb types).
type selfMarshaler interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// Codec implements grpc's encoding.Codec under the name "proto".
type Codec struct{}

func (Codec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case proto.Message:
		return proto.Marshal(m)
	case selfMarshaler:
		return m.Marshal()
	}
	return nil, fmt.Errorf("codec: cannot marshal %T", v)
}

func (Codec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case proto.Message:
		return proto.Unmarshal(data, m)
	case selfMarshaler:
		return m.Unmarshal(data)
	}
	return fmt.Errorf("codec: cannot unmarshal into %T", v)
}

func (Codec) Name() string { return "proto" }
