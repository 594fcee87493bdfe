package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// v2Resp is a v2 keys API answer: an event or an error.
type v2Resp struct {
	status    int
	etcdIndex string
	Action    string  `json:"action"`
	Node      *v2Node `json:"node"`
	PrevNode  *v2Node `json:"prevNode"`
	ErrorCode int     `json:"errorCode"`
	Message   string  `json:"message"`
	Cause     string  `json:"cause"`
}

type v2Node struct {
	Key           string    `json:"key"`
	Value         *string   `json:"value"`
	Dir           bool      `json:"dir"`
	TTL           int64     `json:"ttl"`
	Nodes         []*v2Node `json:"nodes"`
	ModifiedIndex uint64    `json:"modifiedIndex"`
	CreatedIndex  uint64    `json:"createdIndex"`
}

func v2Call(t *testing.T, method, u string, form url.Values) v2Resp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := v2Resp{status: resp.StatusCode, etcdIndex: resp.Header.Get("X-Etcd-Index")}
	if len(b) > 0 && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s %s: %v in %q", method, u, err, b)
		}
	}
	return r
}

// TestV2KeysOffByDefault: without --enable-v2 there is no /v2/keys, as in
// etcd 3.5 (and 3.6, which removed it).
func TestV2KeysOffByDefault(t *testing.T) {
	t.Parallel()
	m := newMember(t)
	m.start(t)
	if r := v2Call(t, "GET", m.clientURL+"/v2/keys/", nil); r.status != http.StatusNotFound {
		t.Fatalf("GET /v2/keys/ without --enable-v2: status %d, want 404", r.status)
	}
}

