package mvcc

import (
	"bytes"
	"testing"

	"github.com/cairn-kv/cairn/storage"
)

// unescapeAlias must decode as storage.DecodeEscaped, aliasing or not.
func TestUnescapeAlias(t *testing.T) {
	for _, key := range []string{"", "a", "abc", "\x00", "a\x00b", "\x00\x00", "a\xff", "\xff\x00\x01"} {
		for _, tail := range []string{"", "\x00\x00\x00\x00\x00\x00\x00\x02"} {
			b := append(storage.AppendEscaped(nil, []byte(key)), tail...)
			gotKey, gotRest, err := unescapeAlias(b)
			wantKey, wantRest, werr := storage.DecodeEscaped(b)
			if err != nil || werr != nil || !bytes.Equal(gotKey, wantKey) || !bytes.Equal(gotRest, wantRest) {
				t.Errorf("unescapeAlias(%q) = %q, %q, %v; want %q, %q, %v", b, gotKey, gotRest, err, wantKey, wantRest, werr)
			}
		}
	}
	// The scans' key decoders agree with the copying ones.
	for _, key := range []string{"k", "k\x00", ""} {
		lk := latestKey(nil, []byte(key))
		a, aerr := scanLatestKey(lk)
		b, berr := decodeLatestKey(lk)
		vk := versionKey(nil, []byte(key), 7, 2)
		c, rev, cerr := scanVersionKey(vk)
		d, drev, _, derr := decodeVersionKey(vk)
		if !bytes.Equal(a, b) || aerr != nil || berr != nil || !bytes.Equal(c, d) || rev != drev || cerr != nil || derr != nil {
			t.Errorf("key %q: scanLatestKey %q %v, decodeLatestKey %q %v; scanVersionKey %q@%d %v, decodeVersionKey %q@%d %v",
				key, a, aerr, b, berr, c, rev, cerr, d, drev, derr)
		}
	}
	for _, bad := range []string{"", "a", "a\x00", "a\x00\x02"} {
		if _, _, err := unescapeAlias([]byte(bad)); err == nil {
			t.Errorf("unescapeAlias(%q) accepted", bad)
		}
	}
}
