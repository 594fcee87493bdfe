package embed

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/pkg/tlsutil"
	"github.com/cairn-kv/cairn/pkg/tlsutil/testcerts"
)

// gwPost POSTs body to path on the member's first client endpoint and
// returns the status and body.
func gwPost(t *testing.T, srv *Server, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post("http://"+srv.ClientEndpoints()[0]+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// --enable-grpc-gateway=false leaves /v3/... unserved (404, as etcd's mux
// answers), while /health still answers.
func TestGatewayEnableFlag(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("disabled=%v", disabled), func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.DisableGRPCGateway = disabled
			srv, err := Start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			for _, path := range []string{"/v3/kv/put", "/v3beta/kv/put"} {
				code, body := gwPost(t, srv, path, `{"key":"YQ==","value":"Yg=="}`)
				switch {
				case disabled && (code != http.StatusNotFound || body != "404 page not found\n"):
					t.Errorf("POST %s with the gateway off: %d %q, want 404 %q", path, code, body, "404 page not found\n")
				case !disabled && (code != http.StatusOK || !strings.Contains(body, `"revision":"`)):
					t.Errorf("POST %s: %d %q, want 200 and a header", path, code, body)
				}
			}
			resp, err := http.Get("http://" + srv.ClientEndpoints()[0] + "/health")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("/health: %s", resp.Status)
			}
		})
	}
}

// watchGauges reads etcd's watcher and watch stream gauges.
func watchGauges(t *testing.T, srv *Server) (watchers, streams float64) {
	t.Helper()
	m := scrape(t, "http://"+srv.ClientEndpoints()[0]+"/metrics")
	return m["etcd_debugging_mvcc_watcher_total"], m["etcd_debugging_mvcc_watch_stream_total"]
}

// waitWatchGauges waits until the gauges read want (generously: the
// member notices a client gone through the gRPC stream's cancellation).
func waitWatchGauges(t *testing.T, srv *Server, wantWatchers, wantStreams float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		w, s := watchGauges(t, srv)
		if w == wantWatchers && s == wantStreams {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watchers %v, watch streams %v; want %v and %v", w, s, wantWatchers, wantStreams)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A client that goes away in the middle of a gateway watch frees its
// watchers and its watch stream, whether it closes the connection or
// cancels its request.
func TestGatewayWatchDisconnectFreesWatchers(t *testing.T) {
	srv, err := Start(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	waitWatchGauges(t, srv, 0, 0)

	open := func(tr *http.Transport) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		body := `{"create_request":{"key":"YQ=="}} {"create_request":{"key":"Yg==","range_end":"Yw=="}}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+srv.ClientEndpoints()[0]+"/v3/watch", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(resp.Body)
		for range 2 {
			line, err := r.ReadString('\n')
			if err != nil || !strings.Contains(line, `"created":true`) {
				t.Fatalf("watch: %q %v, want a created response", line, err)
			}
		}
		return resp, cancel
	}

	// Cancelling the request.
	tr := &http.Transport{}
	resp, cancel := open(tr)
	waitWatchGauges(t, srv, 2, 1)
	cancel()
	resp.Body.Close()
	waitWatchGauges(t, srv, 0, 0)

	// Closing the connection, two streams at once.
	tr2 := &http.Transport{}
	resp1, cancel1 := open(tr)
	defer cancel1()
	resp2, cancel2 := open(tr2)
	defer cancel2()
	waitWatchGauges(t, srv, 4, 2)
	tr.CloseIdleConnections()
	resp1.Body.Close() // a body not read to its end closes the connection
	waitWatchGauges(t, srv, 2, 1)
	resp2.Body.Close()
	waitWatchGauges(t, srv, 0, 0)
}

// --max-concurrent-streams applies to the gateway: its requests share
// one gRPC connection to the member, as etcd's, so with a limit of one a
// watch held open makes a put wait until the watch ends.
func TestGatewayMaxConcurrentStreams(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxConcurrentStreams = 1
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+srv.ClientEndpoints()[0]+"/v3/watch", strings.NewReader(`{"create_request":{"key":"YQ=="}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.Contains(line, `"created":true`) {
		t.Fatalf("watch: %q %v", line, err)
	}
	put := make(chan string, 1)
	go func() {
		c := &http.Client{Timeout: 30 * time.Second}
		r, err := c.Post("http://"+srv.ClientEndpoints()[0]+"/v3/kv/put", "application/json", strings.NewReader(`{"key":"YQ==","value":"Yg=="}`))
		if err != nil {
			put <- err.Error()
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		put <- fmt.Sprintf("%d %s", r.StatusCode, b)
	}()
	select {
	case got := <-put:
		t.Fatalf("put answered while the only stream was taken: %s", got)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	resp.Body.Close()
	if got := <-put; !strings.HasPrefix(got, "200 ") {
		t.Fatalf("put after the watch ended: %s", got)
	}
}

// On a TLS client URL, JSON over HTTP/2 (curl --http2) reaches the
// gateway and gRPC clients reach gRPC, on the same port, with a stream
// limit that the server preface announces before the first request
// (h2sniff.go); HTTP/1.1 reaches the gateway as before.
func TestGatewayTLSHTTP2(t *testing.T) {
	pki, err := testcerts.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.ListenClientURLs = []url.URL{{Scheme: "https", Host: "127.0.0.1:0"}}
	cfg.ClientTLS = tlsutil.Info{CertFile: pki.Server.Cert, KeyFile: pki.Server.Key, TrustedCAFile: pki.CA, ClientCertAuth: true}
	cfg.MaxConcurrentStreams = 2
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ep := srv.ClientEndpoints()[0]
	for _, h2 := range []bool{true, false} {
		tlsCfg := tlsClient(t, pki, &pki.Client)
		tr := &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
		wantProto := "HTTP/2.0"
		if !h2 {
			tlsCfg.NextProtos = []string{"http/1.1"}
			tr = &http.Transport{TLSClientConfig: tlsCfg, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
			wantProto = "HTTP/1.1"
		}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		// Several requests at once on the connection, over the limit.
		errc := make(chan error, 5)
		for i := range 5 {
			go func() {
				resp, err := c.Post("https://"+ep+"/v3/kv/put", "application/json", strings.NewReader(fmt.Sprintf(`{"key":"aDI=","value":"MQ==","lease":"%d"}`, 0*i)))
				if err != nil {
					errc <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Proto != wantProto {
					err = fmt.Errorf("%s %d %s", resp.Proto, resp.StatusCode, b)
				}
				errc <- err
			}()
		}
		for range 5 {
			if err := <-errc; err != nil {
				t.Errorf("JSON over TLS (h2 %v): %v", h2, err)
			}
		}
		tr.CloseIdleConnections()
	}
	if err := put([]string{ep}, tlsClient(t, pki, &pki.Client)); err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
}
