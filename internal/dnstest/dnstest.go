// Package dnstest is a DNS server for tests: it answers SRV and A queries
// from a table, over UDP on 127.0.0.1, so DNS SRV discovery can be tested
// without the system's resolver.
package dnstest

import (
	"errors"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// SRV is one SRV record's data.
type SRV struct {
	Target           string // a host name, with or without the final dot
	Port             uint16
	Priority, Weight uint16
}

// Server answers queries: SRV records by name, and every A query with
// 127.0.0.1 (so any target resolves to the loopback address).
type Server struct {
	conn *net.UDPConn
	mu   struct {
		sync.Mutex
		srv     map[string][]SRV // by fully qualified, lower-case name
		queries []string         // "TYPE name", in arrival order
	}
	done chan struct{}
}

// Start listens on a free UDP port of 127.0.0.1 and serves until Close.
func Start() (*Server, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	s := &Server{conn: conn, done: make(chan struct{})}
	s.mu.srv = map[string][]SRV{}
	go s.serve()
	return s, nil
}

// Addr is the server's "host:port".
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// SetSRV sets the SRV records of name (such as "_etcd-server._tcp.example.test").
func (s *Server) SetSRV(name string, recs ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.srv[fqdn(name)] = recs
}

// Queries lists the queries received so far, as "SRV name." or "A name.".
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mu.queries...)
}

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

func fqdn(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		resp, err := s.answer(buf[:n])
		if err != nil {
			continue
		}
		_, _ = s.conn.WriteToUDP(resp, from)
	}
}

func (s *Server) answer(req []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	s.mu.queries = append(s.mu.queries, q.Type.String()[4:]+" "+name)
	srvs, known := s.mu.srv[name]
	s.mu.Unlock()

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if q.Type == dnsmessage.TypeSRV && !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rhdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	switch q.Type {
	case dnsmessage.TypeSRV:
		for _, r := range srvs {
			target, err := dnsmessage.NewName(fqdn(r.Target))
			if err != nil {
				return nil, err
			}
			if err := b.SRVResource(rhdr, dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target}); err != nil {
				return nil, err
			}
		}
	case dnsmessage.TypeA:
		if err := b.AResource(rhdr, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
