package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/pkg/tlsutil"
)

// Run dials the endpoints, runs cfg's command and returns its result.
// Progress lines go to progress every cfg.Progress (none when nil or 0).
// It fails only when the run cannot start (bad config, no connection, a
// failed setup step); failed requests are counted in the result.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	endpoints := cfg.Endpoints
	if cfg.TargetLeader {
		leader, err := findLeader(ctx, cfg)
		if err != nil {
			return nil, err
		}
		endpoints = []string{leader}
	}
	conns := make([]*clientv3.Client, 0, cfg.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range cfg.Conns {
		c, err := dial(ctx, cfg, endpoints[i%len(endpoints)])
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	l := &load{cfg: cfg, conns: conns, progress: progress}
	res := &Result{Command: cfg.Command, Endpoints: endpoints, Conns: cfg.Conns, Clients: cfg.Clients, Total: cfg.Total}
	var err error
	switch cfg.Command {
	case CmdWatch:
		err = l.watch(ctx, res)
	default:
		w, werr := newWorkload(cfg)
		if werr != nil {
			return nil, werr
		}
		err = l.drive(ctx, res, w)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func dial(ctx context.Context, cfg Config, endpoint string) (*clientv3.Client, error) {
	var tlsCfg *tls.Config
	if cfg.CACert != "" || cfg.Cert != "" || cfg.CertKey != "" {
		mk, err := tlsutil.Info{CertFile: cfg.Cert, KeyFile: cfg.CertKey, TrustedCAFile: cfg.CACert}.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("bench: TLS (--cacert, --cert, --key): %w", err)
		}
		tlsCfg = mk()
	}
	user, password, _ := strings.Cut(cfg.User, ":")
	c, err := clientv3.New(clientv3.Config{
		TLS:         tlsCfg,
		Endpoints:   []string{endpoint},
		DialTimeout: cfg.DialTimeout,
		Logger:      zap.NewNop(),
		Context:     ctx,
		Username:    user,
		Password:    password,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: connect to %s: %w", endpoint, err)
	}
	return c, nil
}

// findLeader returns the endpoint whose member is the leader.
func findLeader(ctx context.Context, cfg Config) (string, error) {
	c, err := dial(ctx, cfg, cfg.Endpoints[0])
	if err != nil {
		return "", err
	}
	defer c.Close()
	var errs []error
	for _, ep := range cfg.Endpoints {
		sctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		st, err := c.Status(sctx, ep)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.Header.MemberId == st.Leader {
			return ep, nil
		}
	}
	return "", fmt.Errorf("bench: --target-leader: no endpoint is the leader: %w", errors.Join(errs...))
}

// worker is one client: its connection, its random source, and what its
// workload set up for it.
type worker struct {
	c     *clientv3.Client
	rng   *rand.Rand
	buf   []byte
	lease clientv3.LeaseID
}

// workload is what one command does per client and per request.
type workload struct {
	// setup, if set, runs once per worker before the clock starts.
	setup func(ctx context.Context, w *worker) error
	// op issues request n (0-based) and returns the server's revision
	// when it has one.
	op func(ctx context.Context, w *worker, n int64) (rev int64, err error)
}

// load is one run's shared state.
type load struct {
	cfg      Config
	conns    []*clientv3.Client
	progress io.Writer

	hist   Histogram
	issued atomic.Int64 // request numbers handed out
	done   atomic.Int64 // requests finished, successful or not
	errs   errorTally
	// onAck, if set, is called after each successful request with its
	// number, revision and the time it returned.
	onAck func(n, rev int64, at time.Time)
}

// drive runs w with cfg.Clients workers until cfg.Total requests were
// issued or ctx ends, and fills in res.
func (l *load) drive(ctx context.Context, res *Result, w workload) error {
	workers := make([]*worker, l.cfg.Clients)
	for i := range workers {
		workers[i] = &worker{c: l.conns[i%len(l.conns)], rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
	}
	if w.setup != nil {
		var wg sync.WaitGroup
		errc := make(chan error, len(workers))
		for _, wk := range workers {
			wg.Go(func() {
				if err := w.setup(ctx, wk); err != nil {
					errc <- err
				}
			})
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return fmt.Errorf("bench: %s setup: %w", l.cfg.Command, err)
		}
	}

	total := int64(l.cfg.Total)
	var interval time.Duration
	if l.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / l.cfg.Rate)
	}
	start := time.Now()
	stopProgress := l.startProgress(start)
	var wg sync.WaitGroup
	for _, wk := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := l.issued.Add(1) - 1
				if n >= total {
					return
				}
				if interval > 0 && !sleepUntil(ctx, start.Add(time.Duration(n)*interval)) {
					return
				}
				t0 := time.Now()
				rev, err := w.op(ctx, wk, n)
				t1 := time.Now()
				if err != nil {
					if ctx.Err() != nil {
						return // not the server's failure: the run ended
					}
					l.errs.add(err)
				} else {
					l.hist.Record(t1.Sub(t0))
					if l.onAck != nil {
						l.onAck(n, rev, t1)
					}
				}
				l.done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	l.fill(res, elapsed)
	return nil
}

// fill sets res's counts and latencies from the run so far.
func (l *load) fill(res *Result, elapsed time.Duration) {
	res.Done = l.done.Load()
	res.OK = l.hist.Count()
	res.Errors, res.ErrorMessages = l.errs.snapshot()
	res.StoppedEarly = res.Done < int64(res.Total)
	res.Seconds = elapsed.Seconds()
	if elapsed > 0 {
		res.RequestsPerSec = float64(res.OK) / elapsed.Seconds()
	}
	res.Latency = summarize(&l.hist)
	res.Histogram = l.hist.Bars()
}

// startProgress prints a line every cfg.Progress and returns a function
// that stops it and waits.
func (l *load) startProgress(start time.Time) (stop func()) {
	if l.progress == nil || l.cfg.Progress <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(l.cfg.Progress)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				done := l.done.Load()
				rate := float64(done-last) / now.Sub(lastAt).Seconds()
				fmt.Fprintf(l.progress, "bench %s: %d/%d done (%.1f%%), %.0f req/s now, %d errors, %.0fs elapsed\n",
					l.cfg.Command, done, l.cfg.Total, 100*float64(done)/float64(l.cfg.Total), rate, l.errs.count(), now.Sub(start).Seconds())
				last, lastAt = done, now
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// maxErrorMessages bounds how many distinct messages a run keeps.
const maxErrorMessages = 10

// errorTally counts errors by message.
type errorTally struct {
	n  atomic.Int64
	mu struct {
		sync.Mutex
		byMsg map[string]int64
	}
}

func (t *errorTally) add(err error) {
	t.n.Add(1)
	msg := err.Error()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.byMsg == nil {
		t.mu.byMsg = map[string]int64{}
	}
	if _, ok := t.mu.byMsg[msg]; ok || len(t.mu.byMsg) < maxErrorMessages {
		t.mu.byMsg[msg]++
	}
}

func (t *errorTally) count() int64 { return t.n.Load() }

func (t *errorTally) snapshot() (int64, map[string]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.mu.byMsg) == 0 {
		return t.n.Load(), nil
	}
	out := make(map[string]int64, len(t.mu.byMsg))
	for k, v := range t.mu.byMsg {
		out[strings.TrimSpace(k)] = v
	}
	return t.n.Load(), out
}
