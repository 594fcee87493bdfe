package discovery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/discovery"
)

// v2Keys is the part of the v2 keys API v2 discovery uses, kept in memory,
// for testing the protocol's client side: GET of a key or a directory,
// PUT with prevExist=false, and GET with wait=true, waitIndex and
// recursive over the full event history. (The members bootstrapped by a
// real v2 keys server, Cairn's, are tested in tests/.)
type v2Keys struct {
	mu     sync.Mutex
	index  uint64
	values map[string]v2Entry // by key, "/discovery/<token>/..."
	events []v2Event
	change chan struct{} // closed and replaced on every write
}

type v2Entry struct {
	value          string
	created, index uint64
}

type v2Event struct {
	action string
	key    string
	entry  v2Entry
}

func newV2Keys() *v2Keys {
	return &v2Keys{values: map[string]v2Entry{}, change: make(chan struct{})}
}

func (s *v2Keys) set(key, value string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setLocked(key, value)
}

func (s *v2Keys) setLocked(key, value string) uint64 {
	s.index++
	e := v2Entry{value: value, created: s.index, index: s.index}
	s.values[key] = e
	s.events = append(s.events, v2Event{"create", key, e})
	close(s.change)
	s.change = make(chan struct{})
	return s.index
}

func nodeJSON(key string, e v2Entry) map[string]any {
	return map[string]any{"key": key, "value": e.value, "createdIndex": e.created, "modifiedIndex": e.index}
}

func (s *v2Keys) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, "/v2/keys")
	if !ok {
		http.NotFound(w, r)
		return
	}
	key = path.Clean("/" + key)
	_ = r.ParseForm()
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Etcd-Index", strconv.FormatUint(s.index, 10))
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	s.mu.Lock()
	switch {
	case r.Method == http.MethodPut:
		if _, exists := s.values[key]; exists && r.Form.Get("prevExist") == "false" {
			reply(http.StatusPreconditionFailed, map[string]any{"errorCode": 105, "message": "Key already exists", "cause": key, "index": s.index})
			break
		}
		s.setLocked(key, r.Form.Get("value"))
		reply(http.StatusCreated, map[string]any{"action": "create", "node": nodeJSON(key, s.values[key])})
	case r.Form.Get("wait") == "true":
		from, _ := strconv.ParseUint(r.Form.Get("waitIndex"), 10, 64)
		recursive := r.Form.Get("recursive") == "true"
		for {
			for _, ev := range s.events {
				if ev.entry.index >= from && (ev.key == key || recursive && strings.HasPrefix(ev.key, key+"/")) {
					reply(http.StatusOK, map[string]any{"action": ev.action, "node": nodeJSON(ev.key, ev.entry)})
					s.mu.Unlock()
					return
				}
			}
			ch := s.change
			s.mu.Unlock()
			select {
			case <-ch:
			case <-r.Context().Done():
				return
			}
			s.mu.Lock()
		}
	default:
		if e, ok := s.values[key]; ok {
			reply(http.StatusOK, map[string]any{"action": "get", "node": nodeJSON(key, e)})
			break
		}
		children := map[string]map[string]any{}
		for k, e := range s.values {
			rest, ok := strings.CutPrefix(k, key+"/")
			if !ok {
				continue
			}
			if first, _, deeper := strings.Cut(rest, "/"); deeper {
				children[first] = map[string]any{"key": key + "/" + first, "dir": true}
			} else {
				children[first] = nodeJSON(k, e)
			}
		}
		if len(children) == 0 {
			reply(http.StatusNotFound, map[string]any{"errorCode": 100, "message": "Key not found", "cause": key, "index": s.index})
			break
		}
		var nodes []map[string]any
		for _, n := range children {
			nodes = append(nodes, n)
		}
		reply(http.StatusOK, map[string]any{"action": "get", "node": map[string]any{"key": key, "dir": true, "nodes": nodes}})
	}
	s.mu.Unlock()
}

