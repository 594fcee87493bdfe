package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Parameters of TestKillRestartKeepsAcknowledgedWrites.
const (
	killRounds   = 3
	writers      = 8
	writeClients = 4 // writers share these connections
	// killAfterAcks is how many acknowledged puts a round waits for before
	// it kills the server; killAfterMax bounds the wait if writes are slow.
	killAfterAcks = 1500
	killAfterMax  = 5 * time.Second
	hotKeys       = 16 // keys every writer overwrites
	keyPrefix     = "d/"
)

// TestKillRestartKeepsAcknowledgedWrites runs concurrent writers against
// the real binary, SIGKILLs it mid-stream, restarts it on the same data
// directory and checks, every round, that the store's whole history since
// the previous check is explained by the writes the clients issued:
//
//   - each acknowledged put is readable at its header revision, with its value;
//   - every revision since the previous check was made by exactly one put: an
//     acknowledged one, or one in flight at the kill (which may or may not
//     have been applied, but never twice and never at a reused revision);
//   - the live keys, values, create and mod revisions and versions are
//     exactly those that this history produces;
//   - a put after restart gets the next revision.
func TestKillRestartKeepsAcknowledgedWrites(t *testing.T) {
	m := newMember(t)
	h := &history{rev: 1, state: map[string]kvState{}}
	p := m.start(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed) // picks keys and where the kill lands
	rng := rand.New(rand.NewPCG(seed, 0))
	for round := 1; round <= killRounds; round++ {
		ops := writeUntilKilled(t, m, p, round, rng)
		p = m.start(t)
		cli := newClient(t, m)
		applied := h.check(t, cli, ops)
		t.Logf("round %d: %d puts acknowledged, %d in flight at the kill of which %d applied; restart took %v",
			round, countAcked(ops), len(ops)-countAcked(ops), applied, p.startup)
		if !t.Failed() {
			h.probe(t, cli, round)
		}
		cli.Close()
		if t.Failed() {
			return
		}
	}
}

// op is one put a writer issued.
type op struct {
	key, value string
	acked      bool
	rev        int64 // the response's header revision, if acked
}

func countAcked(ops []op) int {
	n := 0
	for _, o := range ops {
		if o.acked {
			n++
		}
	}
	return n
}

// writeUntilKilled runs the writers against p, kills p once enough puts
// are acknowledged, and returns every put issued.
func writeUntilKilled(t *testing.T, m *member, p *proc, round int, rng *rand.Rand) []op {
	t.Helper()
	clis := make([]*clientv3.Client, writeClients)
	for i := range clis {
		clis[i] = newClient(t, m)
	}
	var acked atomic.Int64
	enough := make(chan struct{}) // closed at the killAfterAcks-th ack
	stop := make(chan struct{})   // safety net, should puts go on succeeding after the kill
	perWriter := make([][]op, writers)
	var wg sync.WaitGroup
	for w := range writers {
		seed := rng.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			perWriter[w] = write(clis[w%len(clis)], round, w, seed, stop, func() {
				if acked.Add(1) == killAfterAcks {
					close(enough)
				}
			})
		}()
	}
	select {
	case <-enough:
	case <-time.After(killAfterMax):
	}
	// Land the kill at a random point between two acknowledgements.
	time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
	p.kill(t)
	// Writers stop at their first error, which the kill causes at once;
	// stop only matters if something hangs.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * opTimeout):
		close(stop)
		<-done
		t.Errorf("round %d: writers did not stop after the kill", round)
	}
	for _, c := range clis {
		c.Close()
	}
	var ops []op
	for _, w := range perWriter {
		ops = append(ops, w...)
	}
	if countAcked(ops) == 0 {
		t.Fatalf("round %d: no put was acknowledged before the kill", round)
	}
	return ops
}

// write is one writer: puts to fresh keys, to keys it wrote before and to
// hot keys all writers share, until a put fails. Every value is unique.
func write(cli *clientv3.Client, round, w int, seed uint64, stop <-chan struct{}, onAck func()) []op {
	rng := rand.New(rand.NewPCG(seed, uint64(w)))
	var ops []op
	var own []string
	for i := 0; ; i++ {
		select {
		case <-stop:
			return ops
		default:
		}
		var key string
		switch n := rng.IntN(8); {
		case n < 2:
			key = fmt.Sprintf("%shot/%02d", keyPrefix, rng.IntN(hotKeys))
		case n < 3 && len(own) > 0:
			key = own[rng.IntN(len(own))]
		default:
			key = fmt.Sprintf("%sw%d/r%d/%06d", keyPrefix, w, round, i)
			own = append(own, key)
		}
		value := fmt.Sprintf("r%d.w%d.%d.%s", round, w, i, padding(rng))
		ctx, cancel := opCtx()
		resp, err := cli.Put(ctx, key, value)
		cancel()
		o := op{key: key, value: value}
		if err == nil {
			o.acked, o.rev = true, resp.Header.Revision
		}
		ops = append(ops, o)
		if err != nil {
			return ops
		}
		onAck()
	}
}

func padding(rng *rand.Rand) string {
	b := make([]byte, rng.IntN(64))
	for i := range b {
		b[i] = 'a' + byte(rng.IntN(26))
	}
	return string(b)
}

// kvState is what the model expects a live key to hold.
type kvState struct {
	value                string
	create, mod, version int64
}

// history is the model of the store: its state as of revision rev, built
// from checked writes only.
type history struct {
	rev   int64
	state map[string]kvState
}

// apply advances the model by one put at revision rev.
func (h *history) apply(rev int64, key, value string) {
	s, ok := h.state[key]
	if !ok {
		s = kvState{create: rev}
	}
	s.value, s.mod = value, rev
	s.version++
	h.state[key] = s
}

