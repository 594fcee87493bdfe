package embed

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 over TLS carries gRPC and JSON alike: etcd serves every TLS
// connection with net/http and hands requests whose content type is
// application/grpc to grpc.Server.ServeHTTP (serve.go's grpcHandlerFunc),
// which costs gRPC clients several times the CPU of gRPC's own transport
// (docs/perf.md). Cairn routes per connection instead, by the content type
// of its first request: connMux answers the client preface with a
// SETTINGS frame (the server preface, RFC 9113 §3.4, which gRPC clients
// wait for before they send anything), reads frames up to the first
// HEADERS, and decodes its header block. application/grpc goes to gRPC's
// transport, anything else to the HTTP server (the gateway, /health, ...),
// and a connection that sends no request within h2SniffTimeout (an idle
// gRPC client) to gRPC. The bytes read are replayed to the chosen server,
// without the client's acknowledgement of the injected SETTINGS (h2AckFilter):
// each server sends its own SETTINGS and expects exactly one ACK for it.
// A connection keeps its first route: a gRPC call on a connection whose
// first request was JSON is served by the HTTP server (and fails), which
// no known client does.

// h2SniffTimeout is how long a new HTTP/2 TLS connection may take to send
// its first request before it is taken for an idle gRPC client.
const h2SniffTimeout = 3 * time.Second

// h2SniffMaxBytes bounds what is read before the first request's headers
// are complete; past it the connection goes to gRPC.
const h2SniffMaxBytes = 256 << 10

// serverPreface is the SETTINGS frame connMux sends first: empty, or
// with SETTINGS_MAX_CONCURRENT_STREAMS when --max-concurrent-streams sets
// a limit (0 and the maximum mean none), so the client obeys the limit
// from its first requests, before the chosen server's own SETTINGS
// arrive. Both servers announce the same limit (http2Config).
func serverPreface(maxStreams uint32) []byte {
	if maxStreams == 0 || maxStreams > math.MaxInt32 {
		return []byte{0, 0, 0, byte(http2.FrameSettings), 0, 0, 0, 0, 0}
	}
	v := maxStreams
	return []byte{0, 0, 6, byte(http2.FrameSettings), 0, 0, 0, 0, 0,
		0, byte(http2.SettingMaxConcurrentStreams), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// sniffH2 sends settings (serverPreface) after the client preface, reads
// c up to its first request's headers and returns c with
// those bytes to be read again, and whether the request is gRPC. An error
// means the client went away.
func sniffH2(c *tls.Conn, settings []byte) (net.Conn, bool, error) {
	var rec bytes.Buffer
	_ = c.SetReadDeadline(time.Now().Add(h2SniffTimeout))
	defer c.SetReadDeadline(time.Time{})
	in := io.TeeReader(io.LimitReader(c, h2SniffMaxBytes), &rec)
	toGRPC, err := func() (bool, error) {
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(in, preface); err != nil {
			return true, err
		}
		if string(preface) != http2.ClientPreface {
			return true, nil // gRPC's transport rejects it
		}
		if _, err := c.Write(settings); err != nil {
			return true, err
		}
		fr := http2.NewFramer(nil, in)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		for {
			f, err := fr.ReadFrame()
			var se http2.StreamError
			switch {
			case errors.As(err, &se):
				return true, nil // a bad header block: gRPC's transport answers it
			case err != nil:
				return true, err
			}
			if mh, ok := f.(*http2.MetaHeadersFrame); ok {
				return strings.Contains(headerValue(mh, "content-type"), "application/grpc"), nil
			}
		}
	}()
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && rec.Len() < h2SniffMaxBytes {
		return nil, false, err
	}
	r := &h2AckFilter{r: io.MultiReader(bytes.NewReader(rec.Bytes()), c), left: uint32(len(http2.ClientPreface))}
	if toGRPC {
		return &sniffedTLSConn{Conn: c, r: r}, true, nil
	}
	return &sniffedConn{Conn: c, r: r}, false, nil
}

func headerValue(mh *http2.MetaHeadersFrame, name string) string {
	for _, f := range mh.RegularFields() {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// sniffedTLSConn is a TLS connection whose first bytes are replayed; it
// keeps ConnectionState, so gRPC sees the client's certificate.
type sniffedTLSConn struct {
	*tls.Conn
	r io.Reader
}

func (c *sniffedTLSConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// sniffedConn is the same for the HTTP server, without ConnectionState:
// net/http then serves the decrypted stream as HTTP/2 with prior
// knowledge (http.Protocols.UnencryptedHTTP2), where a *tls.Conn would be
// required to serve it as HTTP/2 over TLS. Its requests have no TLS state.
type sniffedConn struct {
	net.Conn
	r io.Reader
}

func (c *sniffedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// h2AckFilter passes an HTTP/2 client's byte stream through, frame by
// frame, less its first SETTINGS acknowledgement (the one for
// serverPreface); after that it is a plain reader. left starts at the
// preface's length, which is passed through as it is.
type h2AckFilter struct {
	r       io.Reader
	left    uint32 // bytes of the current frame's payload still to pass
	hdr     [9]byte
	pending []byte // header bytes still to pass
	done    bool
}

func (f *h2AckFilter) Read(p []byte) (int, error) {
	for {
		switch {
		case len(f.pending) > 0:
			n := copy(p, f.pending)
			f.pending = f.pending[n:]
			return n, nil
		case f.done:
			return f.r.Read(p)
		case f.left > 0:
			if uint32(len(p)) > f.left {
				p = p[:f.left]
			}
			n, err := f.r.Read(p)
			f.left -= uint32(n)
			return n, err
		}
		n, err := io.ReadFull(f.r, f.hdr[:])
		if err != nil {
			// Pass what came and stop filtering.
			f.pending, f.done = f.hdr[:n], true
			if n == 0 {
				return 0, err
			}
			continue
		}
		length := uint32(f.hdr[0])<<16 | uint32(f.hdr[1])<<8 | uint32(f.hdr[2])
		if http2.FrameType(f.hdr[3]) == http2.FrameSettings && http2.Flags(f.hdr[4]).Has(http2.FlagSettingsAck) && length == 0 {
			f.done = true // dropped
			continue
		}
		f.pending, f.left = f.hdr[:], length
	}
}
