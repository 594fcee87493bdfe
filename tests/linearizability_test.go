package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The register model for porcupine: each key is a register ("" while the
// key does not exist); a put sets it, a get reads it, a compare-and-swap
// (a Txn comparing the value) sets it if it holds the expected value. An operation whose outcome the client never learned (a timeout)
// has unknown output: it may have taken effect at any point up to the end
// of the history.

type regInput struct {
	op       string // "put", "get", "cas"
	key      string
	value    string // put: new value; cas: new value
	expected string // cas
}

type regOutput struct {
	value   string // get
	ok      bool   // cas
	unknown bool
}

var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(regInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(regInput), output.(regOutput)
		switch in.op {
		case "put":
			return true, in.value
		case "get":
			return out.unknown || out.value == st, st
		case "cas":
			// A value compare on a missing key always fails (etcd's
			// rule); no test value is empty, so "" means missing.
			holds := st == in.expected && st != ""
			if out.unknown {
				if holds {
					return true, in.value
				}
				return true, st
			}
			if out.ok {
				return holds, in.value
			}
			return !holds, st
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		return fmt.Sprintf("%s(%s,%q,%q) -> %+v", in.op, in.key, in.value, in.expected, out)
	},
}

// The checker is not a formality: it rejects a stale read.
func TestLinearizabilityCheckerRejectsStaleRead(t *testing.T) {
	history := []porcupine.Operation{
		{ClientId: 0, Input: regInput{op: "put", key: "k", value: "1"}, Call: 0, Output: regOutput{}, Return: 10},
		{ClientId: 1, Input: regInput{op: "put", key: "k", value: "2"}, Call: 20, Output: regOutput{}, Return: 30},
		// Starts after the second put returned, yet reads the first value.
		{ClientId: 2, Input: regInput{op: "get", key: "k"}, Call: 40, Output: regOutput{value: "1"}, Return: 50},
	}
	if porcupine.CheckOperations(registerModel, history) {
		t.Fatal("porcupine accepted a stale read")
	}
	history[2].Output = regOutput{value: "2"}
	if !porcupine.CheckOperations(registerModel, history) {
		t.Fatal("porcupine rejected a linearizable history")
	}
}

// Concurrent clients put, get and compare-and-swap a few keys through all
// members of a 3-member cluster while its leader is killed (-9) and
// restarted; the recorded history must be linearizable.
func TestLinearizableUnderLeaderKill(t *testing.T) {
	ms, initial := newCluster(t, 3)
	procs := startAll(t, ms, initial)
	h := recordHistory(t, ms)
	h.waitOps(200)
	leader := clusterLeader(t, ms)
	procs[leader].kill(t)
	h.waitOps(200)
	procs[leader] = ms[leader].start(t, initial)
	waitReady(t, procs[leader])
	h.waitOps(200)
	h.check()
}

// startAll starts every member and waits until all serve.
func startAll(t *testing.T, ms []*clusterMember, initial string) []*proc {
	t.Helper()
	procs := make([]*proc, len(ms))
	for i, m := range ms {
		procs[i] = m.start(t, initial)
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	return procs
}

// opHistory records the operations of concurrent clients for porcupine.
type opHistory struct {
	t     *testing.T
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	stopc chan struct{}
	wg    sync.WaitGroup
}

// recordHistory starts 6 clients, each talking to every member (in its
// own order), that put, get and compare-and-swap 16 keys until check.
func recordHistory(t *testing.T, ms []*clusterMember) *opHistory {
	t.Helper()
	h := &opHistory{t: t, start: time.Now(), stopc: make(chan struct{})}
	// Many keys, few operations per key: the check is exponential in the
	// concurrency within one key's history, not in its length.
	var keys []string
	for i := 0; i < 16; i++ {
		keys = append(keys, fmt.Sprintf("r%02d", i))
	}
	for c := 0; c < 6; c++ {
		var eps []string
		for j := range ms {
			eps = append(eps, ms[(c+j)%len(ms)].endpoint())
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		h.wg.Add(1)
		go h.client(c, cli, keys)
	}
	t.Cleanup(h.stop)
	return h
}

func (h *opHistory) client(c int, cli *clientv3.Client, keys []string) {
	defer h.wg.Done()
	rng := rand.New(rand.NewSource(int64(c)))
	for i := 0; ; i++ {
		select {
		case <-h.stopc:
			return
		default:
		}
		in := regInput{key: keys[rng.Intn(len(keys))]}
		call := time.Since(h.start).Nanoseconds()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		var out regOutput
		var err error
		switch rng.Intn(3) {
		case 0:
			in.op, in.value = "put", fmt.Sprintf("c%d-%d", c, i)
			_, err = cli.Put(ctx, in.key, in.value)
		case 1:
			in.op = "get"
			var r *clientv3.GetResponse
			r, err = cli.Get(ctx, in.key)
			if err == nil && len(r.Kvs) > 0 {
				out.value = string(r.Kvs[0].Value)
			}
		default:
			in.op, in.value = "cas", fmt.Sprintf("c%d-%d", c, i)
			h.mu.Lock()
			in.expected = lastValue(h.ops, in.key)
			h.mu.Unlock()
			var r *clientv3.TxnResponse
			r, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(in.key), "=", in.expected)).
				Then(clientv3.OpPut(in.key, in.value)).Commit()
			if err == nil {
				out.ok = r.Succeeded
			}
		}
		cancel()
		ret := time.Since(h.start).Nanoseconds()
		if err != nil {
			if in.op == "get" {
				continue // a failed read has no effect
			}
			out.unknown, ret = true, math.MaxInt64 // may take effect any time
		}
		h.mu.Lock()
		h.ops = append(h.ops, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
		h.mu.Unlock()
	}
}

// waitOps waits (at most 30 s) until n more operations are recorded.
func (h *opHistory) waitOps(n int) {
	h.mu.Lock()
	target := len(h.ops) + n
	h.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		done := len(h.ops) >= target
		h.mu.Unlock()
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("fewer than %d operations recorded after 30 s", target)
}

func (h *opHistory) stop() {
	select {
	case <-h.stopc:
	default:
		close(h.stopc)
	}
	h.wg.Wait()
}

// check stops the clients and checks the history with porcupine.
func (h *opHistory) check() {
	h.t.Helper()
	h.stop()
	res, info := porcupine.CheckOperationsVerbose(registerModel, h.ops, 30*time.Second)
	switch res {
	case porcupine.Ok:
		h.t.Logf("%d operations, linearizable", len(h.ops))
	case porcupine.Illegal:
		path := h.t.TempDir() + "/history.html"
		porcupine.VisualizePath(registerModel, info, path)
		h.t.Fatalf("history of %d operations is not linearizable (visualization: %s)", len(h.ops), path)
	default:
		h.t.Fatalf("linearizability check of %d operations did not finish", len(h.ops))
	}
}

// lastValue is the value of the last acknowledged put or successful CAS of
// key in the history so far: a plausible expectation for the next CAS.
func lastValue(history []porcupine.Operation, key string) string {
	for i := len(history) - 1; i >= 0; i-- {
		in, out := history[i].Input.(regInput), history[i].Output.(regOutput)
		if in.key != key || out.unknown {
			continue
		}
		switch {
		case in.op == "put", in.op == "cas" && out.ok:
			return in.value
		case in.op == "get":
			return out.value
		}
	}
	return ""
}

// clusterLeader is the index of the member that says it leads.
func clusterLeader(t *testing.T, ms []*clusterMember) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range ms {
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.endpoint()}, DialTimeout: time.Second, Logger: zap.NewNop()})
			if err != nil {
				continue
			}
			ctx, cancel := opCtx()
			st, err := cli.Status(ctx, m.endpoint())
			cancel()
			cli.Close()
			if err == nil && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no leader")
	return -1
}
