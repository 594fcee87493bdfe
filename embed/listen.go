package embed

import (
	"bufio"
	"net"
	"net/url"
	"sync"
	"time"
)

// listen opens a listener for an http:// or unix:// URL.
func listen(u url.URL) (net.Listener, error) {
	switch u.Scheme {
	case "unix", "unixs":
		return net.Listen("unix", u.Host+u.Path)
	default:
		return net.Listen("tcp", u.Host)
	}
}

// connMux splits one listener between gRPC (HTTP/2, which opens with the
// "PRI * HTTP/2.0" preface) and plain HTTP/1 (health, version, metrics),
// as etcd serves both on its client port.
type connMux struct {
	root       net.Listener
	grpc, http *chanListener
	wg         sync.WaitGroup
}

func newConnMux(l net.Listener) *connMux {
	m := &connMux{root: l, grpc: newChanListener(l.Addr()), http: newChanListener(l.Addr())}
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
		go m.dispatch(c)
	}
}

func (m *connMux) dispatch(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	head, err := br.Peek(3)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	pc := &peekedConn{Conn: c, r: br}
	if string(head) == "PRI" {
		m.grpc.deliver(pc)
	} else {
		m.http.deliver(pc)
	}
}

// Close stops accepting and waits for the accept loop.
func (m *connMux) Close() error {
	err := m.root.Close()
	m.wg.Wait()
	return err
}

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
