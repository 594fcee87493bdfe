package embed

import (
	"bufio"
	"crypto/tls"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"
)

// listen opens a listener for an http(s):// or unix(s):// URL.
func listen(u url.URL) (net.Listener, error) {
	switch u.Scheme {
	case "unix", "unixs":
		return net.Listen("unix", u.Host+u.Path)
	default:
		return net.Listen("tcp", u.Host)
	}
}

// routes says which servers a listener feeds.
type routes int

const (
	routeBoth routes = iota // gRPC and HTTP: client URLs (as etcd), peer URLs
	routeGRPC               // gRPC alone: client URLs when --listen-client-http-urls is set
	routeHTTP               // HTTP alone: --listen-client-http-urls, --listen-metrics-urls
)

// connMux accepts connections on one listener, does the TLS handshake if
// the listener is TLS, and splits them between gRPC and HTTP, as etcd
// serves both on its client port. A plaintext connection is gRPC if it
// opens with HTTP/2's "PRI * HTTP/2.0" preface (as etcd's cmux); a TLS one
// if it negotiated ALPN "h2" (HTTP/2 over TLS requires ALPN, RFC 9113
// §3.2) and its first request is application/grpc (h2sniff.go).
//
// Each connection's handshake (or first bytes) runs on its own goroutine,
// bounded by tlsHandshakeTimeout, so a slow or silent client never holds
// up the others; a failed handshake is logged and the connection closed.
type connMux struct {
	root   net.Listener
	tls    *tls.Config // nil: plaintext
	routes routes
	what   string // "client", "peer", "metrics": for logs
	// h2Preface is the SETTINGS frame sent to an HTTP/2 TLS client before
	// its first request is read (h2sniff.go).
	h2Preface  []byte
	lg         *slog.Logger
	grpc, http *chanListener
	wg         sync.WaitGroup

	mu struct {
		sync.Mutex
		closed bool
		// pending are connections not yet handed to a server; Close
		// closes them.
		pending map[net.Conn]struct{}
	}
}

func newConnMux(l net.Listener, tlsCfg *tls.Config, r routes, what string, maxStreams uint32, lg *slog.Logger) *connMux {
	m := &connMux{root: l, tls: tlsCfg, routes: r, what: what, lg: lg, grpc: newChanListener(l.Addr()), http: newChanListener(l.Addr()),
		h2Preface: serverPreface(maxStreams)}
	m.mu.pending = map[net.Conn]struct{}{}
	m.wg.Add(1)
	go m.serve()
	return m
}

func (m *connMux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.root.Accept()
		if err != nil {
			m.grpc.Close()
			m.http.Close()
			return
		}
		m.mu.Lock()
		if m.mu.closed {
			m.mu.Unlock()
			c.Close()
			continue
		}
		m.mu.pending[c] = struct{}{}
		m.wg.Add(1)
		m.mu.Unlock()
		go m.dispatch(c)
	}
}

func (m *connMux) dispatch(c net.Conn) {
	defer m.wg.Done()
	conn, toGRPC, ok := m.classify(c)
	m.mu.Lock()
	delete(m.mu.pending, c)
	m.mu.Unlock()
	switch {
	case !ok:
		c.Close()
	case toGRPC && m.routes != routeHTTP:
		m.grpc.deliver(conn)
	case !toGRPC && m.routes != routeGRPC:
		m.http.deliver(conn)
	default:
		conn.Close()
	}
}

// classify handshakes and reads enough of c to route it.
func (m *connMux) classify(c net.Conn) (conn net.Conn, toGRPC, ok bool) {
	_ = c.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if m.tls != nil {
		tc := tls.Server(c, m.tls)
		if err := tc.Handshake(); err != nil {
			m.lg.Warn("rejected connection on "+m.what+" endpoint", "remote-addr", c.RemoteAddr().String(), "error", err)
			return nil, false, false
		}
		_ = c.SetDeadline(time.Time{})
		switch {
		case tc.ConnectionState().NegotiatedProtocol != "h2" || m.routes == routeHTTP:
			return tc, false, true
		case m.routes == routeGRPC:
			return tc, true, true
		}
		// gRPC or JSON over HTTP/2: h2sniff.go.
		conn, toGRPC, err := sniffH2(tc, m.h2Preface)
		if err != nil {
			return nil, false, false
		}
		return conn, toGRPC, true
	}
	if m.routes == routeHTTP {
		_ = c.SetDeadline(time.Time{})
		return c, false, true
	}
	br := bufio.NewReader(c)
	head, err := br.Peek(3)
	_ = c.SetDeadline(time.Time{})
	if err != nil {
		return nil, false, false
	}
	return &peekedConn{Conn: c, r: br}, string(head) == "PRI", true
}

// Close stops accepting, closes the connections not yet handed to a
// server, and waits for its goroutines.
func (m *connMux) Close() error {
	err := m.root.Close()
	m.mu.Lock()
	m.mu.closed = true
	for c := range m.mu.pending {
		c.Close()
	}
	m.mu.Unlock()
	m.grpc.Close()
	m.http.Close()
	m.wg.Wait()
	return err
}

// Addr is the listener's address.
func (m *connMux) Addr() net.Addr { return m.root.Addr() }

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by connMux.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
