package compat

// How the suites compare, copy and print generated messages. Since etcd
// 3.7 they are protoc-gen-go (APIv2) messages: used by pointer, copied with
// proto.Clone, compared with proto.Equal, or with go-cmp through
// protocmp.Transform to print a difference, and never with reflect.DeepEqual
// or field by field on the Go structs, whose unexported fields hold the
// message's internal state.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"
)

// cmpOpts compare generated messages field by field, through protocmp:
// every populated field, and the unknown fields too (Cairn must not send
// fields etcd does not). Byte strings are compared whole (fast for big
// values); nil equals empty, as on the wire. They print the difference of
// two answers; msgEqual decides whether there is one, the same way.
var cmpOpts = []cmp.Option{
	protocmp.Transform(),
	cmp.Comparer(bytes.Equal),
}

// msgEqual reports whether a and b are equal as cmpOpts compare them:
// proto.Equal for two messages (the same populated fields, unknown fields
// included), go-cmp with cmpOpts for anything else.
func msgEqual(a, b any) bool {
	ma, okA := a.(proto.Message)
	mb, okB := b.(proto.Message)
	if okA && okB {
		return proto.Equal(ma, mb)
	}
	return cmp.Equal(a, b, cmpOpts...)
}

// msgsEqual is msgEqual for two lists of messages, element by element.
func msgsEqual[M proto.Message](a, b []M) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// groupsEqual is msgsEqual for two maps of lists of messages.
func groupsEqual[K comparable, M proto.Message](a, b map[K][]M) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !msgsEqual(x, y) {
			return false
		}
	}
	return true
}

// cloneMsg deep-copies a generated message.
func cloneMsg(msg any) any {
	m, ok := msg.(proto.Message)
	if !ok {
		panic(fmt.Sprintf("cloneMsg: %T is not a generated message", msg))
	}
	return proto.Clone(m)
}

// msgText prints a message in the compact text form gogoproto's String
// printed before etcd 3.7, which the pinned outcomes of
// regressions_test.go are written in: every populated field in declaration
// order as "name:value ", a nested message as "name:<...> ", a repeated
// field once per element, enums by name, and byte strings quoted with
// non-printable bytes in octal. Unlike protobuf-go's String, whose spacing
// varies on purpose from build to build, it is stable.
func msgText(m proto.Message) string {
	var b strings.Builder
	writeMsgText(&b, m.ProtoReflect())
	return b.String()
}

func writeMsgText(b *strings.Builder, m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			for j := range l.Len() {
				writeFieldText(b, fd, l.Get(j))
			}
		case fd.IsMap():
			// None of etcd's messages has a map field.
			fmt.Fprintf(b, "%s:%v ", fd.Name(), v)
		default:
			writeFieldText(b, fd, v)
		}
	}
	if u := m.GetUnknown(); len(u) > 0 {
		fmt.Fprintf(b, "XXX_unrecognized:%s ", quoteText(string(u)))
	}
}

func writeFieldText(b *strings.Builder, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	b.WriteString(string(fd.Name()) + ":")
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		b.WriteString("<")
		writeMsgText(b, v.Message())
		b.WriteString("> ")
		return
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			b.WriteString(string(ev.Name()))
		} else {
			b.WriteString(strconv.Itoa(int(v.Enum())))
		}
	case protoreflect.BytesKind:
		b.WriteString(quoteText(string(v.Bytes())))
	case protoreflect.StringKind:
		b.WriteString(quoteText(v.String()))
	default:
		b.WriteString(v.String())
	}
	b.WriteString(" ")
}

// quoteText quotes s byte by byte as the protobuf text format does: \n, \r,
// \t, \" and \\ escaped, other bytes outside printable ASCII in octal.
func quoteText(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\%03o`, c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestMsgText checks msgText on the shapes the suites print: nested and
// repeated messages, oneofs (a set oneof prints even when zero), enums,
// and byte strings with quotes and bytes outside printable ASCII.
func TestMsgText(t *testing.T) {
	for _, tc := range []struct {
		msg  proto.Message
		want string
	}{
		{&pb.PutResponse{}, ``},
		{&pb.PutResponse{Header: &pb.ResponseHeader{}}, `header:<> `},
		{
			&pb.TxnResponse{
				Header:    &pb.ResponseHeader{ClusterId: 1, Revision: 3},
				Succeeded: true,
				Responses: []*pb.ResponseOp{
					{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{Revision: 3}, Deleted: 1}}},
					{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: []byte("a\x00\xff\"\\\n"), Value: []byte("v")}}, Count: 1}}},
				},
			},
			`header:<cluster_id:1 revision:3 > succeeded:true responses:<response_delete_range:<header:<revision:3 > deleted:1 > > ` +
				`responses:<response_range:<kvs:<key:"a\000\377\"\\\n" value:"v" > count:1 > > `,
		},
		{
			&pb.Compare{Result: pb.Compare_GREATER, Target: pb.Compare_VERSION, Key: []byte("k"), TargetUnion: &pb.Compare_Version{Version: 0}},
			`result:GREATER key:"k" version:0 `,
		},
		{&pb.RangeRequest{Key: []byte("a"), SortTarget: 7}, `key:"a" sort_target:7 `},
	} {
		if got := msgText(tc.msg); got != tc.want {
			t.Errorf("msgText(%T):\ngot:  %s\nwant: %s", tc.msg, got, tc.want)
		}
	}
}

// TestMsgEqual checks that msgEqual and cmpOpts agree: nil and empty byte
// strings are equal, unknown fields count.
func TestMsgEqual(t *testing.T) {
	withUnknown := &pb.PutResponse{}
	withUnknown.ProtoReflect().SetUnknown([]byte{0x50, 0x01}) // field 10, varint 1
	for _, tc := range []struct {
		a, b any
		want bool
	}{
		{&pb.RangeRequest{Key: []byte("a"), RangeEnd: nil}, &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{}}, true},
		{&pb.LeaseTimeToLiveResponse{Keys: [][]byte{nil}}, &pb.LeaseTimeToLiveResponse{Keys: [][]byte{{}}}, true},
		{&pb.PutResponse{}, withUnknown, false},
		{&pb.PutResponse{}, &pb.DeleteRangeResponse{}, false},
		{&pb.PutResponse{Header: &pb.ResponseHeader{}}, &pb.PutResponse{}, false},
	} {
		if got := msgEqual(tc.a, tc.b); got != tc.want {
			t.Errorf("msgEqual(%s, %s) = %v, want %v", describe(tc.a), describe(tc.b), got, tc.want)
		}
		if got := cmp.Equal(tc.a, tc.b, cmpOpts...); got != tc.want {
			t.Errorf("cmp.Equal(%s, %s, cmpOpts...) = %v, want %v", describe(tc.a), describe(tc.b), got, tc.want)
		}
	}
}
