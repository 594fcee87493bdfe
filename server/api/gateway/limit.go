package gateway

import (
	"io"
	"net/http"
	"sync/atomic"
)

// valueLimitReader bounds each top-level JSON value of a request body at
// limit bytes, so that a watch or keep-alive stream may run for ever while
// the decoder, which buffers one value at a time, holds at most limit
// bytes. It follows strings and nesting just enough to see where a value
// ends; bytes between values count toward the next one. Once a value
// passes the limit, Read fails with *http.MaxBytesError ("http: request
// body too large") and the body is closed.
type valueLimitReader struct {
	rc    io.ReadCloser
	limit int64
	n     int64 // bytes of the current value so far
	depth int
	inStr bool
	esc   bool
	err   error
	// tripped is set with err, for the error handler, which may run on
	// another goroutine than a streaming route's reader.
	tripped atomic.Bool
}

func newValueLimitReader(rc io.ReadCloser, limit int64) io.ReadCloser {
	return &valueLimitReader{rc: rc, limit: limit}
}

func (r *valueLimitReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.rc.Read(p)
	for _, c := range p[:n] {
		r.n++
		if r.n > r.limit {
			r.err = &http.MaxBytesError{Limit: r.limit}
			r.tripped.Store(true)
			r.rc.Close()
			return 0, r.err
		}
		switch {
		case r.esc:
			r.esc = false
		case r.inStr:
			switch c {
			case '\\':
				r.esc = true
			case '"':
				r.inStr = false
				if r.depth == 0 {
					r.n = 0 // a top-level string ended
				}
			}
		case c == '"':
			r.inStr = true
		case c == '{' || c == '[':
			r.depth++
		case c == '}' || c == ']':
			if r.depth > 0 {
				r.depth--
			}
			if r.depth == 0 {
				r.n = 0
			}
		case r.depth == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			r.n = 0 // between values
		}
	}
	return n, err
}

func (r *valueLimitReader) Close() error { return r.rc.Close() }
