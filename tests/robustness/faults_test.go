package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// fault is one kind of failure the injector knows.
type fault struct {
	name string
	// inject breaks something and repairs it before it returns; it
	// returns what it did, for the report.
	inject func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error)
}

// faults lists every kind of fault, by name.
var faults = []fault{
	{"kill", func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
		return killRestart(c, c.members[rng.Intn(len(c.members))], rng)
	}},
	{"kill-leader", func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
		m := c.leader(ctx)
		if m == nil {
			return "no leader", nil
		}
		return killRestart(c, m, rng)
	}},
	{"sigterm-restart", func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
		m := c.members[rng.Intn(len(c.members))]
		if err := m.current().terminate(); err != nil {
			return m.name, err
		}
		return m.name, restart(c, m)
	}},
	// etcd issue 20418: a leader paused for longer than an election
	// timeout wakes up in an old term and must not serve a stale read.
	{"pause-leader", func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
		m := c.leader(ctx)
		if m == nil {
			return "no leader", nil
		}
		return pause(m, time.Duration(electionMs*(2+rng.Intn(4)))*time.Millisecond)
	}},
	{"pause", func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
		m := c.members[rng.Intn(len(c.members))]
		return pause(m, time.Duration(100+rng.Intn(2*electionMs))*time.Millisecond)
	}},
	{"cut-peer-inbound", func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
		m := pickMember(ctx, c, rng)
		d := time.Duration(500+rng.Intn(3000)) * time.Millisecond
		m.proxy.Cut()
		sleep(ctx, d)
		m.proxy.Heal()
		return fmt.Sprintf("%s for %v", m.name, d), nil
	}},
	{"blackhole-peer-inbound", func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
		m := pickMember(ctx, c, rng)
		d := time.Duration(500+rng.Intn(3000)) * time.Millisecond
		m.proxy.Blackhole()
		sleep(ctx, d)
		m.proxy.Heal()
		return fmt.Sprintf("%s for %v", m.name, d), nil
	}},
	{"delay-peer-inbound", func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
		m := pickMember(ctx, c, rng)
		lat := time.Duration(10+rng.Intn(200)) * time.Millisecond
		d := time.Duration(1000+rng.Intn(3000)) * time.Millisecond
		m.proxy.Delay(lat)
		sleep(ctx, d)
		m.proxy.Heal()
		return fmt.Sprintf("%s by %v for %v", m.name, lat, d), nil
	}},
	{"replace", replace},
	// Every member at once, as a power loss: acknowledged writes must
	// survive on the synced Raft logs.
	{"kill-all", func(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
		for _, m := range c.members {
			m.current().kill()
		}
		var ps []*proc
		for _, i := range rng.Perm(len(c.members)) {
			ps = append(ps, c.exec(c.members[i]))
			time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		}
		for _, p := range ps {
			if err := p.waitReady(); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("%d members", len(c.members)), nil
	}},
}

