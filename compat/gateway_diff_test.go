package compat

// Transcripts of etcd's gRPC-JSON gateway (/v3/...): the same HTTP requests,
// as curl would send them, against etcd 3.7.4 and Cairn, and the answers
// (status, content type, body; each line of a stream) compared after
// normalizing what differs by nature: cluster and member IDs, lease IDs,
// hashes, sizes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
	"github.com/cairn-kv/cairn/pkg/tlsutil/testcerts"
)

// gwStep is one request of a transcript.
type gwStep struct {
	// method is POST unless set; path and body are sent as they are after
	// {{name}} is replaced by a value saved by an earlier step.
	method, path, body string
	header             map[string]string
	// save names values of the response to reuse: var -> top-level field
	// ("ID") or field.field ("leader"), kept as JSON text.
	save map[string]string
	// lines > 0 reads a stream: the first line, then the during steps,
	// then lines-1 more lines; then the client goes away.
	lines  int
	during []gwStep
	// mask lists fields (at any depth) whose values differ by nature.
	mask []string
	// membersAnyOrder: members are listed by ID, which differs by nature,
	// so their fields' order is compared as a set.
	membersAnyOrder bool
	// auth: skip the step if Cairn serves no Auth service yet.
	auth bool
	// known, if set, says why Cairn differs here: a difference is logged,
	// not failed.
	known string
}

// gwServer is one server under test and the values its steps saved.
type gwServer struct {
	name   string
	base   string // "http://127.0.0.1:port"
	client *http.Client
	vars   map[string]string
	leases map[string]string // lease ID (decimal) -> "LEASE<n>"
}

func newGWServer(name, base string, tr http.RoundTripper) *gwServer {
	if tr == nil {
		tr = &http.Transport{}
	}
	return &gwServer{name: name, base: base, client: &http.Client{Transport: tr}, vars: map[string]string{}, leases: map[string]string{}}
}

var gwVarRe = regexp.MustCompile(`\{\{(\w+)\}\}`)

func (s *gwServer) expand(text string) string {
	return gwVarRe.ReplaceAllStringFunc(text, func(m string) string {
		return s.vars[m[2:len(m)-2]]
	})
}

// do sends st and returns what a client sees, normalized.
func (s *gwServer) do(t *testing.T, st gwStep) string {
	t.Helper()
	method := st.method
	if method == "" {
		method = http.MethodPost
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var body io.Reader
	if st.body != "" {
		body = strings.NewReader(s.expand(st.body))
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+s.expand(st.path), body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range st.header {
		req.Header.Set(k, s.expand(v))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	head := fmt.Sprintf("%d %s %s %s", resp.StatusCode, resp.Proto[:6], resp.Header.Get("Content-Type"), headerNames(resp.Header))
	if st.lines == 0 {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return head + "\nread error: " + err.Error()
		}
		s.saveVars(st, b)
		return head + "\n" + s.normalize(b, st.mask, st.membersAnyOrder)
	}
	r := bufio.NewReader(resp.Body)
	var out []string
	readLine := func() bool {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			out = append(out, s.normalize(line, st.mask, st.membersAnyOrder))
		}
		if err != nil {
			out = append(out, "end: "+err.Error())
			return false
		}
		return true
	}
	if !readLine() {
		return head + "\n" + strings.Join(out, "\n")
	}
	for _, d := range st.during {
		out = append(out, "  during "+d.path+": "+strings.ReplaceAll(s.do(t, d), "\n", " "))
	}
	for i := 1; i < st.lines && readLine(); i++ {
	}
	return head + "\n" + strings.Join(out, "\n")
}

func (s *gwServer) saveVars(st gwStep, b []byte) {
	if len(st.save) == 0 {
		return
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return
	}
	for name, field := range st.save {
		first, rest, nested := strings.Cut(field, ".")
		v := m[first]
		if nested {
			var inner map[string]json.RawMessage
			if json.Unmarshal(v, &inner) == nil {
				v = inner[rest]
			}
		}
		var str string
		if json.Unmarshal(v, &str) == nil {
			s.vars[name] = str
		} else {
			s.vars[name] = string(v)
		}
	}
}

// gwHexRe matches the lease ID a lock or election key ends with.
var gwHexRe = regexp.MustCompile(`/[0-9a-f]{8,16}$`)

// normalize rewrites one JSON document (or returns text that is not JSON
// as it is): masked and per-server fields become placeholders, lease IDs
// are numbered in order of appearance, and base64 values that end in a
// lease ID in hex (lock and election keys) are shown decoded with the ID
// replaced.
func (s *gwServer) normalize(b []byte, mask []string, anyOrder bool) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return strings.TrimRight(string(b), "\n")
	}
	masked := append([]string{"cluster_id", "member_id", "raft_term"}, mask...)
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(k, e)
			}
			return x
		case []any:
			for i, e := range x {
				x[i] = walk(key, e)
			}
			if key == "members" {
				// Listed by member ID, which differs by nature.
				slices.SortFunc(x, func(a, b any) int {
					ja, _ := json.Marshal(a)
					jb, _ := json.Marshal(b)
					return strings.Compare(string(ja), string(jb))
				})
			}
			return x
		case string:
			if slices.Contains(masked, key) {
				return "<" + key + ">"
			}
			if key == "ID" || key == "lease" {
				if _, ok := s.leases[x]; !ok {
					s.leases[x] = fmt.Sprintf("LEASE%d", len(s.leases)+1)
				}
				return s.leases[x]
			}
			if d, err := base64.StdEncoding.DecodeString(x); err == nil && gwHexRe.Match(d) {
				return "b64(" + gwHexRe.ReplaceAllString(string(d), "/<lease-hex>") + ")"
			}
			return x
		default:
			if slices.Contains(masked, key) {
				return "<" + key + ">"
			}
			return x
		}
	}
	// Fields come in the order of the proto's declarations, in etcd's
	// output as in Cairn's: keep that order in the transcript.
	var out strings.Builder
	keys := jsonKeys(b)
	if anyOrder {
		slices.Sort(keys)
	}
	out.WriteString("fields " + strings.Join(keys, ",") + ": ")
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.Encode(walk("", v))
	return strings.TrimRight(out.String(), "\n")
}

