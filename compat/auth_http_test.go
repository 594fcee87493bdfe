package compat

// HTTP gateway auth differential test.
//
// What it proves: through the gRPC gateway's JSON endpoints (/v3/...),
// a client that logs in with POST /v3/auth/authenticate and sends the
// token in the Authorization header (bare or "Bearer ") gets the same
// answers from Cairn as from etcd 3.7.4: status code and JSON body, with
// header IDs and the token normalized (see normalizeToken). Each step
// states etcd's expected status code, checked on etcd. A Cairn without the gateway
// or Auth (a 404 or 501 on /v3/auth/status) fails the test.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// gwAnswer is a gateway answer: the status code and the JSON body,
// normalized and decoded.
type gwAnswer struct {
	Status int
	Body   any
}

var (
	reGWHeaderID = regexp.MustCompile(`"(cluster_id|member_id|raft_term)":"\d+"`)
	reGWToken    = regexp.MustCompile(`"token":"([^"]*)"`)
)

// gwPost posts body to path on ep with the token (if any) in the
// Authorization header.
func gwPost(t *testing.T, ep, path, body, authz string) gwAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+ep+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	s := reGWHeaderID.ReplaceAllString(string(raw), `"$1":"<n>"`)
	s = reGWToken.ReplaceAllStringFunc(s, func(m string) string {
		return `"token":"` + normalizeToken(reGWToken.FindStringSubmatch(m)[1]) + `"`
	})
	var decoded any
	if err := json.Unmarshal([]byte(s), &decoded); err != nil {
		decoded = s // not JSON: compared as text
	}
	return gwAnswer{resp.StatusCode, decoded}
}

// gwToken logs name in on ep and returns the raw token ("" on failure).
func gwToken(t *testing.T, ep, name, pw string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"name": name, "password": pw})
	resp, err := http.Post("http://"+ep+"/v3/auth/authenticate", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&out)
	return out.Token
}

func TestAuthHTTPGatewayDiff(t *testing.T) {
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			cairnEps, etcdEps := cluster.StartBothWith(t, authOptions(mode.spec(t)))
			eps := []string{etcdEps[0]}
			why := cairnAuthGate(t, dial(t, cairnEps[0]), mode.name)
			if why == "" {
				if a := gwPost(t, cairnEps[0], "/v3/auth/status", "{}", ""); a.Status == http.StatusNotFound || a.Status == http.StatusNotImplemented {
					why = "Cairn has no gRPC gateway on its client URL (POST /v3/auth/status gives " + http.StatusText(a.Status) + ")"
				}
			}
			if why != "" {
				gateCairn(t, why)
			} else {
				eps = append(eps, cairnEps[0])
			}
			authHTTPScenario(t, eps)
		})
	}
}

