package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
)

// authClient connects clientv3 to endpoints as user (no credentials when
// user is empty).
func authClient(t *testing.T, user, password string, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		Username: user, Password: password})
	if err != nil {
		t.Fatalf("client as %q: %v", user, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// mustEtcdErr fails unless err is etcd's error want.
func mustEtcdErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil || rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

// setupAuth makes root (role root), role app (read-write on app/) and
// user alice (role app), and enables auth, over an anonymous client.
func setupAuth(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "app"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "app", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "app"); return err },
		func() error { _, err := cli.Put(ctx, "secret", "s"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
}

// TestAuthKillRestart runs the binary with auth: permissions hold for
// reads, writes, txns, watches and leases, and the auth state (users,
// roles, enabled) survives kill -9 and restart, while simple tokens, kept
// in memory as in etcd, do not.
func TestAuthKillRestart(t *testing.T) {
	m := newMember(t, "--bcrypt-cost=4")
	p := m.start(t)
	setupAuth(t, newClient(t, m))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := authClient(t, "alice", "alicepw", m.endpoint())
	root := authClient(t, "root", "rootpw", m.endpoint())
	if _, err := alice.Put(ctx, "app/a", "1"); err != nil {
		t.Fatalf("put inside: %v", err)
	}
	_, err := alice.Put(ctx, "other", "1")
	mustEtcdErr(t, "put outside", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.Get(ctx, "secret")
	mustEtcdErr(t, "get outside", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("app/a"), "=", "1")).Then(clientv3.OpGet("secret")).Commit()
	mustEtcdErr(t, "txn outside", err, rpctypes.ErrGRPCPermissionDenied)
	if r, err := alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("app/a"), "=", "1")).Then(clientv3.OpPut("app/b", "2")).Commit(); err != nil || !r.Succeeded {
		t.Fatalf("txn inside: %v %v", r, err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	if wr := <-alice.Watch(wctx, "", clientv3.WithPrefix()); wr.Err() == nil || !strings.Contains(wr.Err().Error(), "permission denied") {
		t.Errorf("watch of every key: %v", wr.Err())
	}
	wch := alice.Watch(wctx, "app/", clientv3.WithPrefix())
	if _, err := root.Put(ctx, "secret", "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "app/c", "3"); err != nil {
		t.Fatal(err)
	}
	if wr := <-wch; len(wr.Events) != 1 || string(wr.Events[0].Kv.Key) != "app/c" {
		t.Errorf("watch inside got %+v, want only app/c", wr.Events)
	}
	l, err := alice.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Put(ctx, "app/leased", "x", clientv3.WithLease(l.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.KeepAliveOnce(ctx, l.ID); err != nil {
		t.Errorf("keepalive of own lease: %v", err)
	}
	anon := newClient(t, m)
	defer anon.Close()
	_, err = anon.Get(ctx, "app/a")
	mustEtcdErr(t, "anonymous get", err, rpctypes.ErrGRPCUserEmpty)
	ar, err := anon.Authenticate(ctx, "alice", "alicepw")
	if err != nil {
		t.Fatal(err)
	}
	_, err = anon.Authenticate(ctx, "alice", "wrong")
	mustEtcdErr(t, "wrong password", err, rpctypes.ErrGRPCAuthFailed)

	p.kill(t)
	p = m.start(t)

	anon2 := newClient(t, m)
	defer anon2.Close()
	st, err := anon2.AuthStatus(ctx)
	if err != nil || !st.Enabled {
		t.Fatalf("AuthStatus after kill: %v %v", st, err)
	}
	alice2 := authClient(t, "alice", "alicepw", m.endpoint())
	if r, err := alice2.Get(ctx, "app/", clientv3.WithPrefix()); err != nil || len(r.Kvs) != 4 {
		t.Fatalf("get after restart: %v %v", r, err)
	}
	_, err = alice2.Get(ctx, "secret")
	mustEtcdErr(t, "get outside after restart", err, rpctypes.ErrGRPCPermissionDenied)
	root2 := authClient(t, "root", "rootpw", m.endpoint())
	if r, err := root2.UserList(ctx); err != nil || strings.Join(r.Users, ",") != "alice,root" {
		t.Fatalf("UserList after restart: %v %v", r, err)
	}
	if r, err := root2.RoleGet(ctx, "app"); err != nil || len(r.Perm) != 1 || string(r.Perm[0].Key) != "app/" {
		t.Fatalf("RoleGet after restart: %v %v", r, err)
	}

	// Simple tokens live in memory: after a clean restart (no Raft entry
	// left to replay, which after kill -9 may issue the same token again,
	// as in etcd) the old one is invalid.
	p.stop(t)
	p = m.start(t)
	anon3 := newClient(t, m)
	defer anon3.Close()
	withOld := metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, ar.Token)
	_, err = anon3.Get(withOld, "app/a")
	mustEtcdErr(t, "simple token after restart", err, rpctypes.ErrGRPCInvalidAuthToken)
	p.stop(t)
}

// TestAuthTokenAcrossMembers: a token one member issued works on every
// member of a 3-member cluster, with simple tokens (the issuing entry's
// Raft index is in the token, and every member applies it) and with JWT.
func TestAuthTokenAcrossMembers(t *testing.T) {
	key := filepath.Join(t.TempDir(), "hmac.key")
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, token string }{
		{"simple", "simple"},
		{"jwt", "jwt,sign-method=HS256,priv-key=" + key + ",ttl=5m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, initial := newCluster(t, 3)
			var procs []*proc
			for _, m := range ms {
				procs = append(procs, m.start(t, initial, "--bcrypt-cost=4", "--auth-token="+tc.token))
			}
			for _, p := range procs {
				waitReady(t, p)
			}
			setupAuth(t, authClient(t, "", "", ms[0].endpoint()))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			issuer := authClient(t, "", "", ms[0].endpoint())
			ar, err := issuer.Authenticate(ctx, "alice", "alicepw")
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "jwt" && strings.Count(ar.Token, ".") != 2 {
				t.Fatalf("not a JWT: %q", ar.Token)
			}
			tctx := metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, ar.Token)
			for i, m := range ms {
				c := authClient(t, "", "", m.endpoint())
				if _, err := c.Put(tctx, "app/from-"+m.name, "v"); err != nil {
					t.Errorf("member %d: put with the token: %v", i, err)
				}
				_, err := c.Put(tctx, "secret", "x")
				mustEtcdErr(t, m.name+": put outside", err, rpctypes.ErrGRPCPermissionDenied)
				if r, err := c.Get(tctx, "app/", clientv3.WithPrefix(), clientv3.WithSerializable()); err != nil {
					t.Errorf("member %d: get with the token: %v", i, err)
				} else if len(r.Kvs) == 0 {
					t.Errorf("member %d: got no keys", i)
				}
			}
			// A permission change reaches every member.
			root := authClient(t, "root", "rootpw", ms[1].endpoint())
			if _, err := root.UserRevokeRole(ctx, "alice", "app"); err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				c := authClient(t, "alice", "alicepw", m.endpoint())
				eventually(t, m.name+" sees the revoke", func() error {
					_, err := c.Put(ctx, "app/x", "v")
					if err == nil || rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(rpctypes.ErrGRPCPermissionDenied) {
						return errors.New("put still allowed or other error: " + errString(err))
					}
					return nil
				})
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestAuthTokenSpecRefused: a malformed --auth-token stops start-up with
// etcd's error, before the member serves.
func TestAuthTokenSpecRefused(t *testing.T) {
	for _, spec := range []string{"bogus", "jwt,sign-method=RS256,priv-key=/nonexistent,pub-key=/nonexistent", "simple,a"} {
		m := newMember(t, "--auth-token="+spec)
		p := startCairn(t, m.args()...)
		if code := p.wait(t); code == 0 {
			t.Errorf("--auth-token=%s: exit 0", spec)
		}
		if !strings.Contains(p.stderr.String(), "auth: invalid auth options") {
			t.Errorf("--auth-token=%s: stderr lacks etcd's error:\n%s", spec, p.stderr)
		}
	}
}

// TestAuthSnapshotToLaggingMember: a member that was down while auth was
// set up and the log compacted past it gets the auth state in the
// snapshot: users, roles and permissions hold there, and its replicated
// state hashes the same as the others'.
func TestAuthSnapshotToLaggingMember(t *testing.T) {
	ms, initial := newCluster(t, 3)
	var procs []*proc
	for _, m := range ms {
		procs = append(procs, m.start(t, initial, append([]string{"--bcrypt-cost=4"}, snapshotFlags...)...))
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	procs[2].kill(t)
	anon := authClient(t, "", "", ms[0].endpoint(), ms[1].endpoint())
	eventually(t, "two members accept writes", func() error {
		wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer wcancel()
		_, err := anon.Put(wctx, "warm", "x")
		return err
	})
	setupAuth(t, anon)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	root := authClient(t, "root", "rootpw", ms[0].endpoint(), ms[1].endpoint())
	for i := 0; i < 300; i++ { // well past --snapshot-count 100 and the 20 catch-up entries
		if _, err := root.Put(ctx, "app/fill", strings.Repeat("x", i%7)); err != nil {
			t.Fatal(err)
		}
	}
	procs[2] = ms[2].start(t, initial, append([]string{"--bcrypt-cost=4"}, snapshotFlags...)...)
	waitReady(t, procs[2])
	alice := authClient(t, "", "", ms[2].endpoint())
	ar, err := authClient(t, "", "", ms[0].endpoint()).Authenticate(ctx, "alice", "alicepw")
	if err != nil {
		t.Fatal(err)
	}
	tctx := metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, ar.Token)
	eventually(t, "the lagging member serves alice's permissions", func() error {
		r, err := alice.Get(tctx, "app/fill", clientv3.WithSerializable())
		if err != nil {
			return err
		}
		if len(r.Kvs) != 1 || r.Kvs[0].Version != 300 {
			return errors.New("not caught up yet")
		}
		return nil
	})
	if !strings.Contains(procs[2].stderr.String(), "installed snapshot") {
		t.Errorf("the lagging member logged no snapshot installed; stderr:\n%s", procs[2].stderr)
	}
	_, err = alice.Get(tctx, "secret", clientv3.WithSerializable())
	mustEtcdErr(t, "get outside on the lagging member", err, rpctypes.ErrGRPCPermissionDenied)
	st, err := authClient(t, "root", "rootpw", ms[2].endpoint()).AuthStatus(ctx)
	if err != nil || !st.Enabled {
		t.Fatalf("AuthStatus on the lagging member: %v %v", st, err)
	}
	// Maintenance.Hash covers the auth keyspace (and needs role root).
	type hasher struct {
		cli *clientv3.Client
		ctx context.Context
	}
	var hs []hasher
	for _, m := range ms {
		c := authClient(t, "", "", m.endpoint())
		r, err := c.Authenticate(ctx, "root", "rootpw")
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, hasher{c, metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, r.Token)})
	}
	eventually(t, "the same Maintenance.Hash on every member", func() error {
		hashes := map[uint32]int{}
		for _, h := range hs {
			r, err := pb.NewMaintenanceClient(h.cli.ActiveConnection()).Hash(h.ctx, &pb.HashRequest{})
			if err != nil {
				return err
			}
			hashes[r.Hash]++
		}
		if len(hashes) != 1 {
			return errors.New("members' Maintenance.Hash differ")
		}
		return nil
	})
}