// check reads the restarted store and matches its history since h.rev
// against ops (the puts issued since), then advances the model to the
// store's current revision. The store must be idle. It returns how many
// of the puts in flight at the kill were applied.
func (h *history) check(t *testing.T, cli *clientv3.Client, ops []op) (inFlightApplied int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now, err := cli.Get(ctx, keyPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	cur := now.Header.Revision

	// Which put made each revision in (h.rev, cur]: first the acknowledged ones.
	byRev := map[int64]*op{}
	for i := range ops {
		o := &ops[i]
		if !o.acked {
			continue
		}
		switch {
		case o.rev <= h.rev || o.rev > cur:
			t.Errorf("put %s=%s was acknowledged at revision %d, outside (%d, %d]: lost or revision reused", o.key, o.value, o.rev, h.rev, cur)
		case byRev[o.rev] != nil:
			t.Errorf("puts %s=%s and %s=%s were both acknowledged at revision %d", byRev[o.rev].key, byRev[o.rev].value, o.key, o.value, o.rev)
		default:
			byRev[o.rev] = o
		}
	}
	// The other revisions must each be one put that was in flight at the kill.
	inFlight := map[[2]string]bool{}
	for _, o := range ops {
		if !o.acked {
			inFlight[[2]string{o.key, o.value}] = true
		}
	}
	for rev := h.rev + 1; rev <= cur; rev++ {
		if o := byRev[rev]; o != nil {
			got, err := cli.Get(ctx, o.key, clientv3.WithRev(rev), clientv3.WithSerializable())
			switch {
			case err != nil:
				t.Fatalf("get %s at revision %d: %v", o.key, rev, err)
			case len(got.Kvs) != 1:
				t.Errorf("acknowledged put %s=%s at revision %d: key absent at that revision", o.key, o.value, rev)
			case string(got.Kvs[0].Value) != o.value || got.Kvs[0].ModRevision != rev:
				t.Errorf("acknowledged put %s=%s at revision %d: at that revision got value %q mod_revision %d",
					o.key, o.value, rev, got.Kvs[0].Value, got.Kvs[0].ModRevision)
			}
			continue
		}
		at, err := cli.Get(ctx, keyPrefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithSerializable())
		if err != nil {
			t.Fatalf("read at revision %d: %v", rev, err)
		}
		var made []*mvccpb.KeyValue
		for _, kv := range at.Kvs {
			if kv.ModRevision == rev {
				made = append(made, kv)
			}
		}
		if len(made) != 1 {
			t.Errorf("revision %d: no acknowledged put has it, and %d keys were modified at it (want 1 in-flight put)", rev, len(made))
			continue
		}
		k := [2]string{string(made[0].Key), string(made[0].Value)}
		if !inFlight[k] {
			t.Errorf("revision %d holds %s=%s, which is neither acknowledged there nor an unused in-flight put", rev, k[0], k[1])
			continue
		}
		delete(inFlight, k) // an in-flight put is applied at most once
		inFlightApplied++
		byRev[rev] = &op{key: k[0], value: k[1]}
	}
	if t.Failed() {
		return inFlightApplied
	}

	// Replay the history and compare with the live keys.
	for rev := h.rev + 1; rev <= cur; rev++ {
		h.apply(rev, byRev[rev].key, byRev[rev].value)
	}
	h.rev = cur
	h.compare(t, now.Kvs)
	return inFlightApplied
}

// compare checks that kvs, the live keys read at h.rev, are exactly the model.
func (h *history) compare(t *testing.T, kvs []*mvccpb.KeyValue) {
	t.Helper()
	if len(kvs) != len(h.state) {
		t.Errorf("after restart at revision %d: %d keys, want %d", h.rev, len(kvs), len(h.state))
	}
	mods := map[int64]string{}
	for _, kv := range kvs {
		key := string(kv.Key)
		got := kvState{value: string(kv.Value), create: kv.CreateRevision, mod: kv.ModRevision, version: kv.Version}
		want, ok := h.state[key]
		switch {
		case !ok:
			t.Errorf("key %s=%s (mod_revision %d) was never written", key, got.value, got.mod)
		case got != want:
			t.Errorf("key %s: got %+v, want %+v", key, got, want)
		}
		// Every key here is written by puts of one key each, so no two
		// live keys share a mod_revision.
		if other, dup := mods[kv.ModRevision]; dup {
			t.Errorf("keys %s and %s share mod_revision %d", other, key, kv.ModRevision)
		}
		mods[kv.ModRevision] = key
		if kv.ModRevision < 2 || kv.ModRevision > h.rev {
			t.Errorf("key %s: mod_revision %d outside [2, %d]", key, kv.ModRevision, h.rev)
		}
	}
	if t.Failed() {
		var missing []string
		got := map[string]bool{}
		for _, kv := range kvs {
			got[string(kv.Key)] = true
		}
		for k := range h.state {
			if !got[k] {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("missing keys: %v", missing)
		}
	}
}

// probe puts one key and expects the revision right after the model's:
// the revision sequence continues across the restart, without a gap or reuse.
func (h *history) probe(t *testing.T, cli *clientv3.Client, round int) {
	t.Helper()
	ctx, cancel := opCtx()
	defer cancel()
	key, value := keyPrefix+"probe", fmt.Sprintf("after restart %d", round)
	resp, err := cli.Put(ctx, key, value)
	if err != nil {
		t.Fatalf("put after restart: %v", err)
	}
	if resp.Header.Revision != h.rev+1 {
		t.Errorf("put after restart: revision %d, want %d", resp.Header.Revision, h.rev+1)
	}
	h.apply(resp.Header.Revision, key, value)
	h.rev = resp.Header.Revision
}
