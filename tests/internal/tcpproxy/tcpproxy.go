// Package tcpproxy is a TCP forwarder for end-to-end fault tests: it sits
// in front of a member's peer port on its own 127.0.0.1 port and can cut,
// blackhole or delay what passes, without privileges.
package tcpproxy

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections from its own 127.0.0.1 port to a target
// (a member's peer port). When every peer reaches the member through it,
// it can cut, blackhole or delay everything the member receives from its
// peers. (Cairn's peer streams are one-way: a member's own messages leave
// through the other members' proxies.)
type Proxy struct {
	l      net.Listener
	target string

	mu struct {
		sync.Mutex
		cut   bool          // refuse and drop connections
		hole  bool          // accept, but forward nothing
		delay time.Duration // before forwarding each chunk
		conns map[net.Conn]struct{}
		wake  chan struct{} // closed when hole or delay changes
	}
	wg sync.WaitGroup
}

// New starts a proxy to target; it stops, dropping every connection, when
// the test ends.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target}
	p.mu.conns = map[net.Conn]struct{}{}
	p.mu.wake = make(chan struct{})
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { l.Close(); p.Cut(); p.wg.Wait() })
	return p
}

// Addr is the proxy's own address (host:port).
func (p *Proxy) Addr() string { return p.l.Addr().String() }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.mu.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.mu.cut {
			p.mu.Unlock()
			c.Close()
			up.Close()
			continue
		}
		p.mu.conns[c], p.mu.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies src to dst, holding each chunk while the proxy is
// blackholed and for the delay.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.mu.conns, dst)
		delete(p.mu.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			for {
				p.mu.Lock()
				hole, delay, cut, wake := p.mu.hole, p.mu.delay, p.mu.cut, p.mu.wake
				p.mu.Unlock()
				if cut {
					return
				}
				if hole {
					<-wake
					continue
				}
				if delay > 0 {
					select {
					case <-time.After(delay):
					case <-wake:
					}
				}
				break
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) changeLocked() {
	close(p.mu.wake)
	p.mu.wake = make(chan struct{})
}

// Cut drops all connections and refuses new ones until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.cut = true
	for c := range p.mu.conns {
		c.Close()
	}
	p.changeLocked()
}

// Blackhole keeps connections open but forwards nothing until Heal.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.hole = true
	p.changeLocked()
}

// Delay holds every chunk for d before forwarding it, until Heal.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.delay = d
	p.changeLocked()
}

// Heal forwards everything again, at once.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.cut, p.mu.hole, p.mu.delay = false, false, 0
	p.changeLocked()
}