// TestV2KeysOnTheBinary runs the v2 API on a cairn process: its keys live
// under the v2 prefix of the v3 keyspace and survive kill -9, concurrent
// in-order POSTs get unique increasing names equal to their created index,
// concurrent compare-and-swap increments lose no update, and an expired
// directory takes its children with it.
func TestV2KeysOnTheBinary(t *testing.T) {
	t.Parallel()
	m := newMember(t, "--enable-v2")
	p := m.start(t)
	keys := m.clientURL + "/v2/keys"

	if r := v2Call(t, "PUT", keys+"/app/config", url.Values{"value": {"on"}}); r.status != http.StatusCreated || r.Action != "set" {
		t.Fatalf("set: %d %+v", r.status, r)
	}
	c := newClient(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if g, err := c.Get(ctx, "/", clientv3.WithPrefix()); err != nil || g.Count != 0 {
		t.Fatalf("v3 range over \"/\": %v, %v; want no key (v2 keys are under _cairn/v2/)", g, err)
	}
	if g, err := c.Get(ctx, "_cairn/v2/k/002/app/config"); err != nil || g.Count != 1 {
		t.Fatalf("v3 get of the v2 key: %v, %v", g, err)
	}

	// Concurrent in-order keys.
	const n = 16
	var wg sync.WaitGroup
	created := make([]v2Resp, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created[i] = v2Call(t, "POST", keys+"/queue", url.Values{"value": {strconv.Itoa(i)}})
		}()
	}
	wg.Wait()
	names := map[string]bool{}
	for _, r := range created {
		if r.status != http.StatusCreated || r.Action != "create" || r.Node == nil {
			t.Fatalf("POST /queue: %d %+v", r.status, r)
		}
		want := fmt.Sprintf("/queue/%020d", r.Node.CreatedIndex)
		if r.Node.Key != want {
			t.Errorf("in-order key %q, want %q (its created index)", r.Node.Key, want)
		}
		names[r.Node.Key] = true
	}
	if len(names) != n {
		t.Errorf("%d distinct in-order keys, want %d", len(names), n)
	}
	list := v2Call(t, "GET", keys+"/queue?sorted=true", nil)
	if len(list.Node.Nodes) != n {
		t.Fatalf("queue holds %d keys, want %d", len(list.Node.Nodes), n)
	}
	if !sort.SliceIsSorted(list.Node.Nodes, func(i, j int) bool {
		return list.Node.Nodes[i].CreatedIndex < list.Node.Nodes[j].CreatedIndex
	}) {
		t.Errorf("in-order keys sorted by name are not in created order")
	}

	// Concurrent compare-and-swap increments.
	v2Call(t, "PUT", keys+"/counter", url.Values{"value": {"0"}})
	const workers, incs = 4, 10
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < incs; {
				cur := v2Call(t, "GET", keys+"/counter?quorum=true", nil)
				v, _ := strconv.Atoi(*cur.Node.Value)
				r := v2Call(t, "PUT", fmt.Sprintf("%s/counter?prevIndex=%d", keys, cur.Node.ModifiedIndex), url.Values{"value": {strconv.Itoa(v + 1)}})
				switch {
				case r.Action == "compareAndSwap":
					done++
				case r.ErrorCode != 101:
					t.Errorf("CAS: %d %+v", r.status, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	if r := v2Call(t, "GET", keys+"/counter", nil); *r.Node.Value != strconv.Itoa(workers*incs) {
		t.Errorf("counter %s after %d CAS increments", *r.Node.Value, workers*incs)
	}

	// A TTL node rewritten keeps one lease: each write revokes the last.
	v2Call(t, "PUT", keys+"/lk?ttl=100", url.Values{"value": {"v"}})
	for range 3 {
		if r := v2Call(t, "PUT", keys+"/lk?ttl=100&refresh=true", nil); r.Action != "set" {
			t.Fatalf("refresh: %d %+v", r.status, r)
		}
	}
	v2Call(t, "PUT", keys+"/lk?prevValue=v&ttl=50", url.Values{"value": {"w"}})
	if ls, err := c.Leases(ctx); err != nil || len(ls.Leases) != 1 {
		t.Errorf("leases after 5 writes of one TTL node: %v, %v; want 1", ls, err)
	}
	v2Call(t, "DELETE", keys+"/lk", nil)
	if ls, err := c.Leases(ctx); err != nil || len(ls.Leases) != 0 {
		t.Errorf("leases after its deletion: %v, %v; want none", ls, err)
	}

	// An expiring directory with a child: the watch reports the expiry,
	// the child is gone, and a new directory of that name is empty.
	v2Call(t, "PUT", keys+"/tmp?dir=true&ttl=1", nil)
	child := v2Call(t, "PUT", keys+"/tmp/child", url.Values{"value": {"c"}})
	ev := v2Call(t, "GET", fmt.Sprintf("%s/tmp?wait=true&waitIndex=%d", keys, child.Node.ModifiedIndex+1), nil)
	if ev.Action != "expire" || ev.Node.Key != "/tmp" || ev.PrevNode == nil || !ev.PrevNode.Dir {
		t.Fatalf("watch of an expiring directory: %+v", ev)
	}
	if r := v2Call(t, "GET", keys+"/tmp/child", nil); r.ErrorCode != 100 || r.Cause != "/tmp" {
		t.Errorf("child of an expired directory: %d %+v, want 100 Key not found /tmp", r.status, r)
	}
	v2Call(t, "PUT", keys+"/tmp?dir=true", nil)
	if r := v2Call(t, "GET", keys+"/tmp?recursive=true", nil); len(r.Node.Nodes) != 0 {
		t.Errorf("re-created directory holds %d nodes of the expired one", len(r.Node.Nodes))
	}

	// kill -9 and restart: acknowledged v2 writes survive.
	p.kill(t)
	m.start(t)
	if r := v2Call(t, "GET", keys+"/app/config", nil); r.Node == nil || *r.Node.Value != "on" {
		t.Errorf("after kill -9: %+v", r)
	}
	if r := v2Call(t, "GET", keys+"/counter", nil); r.Node == nil || *r.Node.Value != strconv.Itoa(workers*incs) {
		t.Errorf("counter after kill -9: %+v", r)
	}
}

// TestV2KeysCluster: on three members, v2 writes through every member
// are serializable (concurrent compare-and-swap increments through all
// three lose none), a watch on one member sees a write through another and
// the leader's expiry of a TTL, and /v2/members, /v2/members/leader and
// /v2/machines list the cluster.
func TestV2KeysCluster(t *testing.T) {
	t.Parallel()
	ms, initial := newCluster(t, 3)
	var procs []*proc
	for _, m := range ms {
		procs = append(procs, m.start(t, initial, "--enable-v2"))
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	keys := func(i int) string { return ms[i].clientURL + "/v2/keys" }

	v2Call(t, "PUT", keys(0)+"/counter", url.Values{"value": {"0"}})
	const incs = 8
	var wg sync.WaitGroup
	for i := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < incs; {
				cur := v2Call(t, "GET", keys(i)+"/counter?quorum=true", nil)
				v, _ := strconv.Atoi(*cur.Node.Value)
				r := v2Call(t, "PUT", fmt.Sprintf("%s/counter?prevValue=%d", keys(i), v), url.Values{"value": {strconv.Itoa(v + 1)}})
				switch {
				case r.Action == "compareAndSwap":
					done++
				case r.ErrorCode != 101:
					t.Errorf("CAS through %s: %d %+v", ms[i].name, r.status, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	if r := v2Call(t, "GET", keys(2)+"/counter?quorum=true", nil); *r.Node.Value != strconv.Itoa(3*incs) {
		t.Errorf("counter %s after %d CAS increments through 3 members", *r.Node.Value, 3*incs)
	}

	set := v2Call(t, "PUT", keys(0)+"/w/a", url.Values{"value": {"1"}})
	ev := v2Call(t, "GET", fmt.Sprintf("%s/w?wait=true&recursive=true&waitIndex=%d", keys(2), set.Node.ModifiedIndex), nil)
	if ev.Action != "set" || ev.Node.Key != "/w/a" || ev.Node.ModifiedIndex != set.Node.ModifiedIndex {
		t.Errorf("watch on n3 of a set through n1: %+v", ev)
	}
	ttl := v2Call(t, "PUT", keys(1)+"/w/ttl?ttl=1", url.Values{"value": {"x"}})
	ev = v2Call(t, "GET", fmt.Sprintf("%s/w/ttl?wait=true&waitIndex=%d", keys(2), ttl.Node.ModifiedIndex+1), nil)
	if ev.Action != "expire" || ev.Node.Key != "/w/ttl" || ev.PrevNode == nil || *ev.PrevNode.Value != "x" {
		t.Errorf("watch on n3 of a TTL set through n2: %+v", ev)
	}

	var members struct {
		Members []struct {
			ID         string   `json:"id"`
			Name       string   `json:"name"`
			ClientURLs []string `json:"clientURLs"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(httpGet(t, ms[1].clientURL+"/v2/members"), "200 ")), &members); err != nil || len(members.Members) != 3 {
		t.Fatalf("/v2/members: %+v, %v", members, err)
	}
	ids := map[string]bool{}
	for _, m := range members.Members {
		ids[m.ID] = true
	}
	var leader struct{ ID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(httpGet(t, ms[2].clientURL+"/v2/members/leader"), "200 ")), &leader); err != nil || !ids[leader.ID] {
		t.Errorf("/v2/members/leader: %+v, %v; want one of %v", leader, err, ids)
	}
	var want []string
	for _, m := range ms {
		want = append(want, m.clientURL)
	}
	sort.Strings(want)
	if got := httpGet(t, ms[0].clientURL+"/v2/machines"); got != "200 "+strings.Join(want, ", ") {
		t.Errorf("/v2/machines: %q, want %q", got, strings.Join(want, ", "))
	}
}

// TestV2KeysFailClosedUnderAuth: once v3 auth is enabled, the v2 keys API
// (which has no credentials of its own in Cairn) refuses reads and writes
// with etcd's v2 error 110 rather than bypassing the v3 permissions; with
// auth disabled again it serves as before (docs/v2.md).
func TestV2KeysFailClosedUnderAuth(t *testing.T) {
	t.Parallel()
	m := newMember(t, "--enable-v2", "--bcrypt-cost=4")
	m.start(t)
	keys := m.clientURL + "/v2/keys"
	set := v2Call(t, "PUT", keys+"/k", url.Values{"value": {"v"}})
	if set.status != http.StatusCreated || set.Node == nil {
		t.Fatalf("set before auth: %d %+v", set.status, set)
	}
	setupAuth(t, newClient(t, m))
	for _, c := range []struct{ method, path string }{{"GET", "/k"}, {"PUT", "/k"}, {"DELETE", "/k"}, {"POST", "/q"}} {
		r := v2Call(t, c.method, keys+c.path, url.Values{"value": {"x"}})
		if r.status != http.StatusUnauthorized || r.ErrorCode != 110 || r.Message != "The request requires user authentication" {
			t.Errorf("%s %s under auth: %d %+v, want 401 with error 110", c.method, c.path, r.status, r)
		}
	}
	root := authClient(t, "root", "rootpw", m.endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if g, err := root.Get(ctx, "_cairn/v2/k/001/k"); err != nil || g.Count != 1 || uint64(g.Kvs[0].ModRevision) != set.Node.ModifiedIndex {
		t.Fatalf("the v2 key after refused writes: %v, %v; want it unchanged since index %d", g, err, set.Node.ModifiedIndex)
	}
	if _, err := root.AuthDisable(ctx); err != nil {
		t.Fatal(err)
	}
	if r := v2Call(t, "GET", keys+"/k", nil); r.status != http.StatusOK || r.Node == nil || r.Node.Value == nil || *r.Node.Value != "v" {
		t.Fatalf("get after auth disable: %d %+v", r.status, r)
	}
}
