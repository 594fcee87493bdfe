package discovery_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/discovery"
	"github.com/cairn-kv/cairn/internal/dnstest"
)

func TestSRVService(t *testing.T) {
	for _, tc := range []struct{ scheme, name, want string }{
		{"http", "", "etcd-server"},
		{"https", "", "etcd-server-ssl"},
		{"http", "prod", "etcd-server-prod"},
		{"https", "prod", "etcd-server-ssl-prod"},
	} {
		if got := discovery.SRVService(tc.scheme, tc.name); got != tc.want {
			t.Errorf("SRVService(%q, %q) = %q, want %q", tc.scheme, tc.name, got, tc.want)
		}
	}
}

func mustURLs(t *testing.T, ss ...string) []url.URL {
	t.Helper()
	var out []url.URL
	for _, s := range ss {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *u)
	}
	return out
}

// SRVCluster against a DNS server of the test's own: the records of both
// services, this member found by the address its advertised URL resolves
// to, the others named by position, and etcd's errors.
func TestSRVCluster(t *testing.T) {
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	r := discovery.Resolver(dns.Addr())
	// Every A query gets 127.0.0.1, so any host name stands for it.
	dns.SetSRV("_etcd-server._tcp.plain.test",
		dnstest.SRV{Target: "a.plain.test.", Port: 2380}, dnstest.SRV{Target: "b.plain.test.", Port: 2381})
	dns.SetSRV("_etcd-server-ssl._tcp.mixed.test", dnstest.SRV{Target: "a.mixed.test.", Port: 2380})
	dns.SetSRV("_etcd-server._tcp.mixed.test", dnstest.SRV{Target: "b.mixed.test.", Port: 2381})
	dns.SetSRV("_etcd-server-ssl-blue._tcp.named.test", dnstest.SRV{Target: "a.named.test.", Port: 2380})
	dns.SetSRV("_etcd-server-blue._tcp.named.test", dnstest.SRV{Target: "b.named.test.", Port: 2381})
	dns.SetSRV("_etcd-server._tcp.named.test", dnstest.SRV{Target: "c.named.test.", Port: 2382})

	for _, tc := range []struct {
		name, domain, srvName, self string
		apurls                      []string
		want                        string // joined by ","; or the error
	}{
		{"http", "plain.test", "", "m1", []string{"http://127.0.0.1:2381"},
			"0=http://a.plain.test:2380,m1=http://b.plain.test:2381"},
		{"https and http", "mixed.test", "", "m1", []string{"https://127.0.0.1:2380"},
			"m1=https://a.mixed.test:2380,0=http://b.mixed.test:2381"},
		{"service name", "named.test", "blue", "m1", []string{"http://127.0.0.1:2381"},
			"0=https://a.named.test:2380,m1=http://b.named.test:2381"},
		{"not listed", "plain.test", "", "m9", []string{"http://127.0.0.1:2399"},
			`error: cannot find local etcd member "m9" in SRV records`},
		{"scheme mismatch", "mixed.test", "", "m1", []string{"http://127.0.0.1:2380"},
			`error: cannot find local etcd member "m1" in SRV records`},
		{"no records", "none.test", "", "m1", []string{"http://127.0.0.1:2380"},
			"error: error querying DNS SRV records for _etcd-server-ssl lookup _etcd-server-ssl._tcp.none.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := discovery.SRVCluster(ctx, nil, r, tc.domain, tc.srvName, tc.self, mustURLs(t, tc.apurls...))
			if err != nil {
				if !strings.HasPrefix("error: "+err.Error(), tc.want) {
					t.Fatalf("got error %q, want %q", err, tc.want)
				}
				return
			}
			if s := strings.Join(got, ","); s != tc.want {
				t.Fatalf("got %s, want %s", s, tc.want)
			}
		})
	}
	if q := fmt.Sprint(dns.Queries()); !strings.Contains(q, "SRV _etcd-server-ssl-blue._tcp.named.test.") {
		t.Errorf("queries %s lack the named ssl service", q)
	}
}
