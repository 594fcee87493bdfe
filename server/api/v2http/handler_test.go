package v2http

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestParseKeyRequest: bad parameters get etcd 3.5's errors (parseKeyRequest
// in v2http/client.go), and Cairn's depth limit its own.
func TestParseKeyRequest(t *testing.T) {
	deep := "/v2/keys" + strings.Repeat("/x", maxDepth+1)
	for _, tc := range []struct {
		method, target string
		code           int
		cause          string
	}{
		{"GET", "/v2/keys/a?prevIndex=x", ecodeIndexNaN, `invalid value for "prevIndex"`},
		{"GET", "/v2/keys/a?waitIndex=-1", ecodeIndexNaN, `invalid value for "waitIndex"`},
		{"GET", "/v2/keys/a?recursive=x", ecodeInvalidField, `invalid value for "recursive"`},
		{"GET", "/v2/keys/a?sorted=x", ecodeInvalidField, `invalid value for "sorted"`},
		{"PUT", "/v2/keys/a?wait=true", ecodeInvalidField, `"wait" can only be used with GET requests`},
		{"PUT", "/v2/keys/a?prevValue=", ecodePrevValueRequired, `"prevValue" cannot be empty`},
		{"PUT", "/v2/keys/a?ttl=x", ecodeTTLNaN, `invalid value for "ttl"`},
		{"PUT", "/v2/keys/a?prevExist=x", ecodeInvalidField, "invalid value for prevExist"},
		{"PUT", "/v2/keys/a?refresh=x", ecodeInvalidField, "invalid value for refresh"},
		{"PUT", "/v2/keys/a?refresh=true&value=v&ttl=1", ecodeRefreshValue, "A value was provided on a refresh"},
		{"PUT", "/v2/keys/a?refresh=true", ecodeRefreshTTLNeeded, "No TTL value set"},
		{"PUT", "/v2/keys/a?noValueOnSuccess=x", ecodeInvalidField, `invalid value for "noValueOnSuccess"`},
		{"GET", "/v2/other", ecodeInvalidForm, "incorrect key prefix"},
		{"GET", deep, ecodeInvalidField, "key deeper than 999 components"},
		{"GET", "/v2/keys" + strings.Repeat("/x", maxDepth), 0, ""},
		{"PUT", "/v2/keys/a/../b/?ttl=5&prevExist=true", 0, ""},
	} {
		kr, err := parseKeyRequest(httptest.NewRequest(tc.method, tc.target, nil))
		if tc.code == 0 {
			if err != nil {
				t.Errorf("%s %s: %v", tc.method, tc.target[:min(len(tc.target), 40)], err)
			}
			continue
		}
		e, ok := err.(*Error)
		if !ok || e.ErrorCode != tc.code || e.Cause != tc.cause || e.Index != 0 {
			t.Errorf("%s %s: got %v (%+v), want %d %q", tc.method, tc.target[:min(len(tc.target), 40)], err, kr, tc.code, tc.cause)
		}
	}
	kr, err := parseKeyRequest(httptest.NewRequest("PUT", "/v2/keys/a/../b/?ttl=5&prevExist=true", nil))
	if err != nil || kr.path != "/b" || kr.ttl == nil || *kr.ttl != 5 || kr.prevExist == nil || !*kr.prevExist {
		t.Errorf("parse: %+v, %v", kr, err)
	}
}
