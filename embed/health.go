package embed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// healthTimeout bounds the read a health check makes (etcd: its request
// timeout).
const healthTimeout = 5 * time.Second

// health is /health's answer, as etcd's: {"health":"true|false","reason":...}.
type health struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// handleHealth serves /health as etcd does (etcdhttp/health.go): GET only;
// the leader check (skipped with ?serializable=true), then a one-key read,
// linearizable unless ?serializable=true. 200 with the JSON on success,
// 503 with it (as text, like http.Error) on failure. Before both, an
// active alarm not named in ?exclude=<ALARM> fails it ("ALARM NOSPACE",
// "ALARM CORRUPT").
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	serializable := r.URL.Query().Get("serializable") == "true"
	h := s.checkAlarms(r.URL.Query()["exclude"])
	if h.Health == "true" {
		h = s.checkHealth(r.Context(), serializable)
	}
	s.member.ReportHealth(h.Health == "true")
	d, _ := json.Marshal(h)
	if h.Health != "true" {
		http.Error(w, string(d), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(d)
}

// checkAlarms fails /health while an alarm is active whose type is not in
// excluded (?exclude=NOSPACE...), as etcd's checkAlarms.
func (s *Server) checkAlarms(excluded []string) health {
	for _, a := range s.member.Alarms() {
		if slices.Contains(excluded, a.Alarm.String()) {
			continue
		}
		switch a.Alarm {
		case pb.AlarmType_NOSPACE:
			return health{Health: "false", Reason: "ALARM NOSPACE"}
		case pb.AlarmType_CORRUPT:
			return health{Health: "false", Reason: "ALARM CORRUPT"}
		default:
			return health{Health: "false", Reason: "ALARM UNKNOWN"}
		}
	}
	return health{Health: "true"}
}

func (s *Server) checkHealth(ctx context.Context, serializable bool) health {
	if !serializable && s.member.Leader() == 0 {
		return health{Health: "false", Reason: "RAFT NO LEADER"}
	}
	if err := s.readCheck(ctx, serializable); err != nil {
		return health{Health: "false", Reason: "RANGE ERROR:" + err.Error()}
	}
	return health{Health: "true"}
}

func (s *Server) readCheck(ctx context.Context, serializable bool) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	_, err := s.member.Range(ctx, &pb.RangeRequest{Key: []byte("health"), KeysOnly: true, Limit: 1, Serializable: serializable})
	return err
}

// check is one named check of /livez or /readyz.
type check struct {
	name string
	run  func(context.Context) error
}

// livezChecks and readyzChecks are etcd 3.6's: /livez passes while the
// member serves local reads; /readyz also needs a linearizable read (a
// leader) and a voting member; data_corruption fails while a CORRUPT alarm
// is active (see server/corrupt.go).
func (s *Server) livezChecks() []check {
	return []check{{"serializable_read", func(ctx context.Context) error { return s.readCheck(ctx, true) }}}
}

func (s *Server) readyzChecks() []check {
	return []check{
		{"data_corruption", func(context.Context) error {
			for _, a := range s.member.Alarms() {
				if a.Alarm == pb.AlarmType_CORRUPT {
					return fmt.Errorf("alarm activated: %s", a.Alarm)
				}
			}
			return nil
		}},
		{"linearizable_read", func(ctx context.Context) error { return s.readCheck(ctx, false) }},
		{"non_learner", func(context.Context) error {
			if s.member.IsLearner() {
				return fmt.Errorf("not supported for learner")
			}
			return nil
		}},
		{"serializable_read", func(ctx context.Context) error { return s.readCheck(ctx, true) }},
	}
}

// handleChecks installs /<kind> (every check but those in ?exclude=) and
// /<kind>/<check> for each check, as etcd's CheckRegistry: GET only; 200
// with "ok\n" (preceded by each check's line with ?verbose), or 503 with
// the lines "[+]name ok" / "[-]name failed: reason".
func (s *Server) handleChecks(mux *http.ServeMux, kind string, checks []check) {
	mux.HandleFunc("/"+kind, func(w http.ResponseWriter, r *http.Request) {
		excluded := r.URL.Query()["exclude"]
		var run []check
		for _, c := range checks {
			if !slices.Contains(excluded, c.name) {
				run = append(run, c)
			}
		}
		serveChecks(w, r, run)
	})
	for _, c := range checks {
		mux.HandleFunc("/"+kind+"/"+c.name, func(w http.ResponseWriter, r *http.Request) {
			serveChecks(w, r, []check{c})
		})
	}
}

func serveChecks(w http.ResponseWriter, r *http.Request, checks []check) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	var out strings.Builder
	failed := false
	for _, c := range checks {
		if err := c.run(r.Context()); err != nil {
			failed = true
			fmt.Fprintf(&out, "[-]%s failed: %v\n", c.name, err)
		} else {
			fmt.Fprintf(&out, "[+]%s ok\n", c.name)
		}
	}
	if failed {
		http.Error(w, out.String(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprint(w, out.String())
	}
	fmt.Fprint(w, "ok\n")
}
