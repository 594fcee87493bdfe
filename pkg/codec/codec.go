// Package codec is the gRPC codec Cairn's servers and peers use: etcd's
// generated types marshal themselves (no reflection); anything else goes
// through protobuf.
package codec

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// gogoMessage is what etcd's generated types implement: fast hand-written
// marshalling, no reflection.
type gogoMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// Codec implements grpc's encoding.Codec under the name "proto".
type Codec struct{}

func (Codec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case gogoMessage:
		return m.Marshal()
	case proto.Message:
		return proto.Marshal(m)
	case protoadapt.MessageV1:
		return proto.Marshal(protoadapt.MessageV2Of(m))
	}
	return nil, fmt.Errorf("codec: cannot marshal %T", v)
}

func (Codec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case gogoMessage:
		return m.Unmarshal(data)
	case proto.Message:
		return proto.Unmarshal(data, m)
	case protoadapt.MessageV1:
		return proto.Unmarshal(data, protoadapt.MessageV2Of(m))
	}
	return fmt.Errorf("codec: cannot unmarshal into %T", v)
}

func (Codec) Name() string { return "proto" }
