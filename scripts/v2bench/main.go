// Command v2bench measures the v2 keys API of a running server, for
// docs/perf.md (issue 19): -clients concurrent writers PUT -puts keys in
// all (each writer rewrites 50 keys of its own directory), then one client
// GETs one key -gets times in a row. Run it against `cairn --enable-v2`
// and against etcd 3.5 with --enable-v2 (compat/oracle35), alternately:
//
//	go run ./scripts/v2bench -endpoint http://127.0.0.1:2379
//
// Not part of CI.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:2379", "Server's client URL.")
	puts := flag.Int("puts", 2000, "PUTs in all.")
	clients := flag.Int("clients", 8, "Concurrent writers.")
	gets := flag.Int("gets", 1000, "Sequential GETs.")
	flag.Parse()
	if err := run(*endpoint, *puts, *clients, *gets); err != nil {
		fmt.Fprintln(os.Stderr, "v2bench:", err)
		os.Exit(1)
	}
}

func do(req *http.Request) error {
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	io.Copy(io.Discard, r.Body)
	if r.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d", req.Method, req.URL, r.StatusCode)
	}
	return nil
}

func run(endpoint string, puts, clients, gets int) error {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range puts / clients {
				body := url.Values{"value": {"0123456789abcdef"}}.Encode()
				req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v2/keys/bench/w%d/k%d", endpoint, w, i%50), strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if err := do(req); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Printf("%s: %d PUTs from %d clients: %.0f/s\n", endpoint, puts/clients*clients, clients, float64(puts/clients*clients)/d.Seconds())
	start = time.Now()
	for range gets {
		req, _ := http.NewRequest("GET", endpoint+"/v2/keys/bench/w0/k1", nil)
		if err := do(req); err != nil {
			return err
		}
	}
	fmt.Printf("%s: %d sequential GETs: %.0f/s\n", endpoint, gets, float64(gets)/time.Since(start).Seconds())
	return nil
}