// authHTTPScenario runs the steps on eps (etcd first) and compares.
func authHTTPScenario(t *testing.T, eps []string) {
	tokens := make([]map[string]string, len(eps))
	for i := range eps {
		tokens[i] = map[string]string{}
	}
	step := 0
	// do posts body to path as user (a login name, "" for none, or
	// "raw:X" for header value X; "bearer:" prefixes the user's token
	// with "Bearer ").
	do := func(as, path, body string, want int) {
		t.Helper()
		step++
		var answers []gwAnswer
		for i, ep := range eps {
			authz := ""
			switch {
			case as == "":
			case len(as) > 4 && as[:4] == "raw:":
				authz = as[4:]
			case len(as) > 7 && as[:7] == "bearer:":
				authz = "Bearer " + tokens[i][as[7:]]
			default:
				authz = tokens[i][as]
			}
			answers = append(answers, gwPost(t, ep, path, body, authz))
		}
		if trace {
			t.Logf("step %d: POST %s %s as %q\n  etcd: %+v", step, path, body, as, answers[0])
		}
		if want >= 0 && answers[0].Status != want {
			t.Errorf("step %d: POST %s %s as %q: etcd (the oracle) answered %+v; the test expects status %d", step, path, body, as, answers[0], want)
		}
		if len(answers) == 2 {
			if d := cmp.Diff(answers[0], answers[1]); d != "" {
				t.Errorf("step %d: POST %s %s as %q\n  etcd:  %+v\n  cairn: %+v\n(-etcd +cairn)\n%s", step, path, body, as, answers[0], answers[1], d)
			}
		}
	}
	login := func(name, pw string) {
		t.Helper()
		do("", "/v3/auth/authenticate", `{"name":"`+name+`","password":"`+pw+`"}`, http.StatusOK)
		for i, ep := range eps {
			tokens[i][name] = gwToken(t, ep, name, pw)
		}
	}
	const ok, bad, denied, unauth, precond = http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusUnauthorized, http.StatusBadRequest

	// "Zm9v" is foo, "YmFy" bar, "emF6" zaz.
	do("", "/v3/auth/status", `{}`, ok)
	do("", "/v3/auth/authenticate", `{"name":"root","password":"pw"}`, precond)
	do("", "/v3/auth/user/add", `{"name":"root","password":"pw"}`, ok)
	do("", "/v3/auth/user/grant", `{"user":"root","role":"root"}`, ok)
	do("", "/v3/auth/role/add", `{"name":"r"}`, ok)
	do("", "/v3/auth/role/grant", `{"name":"r","perm":{"permType":"READ","key":"Zm9v"}}`, ok)
	do("", "/v3/auth/role/get", `{"role":"r"}`, ok)
	do("", "/v3/auth/user/add", `{"name":"alice","password":"apw"}`, ok)
	do("", "/v3/auth/user/add", `{"name":"","password":"x"}`, bad)
	do("", "/v3/auth/user/grant", `{"user":"alice","role":"r"}`, ok)
	do("", "/v3/auth/user/get", `{"name":"alice"}`, ok)
	do("", "/v3/auth/user/list", `{}`, ok)
	do("", "/v3/auth/role/list", `{}`, ok)
	do("", "/v3/kv/put", `{"key":"Zm9v","value":"YmFy"}`, ok)
	do("", "/v3/auth/enable", `{}`, ok)

	do("", "/v3/kv/range", `{"key":"Zm9v"}`, bad)
	do("", "/v3/auth/status", `{}`, ok)
	do("", "/v3/auth/authenticate", `{"name":"alice","password":"wrong"}`, bad)
	login("alice", "apw")
	login("root", "pw")
	do("alice", "/v3/kv/range", `{"key":"Zm9v"}`, ok)
	do("bearer:alice", "/v3/kv/range", `{"key":"Zm9v"}`, ok)
	do("alice", "/v3/kv/put", `{"key":"Zm9v","value":"eA=="}`, denied)
	do("alice", "/v3/kv/range", `{"key":"emF6"}`, denied)
	do("alice", "/v3/auth/user/list", `{}`, denied)
	do("alice", "/v3/auth/user/get", `{"name":"alice"}`, ok)
	do("raw:garbage", "/v3/kv/range", `{"key":"Zm9v"}`, unauth)
	do("raw:Bearer garbage", "/v3/kv/range", `{"key":"Zm9v"}`, unauth)
	do("root", "/v3/kv/put", `{"key":"emF6","value":"eA=="}`, ok)
	do("root", "/v3/kv/range", `{"key":"emF6"}`, ok)
	do("root", "/v3/auth/user/list", `{}`, ok)
	do("root", "/v3/auth/user/delete", `{"name":"root"}`, bad)
	do("root", "/v3/auth/role/revoke", `{"role":"r","key":"Zm9v"}`, ok)
	do("root", "/v3/auth/user/changepw", `{"name":"alice","password":"new"}`, ok)
	do("alice", "/v3/kv/range", `{"key":"Zm9v"}`, -1) // invalid (simple) or stale (JWT)
	do("root", "/v3/auth/disable", `{}`, ok)
	do("", "/v3/kv/range", `{"key":"emF6"}`, ok)
}