// runGWTranscript sends each step to etcd, then to Cairn, and reports the
// steps whose answers differ.
func runGWTranscript(t *testing.T, etcd, cairn *gwServer, steps []gwStep) {
	t.Helper()
	authServed := true
	for i, st := range steps {
		if st.auth && !authServed {
			continue
		}
		e := etcd.do(t, st)
		c := cairn.do(t, st)
		if st.auth && strings.Contains(c, "unknown service etcdserverpb.Auth") {
			t.Logf("Cairn serves no Auth service yet: skipping the /v3/auth steps")
			authServed = false
			continue
		}
		if trace {
			t.Logf("step %d %s %s:\n%s", i, st.path, shorten(st.body, 200), e)
		}
		if e != c && st.known != "" {
			t.Logf("step %d %s: known difference (%s):\netcd:\n%s\ncairn:\n%s", i, st.path, st.known, e, c)
			continue
		}
		if e != c {
			t.Errorf("step %d %s %s:\netcd:\n%s\ncairn:\n%s", i, st.path, shorten(st.body, 200), e, c)
		}
	}
}

// gwMainSteps cover every route family: KV (put, range, txn, delete,
// compaction), watch and lease streams, leases, cluster, maintenance,
// lock, election, and the gateway's own errors.
func gwMainSteps() []gwStep {
	status := []string{"dbSize", "dbSizeInUse", "leader", "raftIndex", "raftAppliedIndex"}
	return []gwStep{
		// KV
		{path: "/v3/kv/put", body: `{"key":"Zm9v","value":"YmFy"}`},
		{path: "/v3/kv/put", body: `{"key":"Zm9vMg==","value":"YmF6","prev_kv":true}`},
		{path: "/v3/kv/put", body: `{"key":"Zm9vMg==","value":"cXV4","prevKv":true}`},
		{path: "/v3/kv/range", body: `{"key":"Zm9v"}`},
		{path: "/v3/kv/range", body: `{"key":"Zm9v","range_end":"Zm9w"}`},
		{path: "/v3/kv/range", body: `{"key":"Zm9v","range_end":"Zm9w","limit":1,"sort_order":"DESCEND","sort_target":"MOD"}`},
		{path: "/v3/kv/range", body: `{"key":"AA==","range_end":"AA==","count_only":true}`},
		{path: "/v3/kv/range", body: `{"key":"Zm9v","range_end":"Zm9w","keys_only":true,"revision":"2"}`},
		{path: "/v3/kv/range", body: `{"key":"bm90aGVyZQ=="}`},
		{path: "/v3/kv/range", body: `{"key":"Zm9v","unknown_field":1}`},
		{path: "/v3beta/kv/range", body: `{"key":"Zm9v"}`},
		{path: "/v3/kv/txn", body: `{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"dHhu"}}],"failure":[{"request_range":{"key":"Zm9v"}}]}`},
		{path: "/v3/kv/txn", body: `{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"dHhu"}}],"failure":[{"request_range":{"key":"Zm9v"}}]}`},
		{path: "/v3/kv/txn", body: `{"compare":[{"key":"Zm9v","target":"CREATE","create_revision":"0","result":"GREATER"}],"success":[{"request_delete_range":{"key":"Zm9vMg==","prev_kv":true}},{"request_txn":{}}]}`},
		{path: "/v3/kv/deleterange", body: `{"key":"Zm9v","range_end":"Zm9w","prev_kv":true}`},
		{path: "/v3/kv/put", body: `{"key":"YQ==","value":"MQ=="}`},
		{path: "/v3/kv/put", body: `{"key":"YQ==","value":"Mg=="}`},
		{path: "/v3/kv/compaction", body: `{"revision":"7","physical":true}`},
		// Errors of the gateway and of the server.
		{path: "/v3/kv/range", body: `{"key":"YQ==","revision":"3"}`},
		{path: "/v3/kv/compaction", body: `{"revision":"5"}`},
		{path: "/v3/kv/compaction", body: `{"revision":"100"}`},
		{path: "/v3/kv/range", body: `{"key":`},
		{path: "/v3/kv/range", body: `not json`},
		{path: "/v3/kv/range", body: `{"key":"!!!"}`},
		{path: "/v3/kv/range", body: `{"key":"YQ==","limit":"ten"}`},
		{path: "/v3/kv/range", body: `["key"]`},
		{path: "/v3/kv/range", body: ``},
		{path: "/v3/kv/put", body: `{"value":"YQ=="}`},
		{path: "/v3/kv/range", body: `{"key":"YQ==","range_end":"AQ=="}`},
		{path: "/v3/kv/txn", body: `{"success":[{"request_put":{"key":"YQ=="}},{"request_put":{"key":"YQ=="}}]}`},
		{path: "/v3/kv/nothing", body: `{}`},
		{path: "/v3/kv/range", method: http.MethodGet},
		{path: "/v3/kv/range", method: http.MethodPut, body: `{"key":"YQ=="}`},
		{path: "/v3", method: http.MethodGet},
		// Leases: grant, time to live, list, a keep-alive stream, revoke.
		{path: "/v3/lease/grant", body: `{"TTL":"60"}`, save: map[string]string{"lease": "ID"}},
		{path: "/v3/lease/grant", body: `{"TTL":30,"ID":"1000"}`},
		{path: "/v3/lease/grant", body: `{"TTL":30,"ID":"1000"}`},
		{path: "/v3/kv/put", body: `{"key":"bGs=","value":"dg==","lease":"{{lease}}"}`},
		{path: "/v3/lease/timetolive", body: `{"ID":"{{lease}}","keys":true}`, mask: []string{"TTL"}},
		{path: "/v3/kv/lease/timetolive", body: `{"ID":"{{lease}}"}`, mask: []string{"TTL"}},
		{path: "/v3/lease/leases", body: `{}`},
		{path: "/v3/lease/keepalive", body: `{"ID":"{{lease}}"}`, lines: 5, mask: []string{"TTL"}},
		{path: "/v3/lease/keepalive", body: `{"ID":"{{lease}}"} {"ID":"{{lease}}"}`, lines: 5, mask: []string{"TTL"}},
		{path: "/v3/lease/keepalive", body: `{"ID":"12345"}`, lines: 5},
		{path: "/v3/lease/revoke", body: `{"ID":"1000"}`},
		{path: "/v3/kv/lease/revoke", body: `{"ID":"1000"}`},
		{path: "/v3/lease/timetolive", body: `{"ID":"1000"}`},
		{path: "/v3/lease/grant", body: `{"TTL":"-1"}`},
		// Watch: a stream with events, from the past and live, and
		// compacted and bad requests.
		{path: "/v3/watch", body: `{"create_request":{"key":"dw==","prev_kv":true}}`, lines: 4, during: []gwStep{
			{path: "/v3/kv/put", body: `{"key":"dw==","value":"MQ=="}`},
			{path: "/v3/kv/put", body: `{"key":"dw==","value":"Mg=="}`},
			{path: "/v3/kv/deleterange", body: `{"key":"dw=="}`},
		}},
		{path: "/v3/watch", body: `{"create_request":{"key":"dw==","start_revision":"12"}}`, lines: 2},
		{path: "/v3/watch", body: `{"create_request":{"key":"AA==","range_end":"AA==","start_revision":"2"}}`, lines: 2},
		{path: "/v3/watch", body: `{"create_request":{"key":"dw==","watch_id":"7","filters":["NOPUT"],"progress_notify":true}}`, lines: 2, during: []gwStep{
			{path: "/v3/kv/put", body: `{"key":"dw==","value":"Mw=="}`},
			{path: "/v3/kv/deleterange", body: `{"key":"dw=="}`},
		}},
		{path: "/v3/watch", body: `{"create_request":{"key":"dw=="}} {"cancel_request":{"watch_id":"0"}}`, lines: 2},
		// Cluster
		{path: "/v3/cluster/member/list", body: `{}`, mask: []string{"ID", "peerURLs", "clientURLs"}, membersAnyOrder: true},
		{path: "/v3/cluster/member/list", body: `{"linearizable":true}`, mask: []string{"ID", "peerURLs", "clientURLs"}, membersAnyOrder: true},
		{path: "/v3/cluster/member/add", body: `{"peerURLs":["http://127.0.0.1:1"],"isLearner":true}`, mask: []string{"ID", "peerURLs", "clientURLs"}, membersAnyOrder: true, save: map[string]string{"learner": "member.ID"}},
		{path: "/v3/cluster/member/promote", body: `{"ID":"{{learner}}"}`},
		{path: "/v3/cluster/member/update", body: `{"ID":"{{learner}}","peerURLs":["http://127.0.0.1:2"]}`, mask: []string{"ID", "peerURLs", "clientURLs"}, membersAnyOrder: true},
		{path: "/v3/cluster/member/remove", body: `{"ID":"{{learner}}"}`, mask: []string{"ID", "peerURLs", "clientURLs"}, membersAnyOrder: true},
		{path: "/v3/cluster/member/remove", body: `{"ID":"{{learner}}"}`},
		{path: "/v3/cluster/member/add", body: `{"peerURLs":["not a url"]}`},
		// Maintenance
		{path: "/v3/maintenance/status", body: `{}`, mask: status},
		{path: "/v3/maintenance/alarm", body: `{"action":"GET"}`},
		{path: "/v3/maintenance/alarm", body: `{"action":"DEACTIVATE","alarm":"NOSPACE"}`},
		{path: "/v3/maintenance/defragment", body: `{}`},
		{path: "/v3/maintenance/hash", body: `{}`, mask: []string{"hash"}},
		{path: "/v3/maintenance/hashkv", body: `{"revision":"0"}`, mask: []string{"hash", "hash_revision"}},
		{path: "/v3/maintenance/hashkv", body: `{"revision":"3"}`},
		{path: "/v3/maintenance/transfer-leadership", body: `{"targetID":"1"}`},
		// A backup streams as JSON chunks; its bytes differ by nature.
		{path: "/v3/maintenance/snapshot", body: `{}`, lines: 1, mask: []string{"blob", "remaining_bytes"},
			known: "Cairn's backups declare storage version 3.6.0 (backup.StorageVersion), so etcd 3.6 restores them"},
		{path: "/v3/maintenance/downgrade", body: `{"action":"CANCEL","version":"3.6"}`, known: "Cairn's Maintenance has no Downgrade"},
		{path: "/v3/maintenance/downgrade", body: `{"action":"VALIDATE","version":"2.0"}`, known: "Cairn's Maintenance has no Downgrade"},
		// Lock and election.
		{path: "/v3/lease/grant", body: `{"TTL":"60"}`, save: map[string]string{"session": "ID"}},
		{path: "/v3/lock/lock", body: `{"name":"bXlsb2Nr","lease":"{{session}}"}`, save: map[string]string{"lockkey": "key"}},
		{path: "/v3/kv/range", body: `{"key":"bXlsb2Nr","range_end":"bXlsb2Ns"}`},
		{path: "/v3/lock/unlock", body: `{"key":"{{lockkey}}"}`},
		{path: "/v3/lock/lock", body: `{"name":"bXlsb2Nr","lease":"999"}`},
		{path: "/v3/lock/lock", body: `{"name":"!!"}`},
		{path: "/v3/election/campaign", body: `{"name":"ZWxlY3Rpb24=","lease":"{{session}}","value":"djE="}`, save: map[string]string{"leader": "leader"}},
		{path: "/v3/election/leader", body: `{"name":"ZWxlY3Rpb24="}`},
		{path: "/v3/election/proclaim", body: `{"leader":{{leader}},"value":"djI="}`},
		{path: "/v3/election/observe", body: `{"name":"ZWxlY3Rpb24="}`, lines: 2, during: []gwStep{
			{path: "/v3/election/proclaim", body: `{"leader":{{leader}},"value":"djM="}`},
		}},
		{path: "/v3/election/resign", body: `{"leader":{{leader}}}`},
		{path: "/v3/election/leader", body: `{"name":"ZWxlY3Rpb24="}`},
		{path: "/v3/election/proclaim", body: `{"leader":{{leader}},"value":"djQ="}`},
		{path: "/v3/election/resign", body: `{}`},
		{path: "/v3/election/campaign", body: `{"name":"ZWxlY3Rpb24=","lease":"999"}`},
	}
}

