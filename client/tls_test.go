package client_test

import (
	"strings"
	"testing"

	"github.com/cairn-kv/cairn/client"
)

func TestTLSFields(t *testing.T) {
	c, err := client.ParseConnectionString(`Server=127.0.0.1:2379,CACert=/ca.pem,Cert=/c.pem,Key=/k.pem,ServerName=etcd.local`)
	if err != nil {
		t.Fatal(err)
	}
	if c.CACert != "/ca.pem" || c.Cert != "/c.pem" || c.Key != "/k.pem" || c.ServerName != "etcd.local" {
		t.Fatalf("got %+v", c)
	}
	if got, want := c.ConnectionString(), `Server=127.0.0.1:2379,CACert=/ca.pem,Cert=/c.pem,Key=/k.pem,ServerName=etcd.local`; got != want {
		t.Fatalf("ConnectionString() = %s, want %s", got, want)
	}
	for _, tc := range []struct{ in, want string }{
		{"Cert=/c.pem", "Key: Cert and Key must be set together"},
		{"Key=/k.pem", "Cert: Cert and Key must be set together"},
	} {
		if _, err := client.ParseConnectionString(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.in, err, tc.want)
		}
	}
	if _, err := client.New(client.Config{CACert: "/nonexistent/ca.pem"}); err == nil || !strings.Contains(err.Error(), "CACert: open /nonexistent/ca.pem") {
		t.Errorf("missing CA file: got %v", err)
	}
}