// forwardProxy is an HTTP forward proxy that counts the requests it relays.
type forwardProxy struct{ n atomic.Int64 }

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.n.Add(1)
	out := r.Clone(r.Context())
	out.RequestURI = ""
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func joinAllV2(t *testing.T, durl, proxy string, names ...string) ([]string, []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errs := make([]string, len(names)), make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = discovery.JoinV2(ctx, nil, durl, proxy, uint64(100+i), fmt.Sprintf("%s=http://127.0.0.1:%d", n, 7000+i))
		}()
	}
	wg.Wait()
	return out, errs
}

func TestJoinV2(t *testing.T) {
	keys := newV2Keys()
	srv := httptest.NewServer(keys)
	defer srv.Close()
	proxy := &forwardProxy{}
	psrv := httptest.NewServer(proxy)
	defer psrv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	durl, err := discovery.NewV2Token(ctx, srv.URL, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(durl, srv.URL+"/v2/keys/discovery/") {
		t.Fatalf("discovery URL %s", durl)
	}
	// Through the proxy, given without a scheme as etcd accepts it.
	got, errs := joinAllV2(t, durl, strings.TrimPrefix(psrv.URL, "http://"), "a", "b", "c")
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("member %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("members disagree: %q vs %q", got[i], got[0])
		}
	}
	parts := strings.Split(got[0], ",")
	sort.Strings(parts)
	if want := "a=http://127.0.0.1:7000 b=http://127.0.0.1:7001 c=http://127.0.0.1:7002"; strings.Join(parts, " ") != want {
		t.Fatalf("cluster %q, want %s", got[0], want)
	}
	if proxy.n.Load() == 0 {
		t.Fatal("no request went through --discovery-proxy")
	}
	_, token, _ := strings.Cut(durl, "/v2/keys")
	for i, id := range []string{"64", "65", "66"} {
		if e, ok := keys.values[token+"/"+id]; !ok || !strings.HasPrefix(e.value, string(rune('a'+i))+"=") {
			t.Errorf("registration %s/%s: %v", token, id, e)
		}
	}

	for _, tc := range []struct {
		id   uint64
		want error
	}{
		{200, discovery.ErrFullCluster},
		{101, discovery.ErrDuplicateID}, // registered already: its data dir was lost
	} {
		_, err := discovery.JoinV2(ctx, nil, durl, "", tc.id, "late=http://127.0.0.1:7009")
		if !errors.Is(err, tc.want) {
			t.Errorf("ID %d: %v, want %v", tc.id, err, tc.want)
		}
	}
}

func TestJoinV2Errors(t *testing.T) {
	keys := newV2Keys()
	srv := httptest.NewServer(keys)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys.set("/discovery/words/_config/size", "three")

	_, err := discovery.JoinV2(ctx, nil, srv.URL+"/v2/keys/discovery/missing", "", 1, "a=http://127.0.0.1:7000")
	// etcd 3.5 passes the v2 error on as it is.
	if want := "100: Key not found (/discovery/missing/_config/size) [1]"; err == nil || err.Error() != want {
		t.Errorf("missing token: %v, want %s", err, want)
	}
	_, err = discovery.JoinV2(ctx, nil, srv.URL+"/v2/keys/discovery/words", "", 1, "a=http://127.0.0.1:7000")
	if !errors.Is(err, discovery.ErrBadSizeKey) {
		t.Errorf("bad size: %v", err)
	}
	notEtcd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>hello</html>")
	}))
	defer notEtcd.Close()
	_, err = discovery.JoinV2(ctx, nil, notEtcd.URL+"/v2/keys/discovery/x", "", 1, "a=http://127.0.0.1:7000")
	if !errors.Is(err, discovery.ErrBadDiscoveryEndpoint) {
		t.Errorf("not a v2 keys server: %v", err)
	}

	durl, err := discovery.NewV2Token(ctx, srv.URL, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	_, errs := joinAllV2(t, durl, "", "same", "same")
	for i, err := range errs {
		if !errors.Is(err, discovery.ErrDuplicateName) {
			t.Errorf("member %d: %v, want %v", i, err, discovery.ErrDuplicateName)
		}
	}
}
