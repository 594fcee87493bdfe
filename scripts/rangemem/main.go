// Command rangemem measures a server's peak RSS under large reads, for
// docs/perf.md (issues 12 and 13): it starts a single-member server binary
// (cairn, or compat's refetcd for etcd) on a fresh data directory, loads
// -keys keys of -val-size bytes under /m/, runs one warm-up read, notes the
// server's peak RSS (VmHWM), then runs -clients concurrent reads and
// reports how far they raised the peak.
//
// Reads (-read):
//
//	sorted  Range limit=10 sorted by mod revision, descending (issue 13)
//	stream  KV.RangeStream of the whole prefix, each chunk dropped on arrival (issue 12)
//	list    unary Range of the whole prefix (for comparison)
//
// Usage (see scripts/rangemem.sh, which runs the table of docs/perf.md):
//
//	go run ./scripts/rangemem -bin ./cairn -read sorted -keys 100000 -val-size 1024
//
// Not part of CI: it writes gigabytes and takes minutes.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	bin := flag.String("bin", "", "server binary (cairn, or refetcd for etcd)")
	read := flag.String("read", "sorted", "sorted, stream or list")
	keys := flag.Int("keys", 100000, "keys loaded")
	valSize := flag.Int("val-size", 1024, "bytes per value")
	clients := flag.Int("clients", 20, "concurrent reads")
	txnKeys := flag.Int("txn-keys", 128, "keys per load transaction (keys written together share a mod revision)")
	port := flag.Int("port", 25379, "client port (the peer port is the next)")
	dir := flag.String("dir", "", "where to make the (fresh, removed at the end) data directory (default: the system's temp dir)")
	restart := flag.Bool("restart", true, "restart the server after the load, so the peaks are the reads' and not the load's")
	warmups := flag.Int("warmups", 1, "reads, one at a time, before the measured ones")
	memstats := flag.Bool("memstats", false, "start the server with --enable-pprof and print its Go memory statistics after the reads")
	flag.Parse()
	if *bin == "" {
		return fmt.Errorf("rangemem: -bin is required")
	}
	parent, err := os.MkdirTemp(*dir, "rangemem") // *dir "" is the system's
	if err != nil {
		return err
	}
	defer os.RemoveAll(parent)
	srv, err := start(*bin, filepath.Join(parent, "data"), *port, *memstats)
	if err != nil {
		return err
	}
	defer srv.stop()

	ctx := context.Background()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{fmt.Sprintf("127.0.0.1:%d", *port)}, DialTimeout: 5 * time.Second,
		MaxCallRecvMsgSize: 1<<31 - 1, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer c.Close()
	t0 := time.Now()
	if err := load(ctx, c, *keys, *valSize, *txnKeys); err != nil {
		return err
	}
	loaded := time.Since(t0)
	afterLoad := srv.kb("VmHWM")
	if *restart {
		c.Close()
		srv.stop()
		if srv, err = start(*bin, filepath.Join(parent, "data"), *port, *memstats); err != nil {
			return err
		}
		defer srv.stop()
		c, err = clientv3.New(clientv3.Config{Endpoints: []string{fmt.Sprintf("127.0.0.1:%d", *port)}, DialTimeout: 5 * time.Second,
			MaxCallRecvMsgSize: 1<<31 - 1, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Get(ctx, "/m/00000000"); err != nil { // ready
			return err
		}
		afterLoad = srv.kb("VmHWM")
	}

	op := map[string]func() (int, error){
		"sorted": func() (int, error) {
			resp, err := c.Get(ctx, "/m/", clientv3.WithPrefix(), clientv3.WithLimit(10),
				clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend))
			if err != nil {
				return 0, err
			}
			return len(resp.Kvs), nil
		},
		"list": func() (int, error) {
			resp, err := c.Get(ctx, "/m/", clientv3.WithPrefix())
			if err != nil {
				return 0, err
			}
			return len(resp.Kvs), nil
		},
		"stream": func() (int, error) {
			ch, err := c.GetStream(ctx, "/m/", clientv3.WithPrefix())
			if err != nil {
				return 0, err
			}
			n := 0
			for resp := range ch {
				if err := resp.Err(); err != nil {
					return n, err
				}
				n += len(resp.Kvs)
			}
			return n, nil
		},
	}[*read]
	if op == nil {
		return fmt.Errorf("rangemem: unknown -read %q", *read)
	}
	for i := 0; i < *warmups; i++ {
		if _, err := op(); err != nil {
			return err
		}
	}
	time.Sleep(time.Second)
	if *memstats {
		saveProfile(*port, "allocs", "rangemem-allocs-before.pb.gz")
		saveProfile(*port, "heap", "rangemem-heap-before.pb.gz")
	}
	base := srv.kb("VmHWM")
	t1 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, *clients)
	got := make([]int, *clients)
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n, err := op()
			got[i] = n
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	took := time.Since(t1)
	peak := srv.kb("VmHWM")
	fmt.Printf("server=%s read=%s keys=%d val=%d txn-keys=%d clients=%d keys-per-read=%d load=%s peak-after-load%s=%dMB peak-after-%d-warmups=%dMB peak-after-reads=%dMB raise=%dMB reads-took=%s\n",
		filepath.Base(*bin), *read, *keys, *valSize, *txnKeys, *clients, got[0], loaded.Round(time.Second),
		map[bool]string{true: "-and-restart"}[*restart], afterLoad>>10, *warmups, base>>10, peak>>10, (peak-base)>>10, took.Round(10*time.Millisecond))
	if *memstats {
		saveProfile(*port, "allocs", "rangemem-allocs-after.pb.gz")
		saveProfile(*port, "heap", "rangemem-heap-after.pb.gz")
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?debug=1", *port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "# Heap") || strings.HasPrefix(l, "# Sys") || strings.HasPrefix(l, "# NumGC") || strings.HasPrefix(l, "# Stack") {
				fmt.Println(l)
			}
		}
	}
	return nil
}

