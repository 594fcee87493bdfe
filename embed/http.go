package embed

import (
	"net/http"
	"net/http/pprof"

	"github.com/cairn-kv/cairn/server/api/v2http"
)

// httpHandler serves etcd's HTTP endpoints on the client port: /health,
// /livez, /readyz (health.go), /metrics, /version, with --enable-v2 the v2
// keys API (server/api/v2http) and, with --enable-pprof, /debug/pprof/.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.handleHealth)
	s.handleChecks(mux, "livez", s.livezChecks())
	s.handleChecks(mux, "readyz", s.readyzChecks())
	mux.Handle("/metrics", s.member.MetricsHandler())
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.versionJSON())
	})
	if s.cfg.EnableV2 {
		v2http.Register(mux, v2http.Options{Member: s.member, Logger: s.lg,
			Client: func() (v2http.Client, error) { return s.self.Client() }})
	}
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	// Bodies here (the v2 keys API's) are bounded as gRPC's requests
	// (--max-request-bytes plus framing); the JSON gateway, which takes
	// /v3/ before this bound, bounds its own (gateway.go).
	return s.withGateway(http.MaxBytesHandler(mux, int64(s.cfg.MaxRequestBytes)+maxBodyOverheadBytes))
}

// maxBodyOverheadBytes is the room above --max-request-bytes an HTTP
// request body gets, for JSON's encoding of the request.
const maxBodyOverheadBytes = 512 * 1024

// peerHandler serves the peer port; until clustering it answers /version
// only, so the port is held and identifies a Cairn member.
func (s *Server) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.versionJSON())
	})
	return http.MaxBytesHandler(mux, 64*1024)
}
