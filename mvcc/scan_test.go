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
	for _, bad := range []string{"", "a", "a\x00", "a\x00\x02"} {
		if _, _, err := unescapeAlias([]byte(bad)); err == nil {
			t.Errorf("unescapeAlias(%q) accepted", bad)
		}
	}
}