// Every route family of the gateway answers as etcd's, plaintext HTTP/1.1.
func TestGatewayMatchesEtcd(t *testing.T) {
	cairnEps, etcdEps := cluster.StartBoth(t)
	// Status and snapshots carry the storage version.
	cluster.WaitEtcdSettled(t, etcdEps[0])
	etcd := newGWServer("etcd", "http://"+etcdEps[0], nil)
	cairn := newGWServer("cairn", "http://"+cairnEps[0], nil)
	runGWTranscript(t, etcd, cairn, gwMainSteps())
}

// gwAuthSteps turn auth on, use a token in the Authorization header, and
// turn it off again.
func gwAuthSteps() []gwStep {
	return []gwStep{
		{path: "/v3/auth/status", body: `{}`, auth: true},
		{path: "/v3/auth/user/add", body: `{"name":"root","password":"rootpw"}`, auth: true},
		{path: "/v3/auth/user/grant", body: `{"user":"root","role":"root"}`, auth: true},
		{path: "/v3/auth/role/add", body: `{"name":"reader"}`, auth: true},
		{path: "/v3/auth/role/grant", body: `{"name":"reader","perm":{"permType":"READ","key":"YQ==","range_end":"Yg=="}}`, auth: true},
		{path: "/v3/auth/user/add", body: `{"name":"alice","password":"pw"}`, auth: true},
		{path: "/v3/auth/user/grant", body: `{"user":"alice","role":"reader"}`, auth: true},
		{path: "/v3/auth/role/get", body: `{"role":"reader"}`, auth: true},
		{path: "/v3/auth/user/get", body: `{"name":"alice"}`, auth: true},
		{path: "/v3/auth/user/list", body: `{}`, auth: true},
		{path: "/v3/auth/role/list", body: `{}`, auth: true},
		{path: "/v3/auth/enable", body: `{}`, auth: true},
		{path: "/v3/kv/put", body: `{"key":"YQ==","value":"MQ=="}`, auth: true},
		{path: "/v3/auth/authenticate", body: `{"name":"root","password":"wrong"}`, auth: true},
		{path: "/v3/auth/authenticate", body: `{"name":"root","password":"rootpw"}`, auth: true, save: map[string]string{"root": "token"}, mask: []string{"token"}},
		{path: "/v3/auth/authenticate", body: `{"name":"alice","password":"pw"}`, auth: true, save: map[string]string{"alice": "token"}, mask: []string{"token"}},
		{path: "/v3/kv/put", body: `{"key":"YQ==","value":"MQ=="}`, header: map[string]string{"Authorization": "{{root}}"}, auth: true},
		{path: "/v3/kv/range", body: `{"key":"YQ=="}`, header: map[string]string{"Authorization": "{{alice}}"}, auth: true},
		{path: "/v3/kv/put", body: `{"key":"YQ==","value":"Mg=="}`, header: map[string]string{"Authorization": "{{alice}}"}, auth: true},
		{path: "/v3/kv/range", body: `{"key":"YQ=="}`, header: map[string]string{"Authorization": "not-a-token"}, auth: true},
		{path: "/v3/auth/user/changepw", body: `{"name":"alice","password":"pw2"}`, header: map[string]string{"Authorization": "{{root}}"}, auth: true},
		{path: "/v3/auth/role/revoke", body: `{"role":"reader","key":"YQ==","range_end":"Yg=="}`, header: map[string]string{"Authorization": "{{root}}"}, auth: true},
		{path: "/v3/auth/user/revoke", body: `{"name":"alice","role":"reader"}`, header: map[string]string{"Authorization": "{{root}}"}, auth: true},
		{path: "/v3/auth/user/delete", body: `{"name":"alice"}`, header: map[string]string{"Authorization": "{{root}}"}, auth: true},
		{path: "/v3/auth/role/delete", body: `{"role":"reader"}`, header: map[string]string{"Authorization": "{{root}}"}, auth: true},
		{path: "/v3/auth/disable", body: `{}`, header: map[string]string{"Authorization": "{{root}}"}, auth: true},
		{path: "/v3/auth/status", body: `{}`, auth: true},
	}
}

