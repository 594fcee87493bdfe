package mvcc

import (
	"bytes"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{
		{tombstone: true},
		{createRevision: 2, modRevision: 3, version: 2, lease: 7, value: []byte("v")},
		{createRevision: 1 << 62, modRevision: 1 << 62, version: 1, value: nil},
	} {
		got, err := decodeRecord(appendRecord(nil, r))
		if err != nil {
			t.Fatalf("decode(%+v): %v", r, err)
		}
		if got.tombstone != r.tombstone || got.createRevision != r.createRevision || got.modRevision != r.modRevision ||
			got.version != r.version || got.lease != r.lease || !bytes.Equal(got.value, r.value) {
			t.Errorf("round trip: got %+v, want %+v", got, r)
		}
	}
}

func TestVersionKeyOrder(t *testing.T) {
	// Newest version first within a key; keys in byte order.
	a3 := versionKey(nil, []byte("a"), 3, 0)
	a2 := versionKey(nil, []byte("a"), 2, 0)
	a0 := versionKey(nil, []byte("a\x00"), 9, 0)
	b1 := versionKey(nil, []byte("b"), 1, 0)
	if !(bytes.Compare(a3, a2) < 0 && bytes.Compare(a2, a0) < 0 && bytes.Compare(a0, b1) < 0) {
		t.Fatalf("version keys out of order: %x %x %x %x", a3, a2, a0, b1)
	}
	if p := nextKeyPrefix(versionKeyPrefix(nil, []byte("a"))); !(bytes.Compare(a2, p) < 0 && bytes.Compare(p, a0) < 0) {
		t.Fatalf("nextKeyPrefix(a) = %x, want between %x and %x", p, a2, a0)
	}
	k, rev, sub, err := decodeVersionKey(versionKey(nil, []byte("k\x00"), 42, 3))
	if err != nil || string(k) != "k\x00" || rev != 42 || sub != 3 {
		t.Fatalf("decodeVersionKey = %q %d %d %v; want k\\x00 42 3", k, rev, sub, err)
	}
}

// FuzzDecodeRecord checks that no input panics the decoder and that what
// it accepts re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, record{createRevision: 5, modRevision: 6, version: 2, lease: 1, value: []byte("x")}))
	f.Add([]byte{recordTombstone})
	f.Add([]byte{recordPut, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if again := appendRecord(nil, r); !bytes.Equal(again, b) {
			t.Fatalf("decode/encode of %x gave %x", b, again)
		}
	})
}
