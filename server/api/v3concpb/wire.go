package v3concpb

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// message is one of this package's types, which encode themselves. etcd's
// generated types (ResponseHeader, KeyValue) go through package proto
// instead: see appendProto and consumeProto.
type message interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// Encoding follows proto3: zero scalars and empty bytes are left out; a
// non-nil embedded message is written even when empty.

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendInt64(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// appendMessage writes m unless isNil (a typed nil pointer is not a nil
// interface, so the caller says).
func appendMessage(b []byte, num protowire.Number, m message, isNil bool) ([]byte, error) {
	if isNil {
		return b, nil
	}
	data, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, data), nil
}

// appendProto writes the generated message m unless isNil, as
// appendMessage does for ours.
func appendProto(b []byte, num protowire.Number, m proto.Message, isNil bool) ([]byte, error) {
	if isNil {
		return b, nil
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(proto.Size(m)))
	// proto.Size has just cached the sizes of m and its sub-messages.
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
}

// fieldFunc decodes one field whose tag has been read from the value at the
// start of b. It returns how many bytes it consumed, or 0 if the field is
// not one it knows (the caller then skips it).
type fieldFunc func(num protowire.Number, typ protowire.Type, b []byte) (int, error)

// eachField calls fn for every field of b, skipping those fn does not know.
func eachField(b []byte, fn fieldFunc) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		m, err := fn(num, typ, b)
		if err != nil {
			return err
		}
		if m == 0 {
			if m = protowire.ConsumeFieldValue(num, typ, b); m < 0 {
				return protowire.ParseError(m)
			}
		}
		b = b[m:]
	}
	return nil
}

func wrongType(name string, typ protowire.Type) error {
	return fmt.Errorf("v3concpb: wrong wire type %d for field %s", typ, name)
}

// consumeBytes reads a bytes field into *dst as a copy (the input buffer
// may be reused once Unmarshal returns).
func consumeBytes(name string, typ protowire.Type, b []byte, dst *[]byte) (int, error) {
	if typ != protowire.BytesType {
		return 0, wrongType(name, typ)
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	*dst = append([]byte{}, v...)
	return n, nil
}

func consumeInt64(name string, typ protowire.Type, b []byte, dst *int64) (int, error) {
	if typ != protowire.VarintType {
		return 0, wrongType(name, typ)
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	*dst = int64(v)
	return n, nil
}

// consumeMessage merges an embedded message into m, as protobuf merges a
// message field that occurs more than once.
func consumeMessage(name string, typ protowire.Type, b []byte, m message) (int, error) {
	if typ != protowire.BytesType {
		return 0, wrongType(name, typ)
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	if err := m.Unmarshal(v); err != nil {
		return 0, fmt.Errorf("v3concpb: field %s: %w", name, err)
	}
	return n, nil
}

// consumeProto merges an embedded generated message into m, as
// consumeMessage does for ours. Package proto keeps a known field sent
// with the wrong wire type as an unknown field rather than failing, as
// etcd's own generated code now does.
func consumeProto(name string, typ protowire.Type, b []byte, m proto.Message) (int, error) {
	if typ != protowire.BytesType {
		return 0, wrongType(name, typ)
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, m); err != nil {
		return 0, fmt.Errorf("v3concpb: field %s: %w", name, err)
	}
	return n, nil
}