// The Auth routes, with a token forwarded from the Authorization header as
// gRPC metadata, answer as etcd's (once Cairn serves the Auth service).
func TestGatewayAuthMatchesEtcd(t *testing.T) {
	cairnEps, etcdEps := cluster.StartBoth(t)
	etcd := newGWServer("etcd", "http://"+etcdEps[0], nil)
	cairn := newGWServer("cairn", "http://"+cairnEps[0], nil)
	runGWTranscript(t, etcd, cairn, gwAuthSteps())
}

// --max-request-bytes applies to the gateway's requests: just over it,
// etcd's "request is too large"; past gRPC's message limit (the limit plus
// 512 KiB), gRPC's ResourceExhausted.
func TestGatewayRequestTooLargeMatchesEtcd(t *testing.T) {
	cairnEps, etcdEps := cluster.StartBothWith(t, cluster.Options{MaxRequestBytes: 4096})
	etcd := newGWServer("etcd", "http://"+etcdEps[0], nil)
	cairn := newGWServer("cairn", "http://"+cairnEps[0], nil)
	value := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	runGWTranscript(t, etcd, cairn, []gwStep{
		{path: "/v3/kv/put", body: `{"key":"YQ==","value":"` + value(4000) + `"}`},
		{path: "/v3/kv/put", body: `{"key":"YQ==","value":"` + value(5000) + `"}`},
		{path: "/v3/kv/put", body: `{"key":"YQ==","value":"` + value(600*1024) + `"}`},
		{path: "/v3/kv/txn", body: `{"success":[{"request_put":{"key":"YQ==","value":"` + value(3000) + `"}},{"request_put":{"key":"Yg==","value":"` + value(3000) + `"}}]}`},
		{path: "/v3/watch", body: `{"create_request":{"key":"` + value(5000) + `"}}`, lines: 1},
		// Cairn reads at most twice gRPC's message limit of JSON per
		// request (memory bounded by the configuration); etcd decodes any
		// body and lets gRPC refuse the message.
		{path: "/v3/kv/put", body: `{"key":"YQ==","value":"` + value(900*1024) + `"}`,
			known: `past twice the message limit Cairn answers ResourceExhausted (429) "http: request body too large", etcd gRPC's "received message larger than max (N vs. M)"`},
	})
}