// replace removes a member, kills it, and adds a fresh one (new name and
// empty data directory) on the same ports, as an operator replaces a
// failed machine.
func replace(ctx context.Context, c *cluster, rng *rand.Rand) (string, error) {
	m := c.members[rng.Intn(len(c.members))]
	var others []string
	for _, o := range c.members {
		if o != m {
			others = append(others, o.endpoint())
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: others, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return m.name, err
	}
	defer cli.Close()
	// Not ctx: a replacement once begun is finished even if the run ends.
	rctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	list, err := cli.MemberList(rctx)
	if err != nil {
		return m.name, fmt.Errorf("member list: %w", err)
	}
	var id uint64
	for _, x := range list.Members {
		if slices.Contains(x.PeerURLs, m.advertisedPeerURL()) {
			id = x.ID
		}
	}
	if id == 0 {
		return m.name, fmt.Errorf("%s (%s) is not in the member list %v", m.name, m.advertisedPeerURL(), list.Members)
	}
	if _, err := cli.MemberRemove(rctx, id); err != nil {
		// Refused (say, a member restarted too recently for strict
		// reconfiguration) or unknown: go on only if it happened.
		l, lerr := cli.MemberList(rctx)
		if lerr != nil {
			return m.name, fmt.Errorf("remove %x: %w; then member list: %v", id, err, lerr)
		}
		for _, x := range l.Members {
			if x.ID == id {
				return fmt.Sprintf("%s: not removed: %v", m.name, err), nil
			}
		}
	}
	p := m.current()
	select {
	case <-p.exited: // a removed member stops by itself
	case <-time.After(5 * time.Second):
		p.kill()
	}
	old := m.name
	m.replaced++
	m.name = fmt.Sprintf("%s.%d", strings.SplitN(m.name, ".", 2)[0], m.replaced)
	m.dataDir = filepath.Join(filepath.Dir(m.dataDir), m.name)
	// The removal may have deposed the leader: retry "no leader" and
	// the like; a retry after an add that did commit finds the member.
	var newID uint64
	var members []*etcdserverpb.Member
	deadline := time.Now().Add(20 * time.Second)
	for {
		add, err := cli.MemberAdd(rctx, []string{m.advertisedPeerURL()})
		if err == nil {
			newID, members = add.Member.ID, add.Members
			break
		}
		if errors.Is(err, rpctypes.ErrPeerURLExist) {
			if l, lerr := cli.MemberList(rctx); lerr == nil {
				for _, x := range l.Members {
					if slices.Contains(x.PeerURLs, m.advertisedPeerURL()) {
						newID, members = x.ID, l.Members
					}
				}
				if newID != 0 {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			return old, fmt.Errorf("add %s: %w", m.name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var initial []string
	for _, x := range members {
		name := x.Name
		if x.ID == newID {
			name = m.name
		}
		for _, u := range x.PeerURLs {
			initial = append(initial, name+"="+u)
		}
	}
	m.initial, m.state = strings.Join(initial, ","), "existing"
	detail := fmt.Sprintf("%s (%x) by %s (%x)", old, id, m.name, newID)
	// The new member asks a peer for the cluster; a peer that has not yet
	// applied the add refuses it, and it exits (etcd does the same, with
	// "member count is unequal"). An operator starts it again.
	for try := 1; ; try++ {
		p := c.exec(m)
		err := p.waitReady()
		if err == nil || try == 5 || !p.stderr.contains("add this member first") {
			return detail, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pickMember is the leader half the time, else any member.
func pickMember(ctx context.Context, c *cluster, rng *rand.Rand) *member {
	if rng.Intn(2) == 0 {
		if m := c.leader(ctx); m != nil {
			return m
		}
	}
	return c.members[rng.Intn(len(c.members))]
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func killRestart(c *cluster, m *member, rng *rand.Rand) (string, error) {
	m.current().kill()
	time.Sleep(time.Duration(rng.Intn(1000)) * time.Millisecond)
	return m.name, restart(c, m)
}

// restart starts m again on its data directory and waits until it serves.
func restart(c *cluster, m *member) error {
	return c.exec(m).waitReady()
}

func pause(m *member, d time.Duration) (string, error) {
	p := m.current()
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return m.name, err
	}
	time.Sleep(d)
	return fmt.Sprintf("%s for %v", m.name, d), p.signal(syscall.SIGCONT)
}

// faultRecord is one injected fault, for the report.
type faultRecord struct {
	at, took time.Duration // since the start of the run
	name     string
	detail   string
	err      error
}

func (r faultRecord) String() string {
	s := fmt.Sprintf("%8.3fs %-24s %s (%.1fs)", r.at.Seconds(), r.name, r.detail, r.took.Seconds())
	if r.err != nil {
		s += " ERROR: " + r.err.Error()
	}
	return s
}

// injector injects one fault at a time, from the allowed ones, with a
// pause between, until ctx ends or a fault fails; after each it waits for
// every member to have a leader again.
type injector struct {
	c       *cluster
	rng     *rand.Rand
	start   time.Time
	allowed []fault

	mu      sync.Mutex
	records []faultRecord
}

func (in *injector) run(ctx context.Context) {
	for {
		sleep(ctx, time.Duration(500+in.rng.Intn(2000))*time.Millisecond)
		if ctx.Err() != nil {
			return
		}
		f := in.allowed[in.rng.Intn(len(in.allowed))]
		at := time.Since(in.start)
		detail, err := f.inject(ctx, in.c, in.rng)
		if err == nil {
			err = in.c.waitHealthy(30 * time.Second)
		}
		in.mu.Lock()
		in.records = append(in.records, faultRecord{at: at, took: time.Since(in.start) - at, name: f.name, detail: detail, err: err})
		in.mu.Unlock()
		if err != nil {
			return // the cluster is broken: more faults would only blur the report
		}
	}
}

// waitHealthy waits until every member runs and reports a leader.
func (c *cluster) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		var bad []string
		for _, m := range c.members {
			p := m.current()
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited (%v); stderr tail:\n%s", m.name, p.waitErr, p.stderr.tail())
			default:
			}
			st, err := status(context.Background(), m)
			if err != nil || st.Leader == 0 {
				bad = append(bad, fmt.Sprintf("%s: %v", m.name, err))
			}
		}
		if len(bad) == 0 {
			return nil
		}
		last = strings.Join(bad, "; ")
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster not healthy after %v: %s", limit, last)
}

// selectFaults returns the faults named in list (comma-separated), or
// all when list is empty.
func selectFaults(list string) ([]fault, error) {
	if list == "" {
		return faults, nil
	}
	var out []fault
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, f := range faults {
			if f.name == name {
				out, found = append(out, f), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown fault %q", name)
		}
	}
	return out, nil
}
