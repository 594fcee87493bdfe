package discovery_test

import (
	"net/url"
	"testing"

	"github.com/cairn-kv/cairn/discovery"
)

func TestSelfValue(t *testing.T) {
	u1, _ := url.Parse("http://10.0.0.2:2380")
	u2, _ := url.Parse("http://10.0.0.1:2380")
	if got, want := discovery.SelfValue("n1", []url.URL{*u1, *u2}), "n1=http://10.0.0.1:2380,n1=http://10.0.0.2:2380"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCheckDuplicateURL(t *testing.T) {
	for _, tc := range []struct{ cluster, want string }{
		{"a=http://127.0.0.1:1,b=http://127.0.0.1:2", ""},
		{"a=http://127.0.0.1:1,a=http://127.0.0.1:3,b=http://127.0.0.1:2", ""},
		{"a=http://127.0.0.1:1,b=http://127.0.0.1:1", "discovery cluster a=http://127.0.0.1:1,b=http://127.0.0.1:1 has duplicate url"},
	} {
		err := discovery.CheckDuplicateURL(tc.cluster)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.cluster, got, tc.want)
		}
	}
}