// Over TLS, with a client certificate: HTTP/1.1 and HTTP/2 (ALPN h2, as
// curl --http2) clients both reach the gateway, while gRPC clients on the
// same port still reach gRPC.
func TestGatewayTLSMatchesEtcd(t *testing.T) {
	pki := newTestPKI(t)
	opts := cluster.Options{TLS: &cluster.TLS{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key,
		TrustedCAFile: pki.CA, ClientCertAuth: true}}
	cairnEps, etcdEps := cluster.StartBothWith(t, opts)
	steps := []gwStep{
		{path: "/v3/kv/put", body: `{"key":"Zm9v","value":"YmFy"}`},
		{path: "/v3/kv/range", body: `{"key":"Zm9v"}`},
		{path: "/v3/kv/range", body: `{"key":`},
		{path: "/v3/lease/grant", body: `{"TTL":"60"}`, save: map[string]string{"lease": "ID"}},
		{path: "/v3/lease/keepalive", body: `{"ID":"{{lease}}"}`, lines: 2, mask: []string{"TTL"}},
		{path: "/v3/watch", body: `{"create_request":{"key":"Zm9v"}}`, lines: 2, during: []gwStep{
			{path: "/v3/kv/put", body: `{"key":"Zm9v","value":"YmF6"}`},
		}},
		{path: "/v3/lock/lock", body: `{"name":"bA==","lease":"{{lease}}"}`, save: map[string]string{"lockkey": "key"}},
		{path: "/v3/lock/unlock", body: `{"key":"{{lockkey}}"}`},
		{path: "/v3/election/campaign", body: `{"name":"ZWw=","lease":"{{lease}}","value":"djE="}`},
		{path: "/v3/election/observe", body: `{"name":"ZWw="}`, lines: 1},
		{path: "/v3/lease/revoke", body: `{"ID":"{{lease}}"}`},
		{path: "/health", method: http.MethodGet},
	}
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", h2), func(t *testing.T) {
			tr := func() http.RoundTripper {
				cfg := pki.clientTLS(t)
				if !h2 {
					cfg.NextProtos = []string{"http/1.1"}
					return &http.Transport{TLSClientConfig: cfg, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
				}
				return &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
			}
			etcd := newGWServer("etcd", "https://"+etcdEps[0], tr())
			cairn := newGWServer("cairn", "https://"+cairnEps[0], tr())
			runGWTranscript(t, etcd, cairn, steps)
		})
	}
	// gRPC on the same TLS port is unaffected.
	grpcPutGet(t, cairnEps[0], pki)
}

