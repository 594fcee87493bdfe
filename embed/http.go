package embed

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// httpHandler serves etcd's HTTP endpoints on the client port: /health
// (GET only; 200 or 503 with {"health":"true|false","reason":...}) and /version.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.handleHealth)
	mux.Handle("/metrics", s.member.MetricsHandler())
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.versionJSON())
	})
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	serializable := r.URL.Query().Get("serializable") == "true"
	_, err := s.member.Range(ctx, &pb.RangeRequest{Key: []byte("health"), KeysOnly: true, Limit: 1, Serializable: serializable})
	status, body := http.StatusOK, map[string]string{"health": "true", "reason": ""}
	if err != nil {
		status, body = http.StatusServiceUnavailable, map[string]string{"health": "false", "reason": "RANGE ERROR:" + err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// peerHandler serves the peer port; until clustering it answers /version
// only, so the port is held and identifies a Cairn member.
func (s *Server) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.versionJSON())
	})
	return mux
}
