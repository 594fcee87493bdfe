package e2e

import (
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// renewRounds is how many times TestLeaseRenewalAfterCheckpointSurvivesKill
// renews a checkpointed lease and kills the member at once. What it checks
// depends on how far the member got before the kill, so more rounds catch
// more.
const renewRounds = 4

// TestLeaseRenewalAfterCheckpointSurvivesKill: a lease left idle past half
// its TTL has its remaining TTL checkpointed; its next keep-alive first
// clears the checkpoint through Raft, then renews it. A SIGKILL right
// after that keep-alive is acknowledged must not bring the checkpoint
// back: after the restart the lease must still have its full TTL since
// the keep-alive.
//
// The check needs no waiting for expiry: TimeToLive answers whole seconds
// rounded down, so a lease that answers ttl seconds at time t expires
// before t + ttl + 1 s; if that is before the keep-alive's acknowledgement
// + the lease's TTL, it would expire early.
func TestLeaseRenewalAfterCheckpointSurvivesKill(t *testing.T) {
	t.Parallel()
	m := newMember(t)
	p := m.start(t)
	for round := range renewRounds {
		cli := newClient(t, m)
		l := grantWithKeys(t, cli, fmt.Sprintf("renewed%d", round), 4*time.Second)
		// The leader checkpoints the lease at its first check after half
		// its TTL ran down; the checkpoint cannot be awaited through the
		// API. Renew it after that, well before it expires.
		time.Sleep(time.Until(l.renewAcked.Add(l.ttl/2 + checkpointTick/2)))
		keepAliveOnce(t, cli, l)
		p.kill(t)
		cli.Close()

		p = m.start(t)
		cli = newClient(t, m)
		ctx, cancel := opCtx()
		resp, err := cli.TimeToLive(ctx, l.id, clientv3.WithAttachedKeys())
		cancel()
		answered := time.Now()
		if err != nil {
			t.Fatalf("round %d: time-to-live: %v", round, err)
		}
		left := time.Duration(resp.TTL) * time.Second
		t.Logf("round %d: lease renewed %v before the kill has %v left after the restart",
			round, answered.Sub(l.renewAcked).Round(time.Millisecond), left)
		if expiresBy, due := answered.Add(left+time.Second), l.renewAcked.Add(l.ttl); resp.TTL < 0 || expiresBy.Before(due) {
			t.Errorf("round %d: after restart, lease (TTL %v) renewed just before the kill has %ds left: it expires at least %v before its TTL since the keep-alive; its checkpoint came back",
				round, l.ttl, resp.TTL, due.Sub(expiresBy).Round(time.Millisecond))
		}
		ctx, cancel = opCtx()
		_, err = cli.Revoke(ctx, l.id)
		cancel()
		if err != nil {
			t.Fatalf("round %d: revoke: %v", round, err)
		}
		cli.Close()
	}
}