// gwPKI is a test PKI and the client side of it.
type gwPKI struct{ *testcerts.PKI }

func newTestPKI(t *testing.T) gwPKI {
	t.Helper()
	p, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return gwPKI{p}
}

// clientTLS trusts the CA and presents the Client certificate.
func (p gwPKI) clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	b, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b)
	c, err := tls.LoadX509KeyPair(p.Client.Cert, p.Client.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{c}}
}

// grpcPutGet puts and gets a key with clientv3 over TLS at ep.
func grpcPutGet(t *testing.T, ep string, p gwPKI) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + ep}, TLS: p.clientTLS(t), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "grpc", "v"); err != nil {
		t.Fatalf("gRPC put over TLS: %v", err)
	}
	r, err := cli.Get(ctx, "grpc")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v" {
		t.Fatalf("gRPC get over TLS: %v %v", r, err)
	}
}

// jsonKeys lists the object keys of a JSON document in the order they
// appear.
func jsonKeys(b []byte) []string {
	type level struct{ obj, wantKey bool }
	var (
		keys  []string
		stack []level
	)
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
			} else {
				keys = append(keys, fmt.Sprint(tok))
				stack[n-1].wantKey = false
				continue
			}
		} else {
			switch tok {
			case json.Delim('{'):
				stack = append(stack, level{obj: true, wantKey: true})
				continue
			case json.Delim('['):
				stack = append(stack, level{})
				continue
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		// A value ended: in an object, a key comes next.
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
}

// headerNames lists a response's header names, less those that differ by
// nature (Date, Content-Length) and etcd's CORS headers (Cairn sends none:
// docs/flags.md, --cors). Over TLS, etcd's gRPC server runs behind its
// HTTP handler (grpc.Server.ServeHTTP), whose CORS headers and "Trailer"
// announcement reach the gateway as gRPC header metadata and come back as
// Grpc-Metadata-Access-Control-* and Grpc-Metadata-Trailer; Cairn's gRPC
// transport sends no such metadata.
func headerNames(h http.Header) string {
	var names []string
	for k := range h {
		switch {
		case k == "Date", k == "Content-Length", k == "Content-Type", strings.HasPrefix(k, "Access-Control-"),
			strings.HasPrefix(k, "Grpc-Metadata-Access-Control-"), k == "Grpc-Metadata-Trailer":
			continue
		}
		names = append(names, k)
	}
	slices.Sort(names)
	return "[" + strings.Join(names, " ") + "]"
}