// saveProfile writes the server's pprof profile name to file.
func saveProfile(port int, name, file string) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/%s", port, name))
	if err != nil {
		log.Print(err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		log.Print(err)
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}

// load writes n keys /m/%08d of size bytes, in transactions of up to per
// keys and 1 MB.
func load(ctx context.Context, c *clientv3.Client, n, size, per int) error {
	per = max(1, min(per, (1<<20)/(size+32))) // --max-request-bytes
	val := strings.Repeat("v", size)
	sem := make(chan struct{}, min(256, 2*(128/per+1)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < n; i += per {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			var ops []clientv3.Op
			for j := i; j < min(i+per, n); j++ {
				ops = append(ops, clientv3.OpPut(fmt.Sprintf("/m/%08d", j), val))
			}
			var err error
			for try := 0; try < 5; try++ { // a loaded machine times requests out
				if _, err = c.Txn(ctx).Then(ops...).Commit(); err == nil {
					return
				}
				time.Sleep(time.Second)
			}
			mu.Lock()
			firstErr = err
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	return firstErr
}

type server struct {
	cmd *exec.Cmd
}

// start runs bin as a single member and waits for its ready line.
func start(bin, dir string, port int, pprof bool) (*server, error) {
	cu, pu := fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port+1)
	cmd := exec.Command(bin, "--name", "m1", "--data-dir", dir,
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "m1="+pu, "--initial-cluster-state", "new", "--initial-cluster-token", "rangemem",
		"--quota-backend-bytes", "8589934592")
	if pprof {
		cmd.Args = append(cmd.Args, "--enable-pprof")
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	// The server dies with this process, even on log.Fatal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready to serve client requests") {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-ready:
		return &server{cmd: cmd}, nil
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("rangemem: %s not ready after 2 minutes", bin)
	}
}

// kb reads a field of /proc/PID/status (VmHWM, VmRSS), in KiB.
func (s *server) kb(field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}
