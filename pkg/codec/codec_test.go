package codec

import (
	"bytes"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// raw stands for a v3concpb type: it encodes itself and is no proto.Message.
type raw struct{ b []byte }

func (r *raw) Marshal() ([]byte, error) { return r.b, nil }

func (r *raw) Unmarshal(b []byte) error {
	r.b = bytes.Clone(b)
	return nil
}

func TestCodec(t *testing.T) {
	var c Codec
	kv := &mvccpb.KeyValue{Key: []byte("k"), Value: []byte("v"), ModRevision: 3}
	data, err := c.Marshal(kv)
	if err != nil {
		t.Fatal(err)
	}
	var got mvccpb.KeyValue
	if err := c.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, kv) {
		t.Errorf("proto round trip: got %v, want %v", &got, kv)
	}

	data, err = c.Marshal(&raw{b: []byte{1, 2}})
	if err != nil || !bytes.Equal(data, []byte{1, 2}) {
		t.Errorf("self-marshaling type: got %x, %v, want 0102, nil", data, err)
	}
	var r raw
	if err := c.Unmarshal([]byte{3}, &r); err != nil || !bytes.Equal(r.b, []byte{3}) {
		t.Errorf("self-unmarshaling type: got %x, %v, want 03, nil", r.b, err)
	}

	if _, err := c.Marshal(struct{}{}); err == nil {
		t.Error("Marshal of a non-message: got no error")
	}
	if err := c.Unmarshal(nil, &struct{}{}); err == nil {
		t.Error("Unmarshal into a non-message: got no error")
	}
}
