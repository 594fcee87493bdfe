package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Grow a one-member cluster the way etcd's docs say: add a learner, start
// it with --initial-cluster-state existing, let it catch up, promote it;
// then remove it, and it stops by itself.
func TestMembershipLearnerJoinPromoteRemove(t *testing.T) {
	ms, _ := newCluster(t, 2)
	n1, n2 := ms[0], ms[1]
	p1 := n1.start(t, n1.name+"="+n1.peerURL)
	waitReady(t, p1)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{n1.endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, k := range []string{"a", "b", "c"} {
		if _, err := cli.Put(ctx, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}

	// A voter that is not running would leave no quorum: refused, as etcd.
	if _, err := cli.MemberAdd(ctx, []string{n2.peerURL}); !errors.Is(err, rpctypes.ErrMemberNotEnoughStarted) {
		t.Fatalf("adding a voter to a one-member cluster: %v, want ErrMemberNotEnoughStarted", err)
	}
	add, err := cli.MemberAddAsLearner(ctx, []string{n2.peerURL})
	if err != nil {
		t.Fatal(err)
	}
	if !add.Member.IsLearner || len(add.Members) != 2 {
		t.Fatalf("MemberAddAsLearner = %+v, want a learner among 2 members", add)
	}
	// (The same URLs again within a second would be the same ID: etcd
	// says "member ID already exist" first; another URL set is not.)
	if _, err := cli.MemberAddAsLearner(ctx, []string{n2.peerURL, "http://127.0.0.1:1"}); !errors.Is(err, rpctypes.ErrPeerURLExist) {
		t.Fatalf("adding a used peer URL: %v, want ErrPeerURLExist", err)
	}

	initial := n1.name + "=" + n1.peerURL + "," + n2.name + "=" + n2.peerURL
	p2 := startCairn(t,
		"--name", n2.name, "--data-dir", n2.dataDir,
		"--listen-client-urls", n2.clientURL, "--advertise-client-urls", n2.clientURL,
		"--listen-peer-urls", n2.peerURL, "--initial-advertise-peer-urls", n2.peerURL,
		"--initial-cluster", initial, "--initial-cluster-state", "existing")
	waitReady(t, p2)

	c2, err := clientv3.New(clientv3.Config{Endpoints: []string{n2.endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	// A learner serves serializable reads only; it has the data.
	got, err := c2.Get(ctx, "c", clientv3.WithSerializable())
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v-c" {
		t.Fatalf("serializable read on the learner: %v, %v; want c=v-c", got, err)
	}
	// A learner is alive but not ready, as etcd's /livez and /readyz say.
	for path, want := range map[string]string{
		"/livez":              "200 ok\n",
		"/readyz/non_learner": "503 [-]non_learner failed: not supported for learner\n\n",
	} {
		if got := httpGet(t, n2.clientURL+path); got != want {
			t.Errorf("GET %s on the learner: %q, want %q", path, got, want)
		}
	}
	if st, err := c2.Status(ctx, n2.endpoint()); err != nil || !st.IsLearner {
		t.Fatalf("status of the learner: %+v, %v; want is_learner", st, err)
	}
	if _, err := c2.Put(ctx, "x", "y"); err == nil || !strings.Contains(err.Error(), "not supported for learner") {
		t.Fatalf("put on a learner: %v, want the learner error", err)
	}
	if _, err := cli.MemberPromote(ctx, add.Member.ID); err != nil {
		t.Fatalf("promote: %v", err)
	}
	// The member learns of its promotion when it applies it.
	eventually(t, "put on the promoted member", func() error {
		_, err := c2.Put(ctx, "x", "y")
		return err
	})
	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Members {
		if m.IsLearner || m.Name == "" || len(m.ClientURLs) != 1 {
			t.Fatalf("member list after promote: %+v, want two started voters", list.Members)
		}
	}

	// The promotion survives a restart of both: Raft's configuration is
	// rebuilt from the applied conf changes, so n1 alone is no quorum.
	startN2 := func() *proc {
		return startCairn(t,
			"--name", n2.name, "--data-dir", n2.dataDir,
			"--listen-client-urls", n2.clientURL, "--advertise-client-urls", n2.clientURL,
			"--listen-peer-urls", n2.peerURL, "--initial-advertise-peer-urls", n2.peerURL,
			"--initial-cluster", initial, "--initial-cluster-state", "existing")
	}
	p1.kill(t)
	p2.kill(t)
	p1 = n1.start(t, n1.name+"="+n1.peerURL)
	p2 = startN2()
	waitReady(t, p1)
	waitReady(t, p2)
	p2.kill(t)
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	_, err = cli.Put(short, "without", "quorum")
	cancelShort()
	if err == nil {
		t.Fatal("a put succeeded on n1 alone after the restart: it forgot n2 is a voter")
	}
	p2 = startN2()
	waitReady(t, p2)
	eventually(t, "put with both members back", func() error {
		_, err := cli.Put(ctx, "with", "quorum")
		return err
	})

	if _, err := cli.MemberRemove(ctx, add.Member.ID); err != nil {
		t.Fatalf("remove: %v", err)
	}
	select {
	case <-p2.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("removed member still runs; stderr:\n%s", p2.stderr)
	}
	if !strings.Contains(p2.stderr.String(), "permanently removed") {
		t.Fatalf("removed member exited without saying why; stderr:\n%s", p2.stderr)
	}
	// If n2 led, n1 forwards to it until an election timeout passes, and
	// such a put is lost with n2 (a timeout): retry, as clients do.
	for deadline := time.Now().Add(30 * time.Second); ; {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Put(attempt, "after", "removal")
		cancelAttempt()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("put after the removal: %v; n1's stderr:\n%s", err, p1.stderr)
		}
	}
}
