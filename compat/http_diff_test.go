package compat

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// httpAnswer is what a client of the HTTP endpoints sees.
type httpAnswer struct {
	status      int
	contentType string
	body        string
}

func httpGet(t *testing.T, method, url string) httpAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// sortLines puts a body's lines in order: etcd lists /readyz's checks in
// map order, which changes from process to process.
func sortLines(s string) string {
	lines := strings.SplitAfter(s, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "")
}

// /health, /livez and /readyz answer as etcd's do on a healthy member:
// status, content type and body, for each path, query and method.
func TestHTTPHealthEndpointsMatchEtcd(t *testing.T) {
	cairnEps, etcdEps := cluster.StartBoth(t)
	for _, tc := range []struct {
		method, path string
		unordered    bool
	}{
		{"GET", "/health", false},
		{"GET", "/health?serializable=true", false},
		{"GET", "/health?exclude=NOSPACE", false},
		{"POST", "/health", false},
		{"GET", "/livez", false},
		{"GET", "/livez?verbose", false},
		{"GET", "/livez/serializable_read?verbose", false},
		{"GET", "/readyz", false},
		{"GET", "/readyz?verbose", true},
		{"GET", "/readyz?exclude=non_learner&exclude=linearizable_read&verbose", true},
		{"GET", "/readyz?exclude=no_such_check", false},
		{"GET", "/readyz/non_learner?verbose", false},
		{"GET", "/readyz/linearizable_read", false},
		{"PUT", "/readyz", false},
		{"DELETE", "/livez/serializable_read", false},
	} {
		e := httpGet(t, tc.method, "http://"+etcdEps[0]+tc.path)
		c := httpGet(t, tc.method, "http://"+cairnEps[0]+tc.path)
		if tc.path == "/readyz?verbose" && (e.status != http.StatusOK || !strings.Contains(e.body, "[+]linearizable_read ok\n")) {
			t.Fatalf("etcd's /readyz?verbose is %d %q: the oracle does not serve what this test compares", e.status, e.body)
		}
		if tc.unordered {
			e.body, c.body = sortLines(e.body), sortLines(c.body)
		}
		if e != c {
			t.Errorf("%s %s:\netcd:  %d %q %q\ncairn: %d %q %q", tc.method, tc.path, e.status, e.contentType, e.body, c.status, c.contentType, c.body)
		}
	}
}
