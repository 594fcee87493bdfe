package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Each top-level JSON value of a body is bounded on its own; strings and
// nesting are followed, so braces inside strings do not end a value.
func TestValueLimitReader(t *testing.T) {
	for _, tc := range []struct {
		body  string
		limit int64
		ok    bool
	}{
		{`{"a":"b"}`, 9, true},
		{`{"a":"b"}`, 8, false},
		{`{"a":"b"} {"a":"b"} {"a":"b"}`, 10, true}, // a stream: each value alone
		{`{"a":"b"}{"a":"b"}`, 9, true},
		{`{"a":"}}}}}}"}`, 13, false},
		{`{"a":"}}}}}}"}`, 14, true},
		{`{"a":"\"}"}`, 10, false}, // an escaped quote does not end the string
		{`{"a":"\"}"}`, 11, true},
		{`[[[[]]]] {}`, 8, true},
		{`"` + strings.Repeat("x", 100) + `"`, 50, false},
		{strings.Repeat(" ", 1000) + `{}`, 4, true}, // blanks between values
	} {
		r := newValueLimitReader(io.NopCloser(strings.NewReader(tc.body)), tc.limit)
		dec := json.NewDecoder(r)
		var err error
		for err == nil {
			var v json.RawMessage
			err = dec.Decode(&v)
		}
		var mbe *http.MaxBytesError
		if got := !errors.As(err, &mbe); got != tc.ok {
			t.Errorf("%.40q limit %d: error %v, want ok %v", tc.body, tc.limit, err, tc.ok)
		}
		if !tc.ok && err.Error() != "http: request body too large" {
			t.Errorf("%.40q: error %q", tc.body, err)
		}
	}
}
