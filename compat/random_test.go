package compat

// Seeded random differential test.
//
// What it proves: for 200 seeds (by default), a random sequence of 300
// steps mixing every KV request with every option (put with prev_kv,
// lease, ignore_value and ignore_lease; range over keys, ranges, prefixes,
// from a key and everything, with limits, past, compacted and future
// revisions, sorts, serializable, keys_only, count_only and the four
// revision filters; delete range; txns with compares on every target and
// result, over ranges, and nested txns; compactions, physical or not),
// Lease requests with client-chosen IDs (grant, revoke with attached keys,
// time-to-live, leases, keep-alive) and watchers opened on a few streams
// at random revisions with random options (ranges and prefixes, prev_kv,
// filters, client-chosen IDs), gets the same answers from a fresh Cairn
// member as from a fresh etcd member, compared whole and field by field as
// in kv_diff_test.go; and at the end, every watcher received the same
// responses in the same order, every revision still held reads back the
// same, and every lease is the same. See random_gen_test.go for what the
// steps are and random_run_test.go for how they are compared.
//
// A sequence stops at its first divergence, since later answers may differ
// only because of it. The failure names the seed and the step, then
// shrinks the sequence (delta debugging: drop chunks of steps, then parts
// of steps, replaying each candidate on a fresh pair, while the same kind
// of divergence remains) and prints the smallest sequence found as Go code
// to paste into regressions_test.go. The steps are a function of the seed
// and etcd's answers, so -run 'TestRandomDiff/seed=N$' replays a seed.
//
// Knobs (environment variables):
//
//	CAIRN_COMPAT_SEEDS=N    seeds 1..N (default 200)
//	CAIRN_COMPAT_STEPS=N    steps per seed (default 300)
//	CAIRN_COMPAT_WORKERS=N  seeds run at once (default 12)
//	CAIRN_COMPAT_SOAK=10m   run seeds from a random first one until the
//	                        time is up (pass -timeout 0 or a larger one)
//	CAIRN_COMPAT_FIRST_SEED=N  the first seed (default 1; soak: random)
//	CAIRN_COMPAT_SHRINK=2m  time to shrink the first divergence (0: none)
//
// The test prints one line with what it compared, e.g. "compat: random:
// compared 151230 requests and responses (60000 steps) across 200
// seeds"; go test shows it with -v, or when run in the package directory
// without a package list.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	randomSeeds   = envInt("CAIRN_COMPAT_SEEDS", 200)
	randomSteps   = envInt("CAIRN_COMPAT_STEPS", 300)
	randomWorkers = envInt("CAIRN_COMPAT_WORKERS", 12)
	randomSoak    = envDuration("CAIRN_COMPAT_SOAK", 0)
	shrinkBudget  = envDuration("CAIRN_COMPAT_SHRINK", 2*time.Minute)
)

// randomStats counts what TestRandomDiff compared, for the summary line
// TestMain prints.
var randomStats struct {
	seeds, steps, compared, events atomic.Int64
	elapsed                        atomic.Int64 // nanoseconds
}

// shrinking is set once a seed shrinks its divergence: one is enough, and
// shrinking takes time.
var shrinking atomic.Bool

func TestRandomDiff(t *testing.T) {
	t.Parallel()
	start := time.Now()
	first := uint64(envInt("CAIRN_COMPAT_FIRST_SEED", 1))
	if randomSoak > 0 && os.Getenv("CAIRN_COMPAT_FIRST_SEED") == "" {
		first = rand.Uint64N(1 << 40)
	}
	if randomSoak > 0 {
		fmt.Printf("compat: random: soak for %v from seed %d\n", randomSoak, first)
	}
	seeds := make(chan uint64)
	go func() {
		defer close(seeds)
		for seed := first; ; seed++ {
			if randomSoak > 0 {
				if time.Since(start) > randomSoak {
					return
				}
			} else if seed >= first+uint64(randomSeeds) {
				return
			}
			seeds <- seed
		}
	}()
	var wg sync.WaitGroup
	for range randomWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runSeed(t, seed) })
			}
		}()
	}
	wg.Wait()
	randomStats.elapsed.Store(int64(time.Since(start)))
}

// runSeed runs one seed's sequence and reports its first divergence.
func runSeed(t *testing.T, seed uint64) {
	r := newDiffRun(t)
	defer r.close()
	g := newGenerator(seed, r)
	var (
		d   *divergence
		err error
	)
	for range randomSteps {
		if d, err = r.step(g.next()); d != nil || err != nil {
			break
		}
	}
	if d == nil && err == nil {
		d, err = r.finish()
	}
	randomStats.seeds.Add(1)
	randomStats.steps.Add(int64(len(r.steps)))
	randomStats.compared.Add(int64(r.compared))
	randomStats.events.Add(int64(r.events))
	switch {
	case err != nil:
		t.Fatalf("seed %d: %v\nsteps:\n%s", seed, err, goSteps(r.steps))
	case d != nil:
		reportDivergence(t, seed, r.steps, d)
	}
}

// reportDivergence reports d, then shrinks the sequence and prints the
// smallest one as a regression case.
func reportDivergence(t *testing.T, seed uint64, steps []any, d *divergence) {
	t.Errorf("seed %d: %s\nreplay: CAIRN_COMPAT_STEPS=%d go test -run 'TestRandomDiff/seed=%d$' .", seed, d.report, randomSteps, seed)
	if shrinkBudget <= 0 || !shrinking.CompareAndSwap(false, true) {
		t.Logf("seed %d: not shrunk (CAIRN_COMPAT_SHRINK=0, or another seed is shrinking)", seed)
		return
	}
	small, sd := shrink(t, steps, d, shrinkBudget)
	t.Errorf("seed %d: shrunk from %d to %d steps; the divergence there:\n%s\n\nas a case for regressions_test.go:\n\n%s",
		seed, len(steps), len(small), sd.report, goCase(fmt.Sprintf("seed %d: %s", seed, sd.kind), small))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// randomSummary is the line TestMain prints after the tests.
func randomSummary() string {
	if randomStats.seeds.Load() == 0 {
		return ""
	}
	return fmt.Sprintf("compat: random: compared %d requests and responses (%d steps, %d watch events) across %d seeds in %v",
		randomStats.compared.Load(), randomStats.steps.Load(), randomStats.events.Load(), randomStats.seeds.Load(),
		time.Duration(randomStats.elapsed.Load()).Round(100*time.Millisecond))
}
