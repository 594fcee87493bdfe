package v2http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/membership"
)

// The v2 routes, as etcd 3.5's v2http.
const (
	keysPrefix     = "/v2/keys"
	membersPrefix  = "/v2/members"
	machinesPrefix = "/v2/machines"
)

// Member is what the v2 API needs of the member it serves.
type Member interface {
	ClusterID() uint64
	// Leader is the leader's ID, 0 during an election.
	Leader() uint64
	Members() []membership.Member
	// Status gives X-Raft-Index and X-Raft-Term (RaftIndex, RaftTerm).
	Status() *pb.StatusResponse
	MemberAdd(ctx context.Context, peerURLs []string, isLearner bool) (membership.Member, []membership.Member, error)
	MemberRemove(ctx context.Context, id uint64) ([]membership.Member, error)
	MemberUpdate(ctx context.Context, id uint64, peerURLs []string) ([]membership.Member, error)
}

// Options configure the v2 API. Member and Client are required.
type Options struct {
	Member Member
	// Client returns the member's v3 client to itself; an error answers
	// 300 Raft Internal Error (the client is not ready yet, or closed).
	Client func() (Client, error)
	// RequestTimeout bounds a non-watch request (default 5s + election
	// timeout in etcd; here 0 means 10s).
	RequestTimeout time.Duration
	// Now is the clock of TTLs (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Register serves /v2/keys, /v2/members and /v2/machines on mux.
func Register(mux *http.ServeMux, o Options) {
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &handler{o: o, st: &store{now: o.Now}}
	mux.Handle(keysPrefix, http.HandlerFunc(h.serveKeys))
	mux.Handle(keysPrefix+"/", http.HandlerFunc(h.serveKeys))
	mux.Handle(membersPrefix, http.HandlerFunc(h.serveMembers))
	mux.Handle(membersPrefix+"/", http.HandlerFunc(h.serveMembers))
	mux.Handle(machinesPrefix, http.HandlerFunc(h.serveMachines))
}

type handler struct {
	o  Options
	st *store
}

func allowMethod(w http.ResponseWriter, m string, ms ...string) bool {
	for _, x := range ms {
		if m == x {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(ms, ","))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// keyRequest is a parsed /v2/keys request, as v2http.parseKeyRequest.
type keyRequest struct {
	method                               string
	path                                 string
	value, prevValue                     string
	prevIndex, waitIndex                 uint64
	recursive, sorted, wait, dir, quorum bool
	stream, noValueOnSuccess             bool
	prevExist, refresh                   *bool
	ttl                                  *uint64
}

func getUint64(form url.Values, key string) (uint64, error) {
	if vals, ok := form[key]; ok {
		return strconv.ParseUint(vals[0], 10, 64)
	}
	return 0, nil
}

func getBool(form url.Values, key string) (bool, error) {
	if vals, ok := form[key]; ok {
		return strconv.ParseBool(vals[0])
	}
	return false, nil
}

func parseKeyRequest(r *http.Request) (*keyRequest, error) {
	if err := r.ParseForm(); err != nil {
		return nil, newError(ecodeInvalidForm, err.Error(), 0)
	}
	if !strings.HasPrefix(r.URL.Path, keysPrefix) {
		return nil, newError(ecodeInvalidForm, "incorrect key prefix", 0)
	}
	kr := &keyRequest{method: r.Method, path: path.Join("/", r.URL.Path[len(keysPrefix):])}
	var err error
	if kr.prevIndex, err = getUint64(r.Form, "prevIndex"); err != nil {
		return nil, newError(ecodeIndexNaN, `invalid value for "prevIndex"`, 0)
	}
	if kr.waitIndex, err = getUint64(r.Form, "waitIndex"); err != nil {
		return nil, newError(ecodeIndexNaN, `invalid value for "waitIndex"`, 0)
	}
	for _, b := range []struct {
		name string
		v    *bool
	}{{"recursive", &kr.recursive}, {"sorted", &kr.sorted}, {"wait", &kr.wait}, {"dir", &kr.dir}, {"quorum", &kr.quorum}, {"stream", &kr.stream}} {
		if *b.v, err = getBool(r.Form, b.name); err != nil {
			return nil, newError(ecodeInvalidField, fmt.Sprintf("invalid value for %q", b.name), 0)
		}
	}
	if kr.wait && r.Method != http.MethodGet {
		return nil, newError(ecodeInvalidField, `"wait" can only be used with GET requests`, 0)
	}
	kr.prevValue = r.FormValue("prevValue")
	if _, ok := r.Form["prevValue"]; ok && kr.prevValue == "" {
		return nil, newError(ecodePrevValueRequired, `"prevValue" cannot be empty`, 0)
	}
	if kr.noValueOnSuccess, err = getBool(r.Form, "noValueOnSuccess"); err != nil {
		return nil, newError(ecodeInvalidField, `invalid value for "noValueOnSuccess"`, 0)
	}
	if len(r.FormValue("ttl")) > 0 {
		i, err := getUint64(r.Form, "ttl")
		if err != nil {
			return nil, newError(ecodeTTLNaN, `invalid value for "ttl"`, 0)
		}
		kr.ttl = &i
	}
	if _, ok := r.Form["prevExist"]; ok {
		b, err := getBool(r.Form, "prevExist")
		if err != nil {
			return nil, newError(ecodeInvalidField, "invalid value for prevExist", 0)
		}
		kr.prevExist = &b
	}
	if _, ok := r.Form["refresh"]; ok {
		b, err := getBool(r.Form, "refresh")
		if err != nil {
			return nil, newError(ecodeInvalidField, "invalid value for refresh", 0)
		}
		kr.refresh = &b
		if b {
			if _, ok := r.Form["value"]; ok && r.FormValue("value") != "" {
				return nil, newError(ecodeRefreshValue, "A value was provided on a refresh", 0)
			}
			if kr.ttl == nil {
				return nil, newError(ecodeRefreshTTLNeeded, "No TTL value set", 0)
			}
		}
	}
	kr.value = r.FormValue("value")
	return kr, nil
}

func (h *handler) client() (Client, error) {
	c, err := h.o.Client()
	if err != nil {
		return nil, newError(ecodeRaftInternal, err.Error(), 0)
	}
	return c, nil
}

func (h *handler) serveKeys(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "HEAD", "GET", "PUT", "POST", "DELETE") {
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", fmt.Sprintf("%x", h.o.Member.ClusterID()))
	kr, err := parseKeyRequest(r)
	if err != nil {
		v3Error(err).writeTo(w)
		return
	}
	c, err := h.client()
	if err != nil {
		v3Error(err).writeTo(w)
		return
	}
	if kr.wait {
		err := h.st.watch(r.Context(), c, w, kr.path, kr.recursive, kr.stream, kr.waitIndex, func(rev int64) {
			w.Header().Set("Content-Type", "application/json")
			h.raftHeaders(w, rev)
		})
		if err != nil {
			v3Error(err).writeTo(w)
		}
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.o.RequestTimeout)
	defer cancel()
	ev, rev, err := h.do(ctx, c, kr)
	if err != nil {
		v3Error(err).writeTo(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	h.raftHeaders(w, rev)
	if ev.Action == actionCreate || (ev.Action == actionSet && ev.PrevNode == nil) {
		w.WriteHeader(http.StatusCreated)
	}
	if kr.noValueOnSuccess && (ev.Action == actionSet || ev.Action == actionCompareAndSwap || ev.Action == actionCreate || ev.Action == actionUpdate) {
		ev.Node, ev.PrevNode = nil, nil
	}
	json.NewEncoder(w).Encode(ev)
}

func (h *handler) raftHeaders(w http.ResponseWriter, rev int64) {
	st := h.o.Member.Status()
	w.Header().Set("X-Etcd-Index", fmt.Sprint(rev))
	w.Header().Set("X-Raft-Index", fmt.Sprint(st.RaftIndex))
	w.Header().Set("X-Raft-Term", fmt.Sprint(st.RaftTerm))
}

// do runs a non-watch request as etcd's applierV2store.
func (h *handler) do(ctx context.Context, c Client, kr *keyRequest) (*Event, int64, error) {
	refresh := kr.refresh != nil && *kr.refresh
	switch kr.method {
	case http.MethodGet, http.MethodHead:
		return h.st.Get(ctx, c, kr.path, kr.recursive, kr.sorted, kr.quorum)
	case http.MethodPost:
		return h.st.Create(ctx, c, kr.path, kr.dir, kr.value, true, kr.ttl)
	case http.MethodDelete:
		if kr.prevIndex > 0 || kr.prevValue != "" {
			return h.st.CompareAndDelete(ctx, c, kr.path, kr.prevValue, kr.prevIndex)
		}
		return h.st.Delete(ctx, c, kr.path, kr.dir, kr.recursive)
	}
	// PUT
	switch {
	case kr.prevExist != nil && *kr.prevExist:
		if kr.prevIndex == 0 && kr.prevValue == "" {
			return h.st.Update(ctx, c, kr.path, kr.value, kr.ttl, refresh)
		}
		return h.st.CompareAndSwap(ctx, c, kr.path, kr.prevValue, kr.prevIndex, kr.value, kr.ttl, refresh)
	case kr.prevExist != nil:
		return h.st.Create(ctx, c, kr.path, kr.dir, kr.value, false, kr.ttl)
	case kr.prevIndex > 0 || kr.prevValue != "":
		return h.st.CompareAndSwap(ctx, c, kr.path, kr.prevValue, kr.prevIndex, kr.value, kr.ttl, refresh)
	}
	return h.st.Set(ctx, c, kr.path, kr.dir, kr.value, kr.ttl, refresh)
}

func (h *handler) serveMachines(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET", "HEAD") {
		return
	}
	w.Write([]byte(strings.Join(clientURLs(h.o.Member.Members()), ", ")))
}

// clientURLs are the members' client URLs, sorted and unique, as etcd's
// RaftCluster.ClientURLs.
func clientURLs(ms []membership.Member) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		for _, u := range m.ClientURLs {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	sort.Strings(out)
	return out
}

// member is etcd's httptypes.Member.
type member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

func newMember(m membership.Member) member {
	out := member{ID: fmt.Sprintf("%x", m.ID), Name: m.Name, PeerURLs: append([]string{}, m.PeerURLs...), ClientURLs: append([]string{}, m.ClientURLs...)}
	return out
}

func (h *handler) serveMembers(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET", "POST", "DELETE", "PUT") {
		return
	}
	w.Header().Set("X-Etcd-Cluster-ID", fmt.Sprintf("%x", h.o.Member.ClusterID()))
	ctx, cancel := context.WithTimeout(r.Context(), h.o.RequestTimeout)
	defer cancel()
	sub := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, membersPrefix), "/")
	switch r.Method {
	case http.MethodGet:
		switch sub {
		case "":
			ms := h.o.Member.Members()
			sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
			out := struct {
				Members []member `json:"members"`
			}{Members: []member{}}
			for _, m := range ms {
				out.Members = append(out.Members, newMember(m))
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(out)
		case "leader":
			id := h.o.Member.Leader()
			for _, m := range h.o.Member.Members() {
				if id != 0 && m.ID == id {
					w.Header().Set("Content-Type", "application/json")
					json.NewEncoder(w).Encode(newMember(m))
					return
				}
			}
			(&httpError{Message: "During election", code: http.StatusServiceUnavailable}).writeTo(w)
		default:
			(&httpError{Message: "Not found", code: http.StatusNotFound}).writeTo(w)
		}
	case http.MethodPost:
		urls, ok := memberRequest(w, r)
		if !ok {
			return
		}
		m, _, err := h.o.Member.MemberAdd(ctx, urls, false)
		if err != nil {
			memberError(w, err, "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(newMember(m))
	case http.MethodDelete, http.MethodPut:
		if sub == "" {
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		id, err := strconv.ParseUint(sub, 16, 64)
		if err != nil {
			(&httpError{Message: "No such member: " + sub, code: http.StatusNotFound}).writeTo(w)
			return
		}
		if r.Method == http.MethodDelete {
			_, err = h.o.Member.MemberRemove(ctx, id)
		} else {
			urls, ok := memberRequest(w, r)
			if !ok {
				return
			}
			_, err = h.o.Member.MemberUpdate(ctx, id, urls)
		}
		if err != nil {
			memberError(w, err, fmt.Sprintf("%x", id))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// memberRequest reads {"peerURLs":[...]} as etcd's unmarshalRequest.
func memberRequest(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	ctype := r.Header.Get("Content-Type")
	if i := strings.Index(ctype, ";"); i != -1 {
		ctype = strings.TrimSpace(strings.ToLower(ctype[:i]))
	}
	if ctype != "application/json" {
		(&httpError{Message: fmt.Sprintf("Bad Content-Type %s, accept application/json", ctype), code: http.StatusUnsupportedMediaType}).writeTo(w)
		return nil, false
	}
	var req struct {
		PeerURLs []string `json:"peerURLs"`
	}
	b, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	if err == nil {
		for _, u := range req.PeerURLs {
			pu, perr := url.Parse(u)
			switch {
			case perr != nil:
				err = perr
			case pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "unix" && pu.Scheme != "unixs":
				err = fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", u)
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		(&httpError{Message: err.Error(), code: http.StatusBadRequest}).writeTo(w)
		return nil, false
	}
	return req.PeerURLs, true
}

func memberError(w http.ResponseWriter, err error, id string) {
	switch {
	case errors.Is(err, membership.ErrIDExists), errors.Is(err, membership.ErrPeerURLExists):
		(&httpError{Message: err.Error(), code: http.StatusConflict}).writeTo(w)
	case errors.Is(err, membership.ErrMemberNotFound):
		(&httpError{Message: "No such member: " + id, code: http.StatusNotFound}).writeTo(w)
	default:
		(&httpError{Message: "Internal Server Error", code: http.StatusInternalServerError}).writeTo(w)
	}
}
