package v3concpb

import (
	"bytes"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// newMessages returns one empty value of every message type.
func newMessages() []message {
	return []message{
		new(LockRequest), new(LockResponse), new(UnlockRequest), new(UnlockResponse),
		new(CampaignRequest), new(CampaignResponse), new(LeaderKey), new(LeaderRequest),
		new(LeaderResponse), new(ResignRequest), new(ResignResponse), new(ProclaimRequest),
		new(ProclaimResponse),
	}
}

func full() []message {
	hdr := &pb.ResponseHeader{ClusterId: 1, MemberId: 2, Revision: 3, RaftTerm: 4}
	lk := &LeaderKey{Name: []byte("e"), Key: []byte("e/694d7a1b2c3d"), Rev: 7, Lease: 0x694d7a1b2c3d}
	return []message{
		&LockRequest{Name: []byte("l"), Lease: -1},
		&LockResponse{Header: hdr, Key: []byte("l/1")},
		&UnlockRequest{Key: []byte("l/1")},
		&UnlockResponse{Header: hdr},
		&CampaignRequest{Name: []byte("e"), Lease: 5, Value: []byte("v")},
		&CampaignResponse{Header: hdr, Leader: lk},
		lk,
		&LeaderRequest{Name: []byte("e")},
		&LeaderResponse{Header: hdr, Kv: &mvccpb.KeyValue{Key: []byte("k"), Value: []byte("v"), CreateRevision: 1, ModRevision: 2, Version: 1, Lease: 3}},
		&ResignRequest{Leader: lk},
		&ResignResponse{Header: &pb.ResponseHeader{}},
		&ProclaimRequest{Leader: lk, Value: []byte("v2")},
		&ProclaimResponse{Header: hdr},
	}
}

// Every message survives a round trip, with an unknown field of each wire
// type appended (which Unmarshal must skip).
func TestRoundTrip(t *testing.T) {
	empties := newMessages()
	for i, m := range full() {
		data, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		withUnknown := protowire.AppendTag(append([]byte{}, data...), 99, protowire.VarintType)
		withUnknown = protowire.AppendVarint(withUnknown, 5)
		withUnknown = protowire.AppendTag(withUnknown, 100, protowire.BytesType)
		withUnknown = protowire.AppendBytes(withUnknown, []byte("x"))
		withUnknown = protowire.AppendTag(withUnknown, 101, protowire.Fixed64Type)
		withUnknown = protowire.AppendFixed64(withUnknown, 1)
		got := empties[i]
		if err := got.Unmarshal(withUnknown); err != nil {
			t.Fatalf("%T: Unmarshal: %v", m, err)
		}
		again, err := got.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Errorf("%T: round trip got %x, want %x", m, again, data)
		}
	}
}

// Field numbers and wire types are those of etcd's .proto files.
func TestFieldNumbers(t *testing.T) {
	data, _ := (&CampaignRequest{Name: []byte("n"), Lease: 2, Value: []byte("v")}).Marshal()
	want := []byte{1<<3 | 2, 1, 'n', 2 << 3, 2, 3<<3 | 2, 1, 'v'}
	if !bytes.Equal(data, want) {
		t.Errorf("CampaignRequest: got %x, want %x", data, want)
	}
	data, _ = (&LeaderKey{Name: []byte("n"), Key: []byte("k"), Rev: 3, Lease: 4}).Marshal()
	want = []byte{1<<3 | 2, 1, 'n', 2<<3 | 2, 1, 'k', 3 << 3, 3, 4 << 3, 4}
	if !bytes.Equal(data, want) {
		t.Errorf("LeaderKey: got %x, want %x", data, want)
	}
	// Embedded etcd messages: the header is field 1, the key-value field 2.
	data, _ = (&LeaderResponse{Header: &pb.ResponseHeader{Revision: 3}, Kv: &mvccpb.KeyValue{Key: []byte("k")}}).Marshal()
	want = []byte{1<<3 | 2, 2, 3 << 3, 3, 2<<3 | 2, 3, 1<<3 | 2, 1, 'k'}
	if !bytes.Equal(data, want) {
		t.Errorf("LeaderResponse: got %x, want %x", data, want)
	}
	var lr LockRequest
	if err := lr.Unmarshal([]byte{1 << 3, 1}); err == nil {
		t.Error("LockRequest.name as a varint: got no error, want a wrong wire type error")
	}
}

// An embedded message that occurs twice is merged, as protobuf does.
func TestMergeEmbedded(t *testing.T) {
	data := []byte{1<<3 | 2, 2, 1 << 3, 7, 1<<3 | 2, 2, 3 << 3, 9, 2<<3 | 2, 1, 'k'}
	var got LockResponse
	if err := got.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	want := &pb.ResponseHeader{ClusterId: 7, Revision: 9}
	if !proto.Equal(got.Header, want) || string(got.Key) != "k" {
		t.Errorf("got header %v key %q, want header %v key \"k\"", got.Header, got.Key, want)
	}
}

// FuzzUnmarshal checks, for every message type, that whatever Unmarshal
// accepts marshals to bytes that Unmarshal reads back to the same message.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range full() {
		data, _ := m.Marshal()
		f.Add(data)
	}
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range newMessages() {
			if m.Unmarshal(data) != nil {
				continue
			}
			first, err := m.Marshal()
			if err != nil {
				t.Fatalf("%T: Marshal after Unmarshal: %v", m, err)
			}
			if err := m.Unmarshal(first); err != nil {
				t.Fatalf("%T: Unmarshal of own output %x: %v", m, first, err)
			}
			second, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Fatalf("%T: not stable: %x then %x", m, first, second)
			}
		}
	})
}
