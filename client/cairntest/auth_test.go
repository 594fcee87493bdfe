package cairntest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/pkg/codec"
	"github.com/cairn-kv/cairn/server/api/v3concpb"
)

func etcdAs(t *testing.T, s *Server, user, password string) *clientv3.Client {
	t.Helper()
	cfg := s.Config()
	cfg.Username, cfg.Password = user, password
	ec, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: 5 * time.Second, Username: user, Password: password})
	if err != nil {
		t.Fatalf("client as %q: %v", user, err)
	}
	t.Cleanup(func() { ec.Close() })
	return ec
}

// wantErr fails unless err is etcd's want (same code and message).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, want)
		return
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	if rpctypes.ErrorDesc(err) != rpctypes.ErrorDesc(want) || code != status.Code(want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

// TestWithAuth runs etcd's auth rules end to end over clientv3: a user
// with a read-write role on a prefix and nothing else.
func TestWithAuth(t *testing.T) {
	s := Start(t, WithAuth("rootpw"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := s.EtcdClient(t)
	st, err := root.AuthStatus(ctx)
	if err != nil || !st.Enabled {
		t.Fatalf("AuthStatus: %v %v", st, err)
	}
	for _, step := range []func() error{
		func() error { _, err := root.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := root.RoleAdd(ctx, "app"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "app", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error {
			_, err := root.RoleGrantPermission(ctx, "app", "ro", "", clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx, "alice", "app"); return err },
		func() error { _, err := root.Put(ctx, "secret", "s"); return err },
		func() error { _, err := root.Put(ctx, "ro", "r"); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = root.UserAdd(ctx, "alice", "x")
	wantErr(t, "UserAdd twice", err, rpctypes.ErrGRPCUserAlreadyExist)
	_, err = root.UserDelete(ctx, "root")
	wantErr(t, "UserDelete root", err, rpctypes.ErrGRPCInvalidAuthMgmt)
	_, err = root.RoleGet(ctx, "nope")
	wantErr(t, "RoleGet missing", err, rpctypes.ErrGRPCRoleNotFound)

	_, err = clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second, Username: "alice", Password: "wrong"})
	wantErr(t, "wrong password", err, rpctypes.ErrGRPCAuthFailed)

	alice := etcdAs(t, s, "alice", "alicepw")
	if _, err := alice.Put(ctx, "app/1", "v"); err != nil {
		t.Fatalf("put inside: %v", err)
	}
	if r, err := alice.Get(ctx, "app/", clientv3.WithPrefix()); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("get inside: %v %v", r, err)
	}
	if r, err := alice.Get(ctx, "ro"); err != nil || string(r.Kvs[0].Value) != "r" {
		t.Fatalf("get ro: %v %v", r, err)
	}
	_, err = alice.Put(ctx, "ro", "x")
	wantErr(t, "put read-only", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.Get(ctx, "secret")
	wantErr(t, "get outside", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.Get(ctx, "app", clientv3.WithPrefix()) // "app" to "apq" is wider than "app/"
	wantErr(t, "get wider prefix", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.Delete(ctx, "secret")
	wantErr(t, "delete outside", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.Txn(ctx).If(clientv3.Compare(clientv3.Version("secret"), "=", 0)).Then(clientv3.OpPut("app/2", "v")).Commit()
	wantErr(t, "txn compare outside", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.Txn(ctx).Then(clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpGet("secret")}, nil)).Commit()
	wantErr(t, "nested txn read outside", err, rpctypes.ErrGRPCPermissionDenied)
	if _, err := alice.Txn(ctx).If(clientv3.Compare(clientv3.Version("app/1"), ">", 0)).Then(clientv3.OpPut("app/2", "v")).Commit(); err != nil {
		t.Errorf("txn inside: %v", err)
	}
	_, err = alice.Compact(ctx, 2)
	wantErr(t, "compact", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.Status(ctx, s.Endpoints()[0])
	if err != nil {
		t.Errorf("Status as a user: %v", err)
	}
	_, err = alice.HashKV(ctx, s.Endpoints()[0], 0)
	wantErr(t, "hashkv", err, rpctypes.ErrGRPCPermissionDenied)
	if _, err := alice.MemberList(ctx); err != nil {
		t.Errorf("MemberList: %v", err)
	}
	_, err = alice.UserList(ctx)
	wantErr(t, "UserList", err, rpctypes.ErrGRPCPermissionDenied)
	if r, err := alice.UserGet(ctx, "alice"); err != nil || len(r.Roles) != 1 {
		t.Errorf("UserGet self: %v %v", r, err)
	}
	if _, err := alice.RoleGet(ctx, "app"); err != nil {
		t.Errorf("RoleGet own role: %v", err)
	}

	// Watches outside the permission are refused when created.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	wr := <-alice.Watch(wctx, "secret")
	if !wr.Canceled || wr.Err() == nil || !strings.Contains(wr.Err().Error(), "permission denied") {
		t.Errorf("watch outside: %+v", wr)
	}
	wch := alice.Watch(wctx, "app/", clientv3.WithPrefix())
	if _, err := root.Put(ctx, "app/3", "w"); err != nil {
		t.Fatal(err)
	}
	if wr := <-wch; len(wr.Events) != 1 || string(wr.Events[0].Kv.Key) != "app/3" {
		t.Errorf("watch inside: %+v", wr)
	}

	// A watch on one key never gets events of others, whatever range
	// end it sends: an inverted range passes etcd's check (it overlaps
	// the permission) and must match nothing.
	if _, err := root.RoleGrantPermission(ctx, "app", "solo", "", clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	alice = etcdAs(t, s, "alice", "alicepw") // a token at the new auth revision
	solo := alice.Watch(wctx, "solo", clientv3.WithRange("a"))
	exact := alice.Watch(wctx, "solo")
	for _, k := range []string{"b", "solo0", "z", "solo"} {
		if _, err := root.Put(ctx, k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if wr := <-exact; len(wr.Events) != 1 || string(wr.Events[0].Kv.Key) != "solo" {
		t.Errorf("watch of solo: %+v", wr)
	}
	select {
	case wr := <-solo:
		if len(wr.Events) > 0 || !wr.Canceled {
			t.Errorf("inverted-range watch got %+v", wr)
		}
	case <-time.After(300 * time.Millisecond):
	}

	// Lock runs with the caller's permissions.
	lock := func(name string) error {
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		defer lcancel()
		return alice.ActiveConnection().Invoke(lctx, "/v3lockpb.Lock/Lock", &v3concpb.LockRequest{Name: []byte(name)},
			new(v3concpb.LockResponse), grpc.ForceCodec(codec.Codec{}))
	}
	if err := lock("app/lock"); err != nil {
		t.Errorf("lock inside: %v", err)
	}
	if err := lock("secret-lock"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("lock outside: %v", err)
	}

	// Leases: a key alice may not write makes the lease hers no more.
	l, err := alice.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "secret2", "x", clientv3.WithLease(l.ID)); err != nil {
		t.Fatal(err)
	}
	_, err = alice.KeepAliveOnce(ctx, l.ID)
	wantErr(t, "keepalive", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
	wantErr(t, "ttl with keys", err, rpctypes.ErrGRPCPermissionDenied)
	_, err = alice.Revoke(ctx, l.ID)
	wantErr(t, "revoke", err, rpctypes.ErrGRPCPermissionDenied)
	if _, err := root.Revoke(ctx, l.ID); err != nil {
		t.Errorf("root revoke: %v", err)
	}

	// No token, and a bad one.
	anon, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	_, err = anon.Get(ctx, "app/1")
	wantErr(t, "anonymous get", err, rpctypes.ErrGRPCUserEmpty)
	_, err = anon.Put(ctx, "app/1", "x")
	wantErr(t, "anonymous put", err, rpctypes.ErrGRPCUserEmpty)
	_, err = anon.MemberList(ctx)
	wantErr(t, "anonymous member list", err, rpctypes.ErrGRPCUserEmpty)
	if st, err := anon.AuthStatus(ctx); err != nil || !st.Enabled {
		t.Errorf("anonymous AuthStatus: %v %v", st, err)
	}
	// A simple token names the Raft index that issued it: index 1 is
	// applied, so the member knows at once that the token is not one of
	// its own (for an index not applied yet it would wait, as etcd).
	bad := metadata.AppendToOutgoingContext(ctx, "token", "nope.1")
	_, err = anon.Get(bad, "app/1")
	wantErr(t, "bad token", err, rpctypes.ErrGRPCInvalidAuthToken)
	// The HTTP gateway's header: "authorization", with or without "Bearer ".
	ar, err := anon.Authenticate(ctx, "alice", "alicepw")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{ar.Token, "Bearer " + ar.Token} {
		if _, err := anon.Get(metadata.AppendToOutgoingContext(ctx, "authorization", v), "app/1"); err != nil {
			t.Errorf("authorization %q: %v", v[:min(len(v), 10)], err)
		}
	}

	// Restart: users, roles and enabled survive; old simple tokens do not.
	s.Restart(t)
	alice2 := etcdAs(t, s, "alice", "alicepw")
	if _, err := alice2.Put(ctx, "app/after", "v"); err != nil {
		t.Errorf("put after restart: %v", err)
	}
	_, err = alice2.Get(ctx, "secret")
	wantErr(t, "get outside after restart", err, rpctypes.ErrGRPCPermissionDenied)
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}

// TestAuthClientCertCN: with --client-cert-auth and auth enabled, a
// request without a token is made by the user its certificate's CN names
// (etcd's AuthInfoFromTLS); a token wins over the certificate.
func TestAuthClientCertCN(t *testing.T) {
	s := Start(t, WithTLS(), WithAuth("rootpw"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := s.EtcdClient(t)
	if _, err := root.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	pki := s.PKI()
	as := func(pair string) *clientv3.Client {
		cfg := s.Config()
		cfg.Username, cfg.Password = "", ""
		switch pair {
		case "root":
			cfg.Cert, cfg.Key = pki.Root.Cert, pki.Root.Key
		case "client":
			cfg.Cert, cfg.Key = pki.Client.Cert, pki.Client.Key
		}
		c, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.Etcd()
	}
	byRootCN := as("root")
	if r, err := byRootCN.Get(ctx, "k"); err != nil || len(r.Kvs) != 1 {
		t.Errorf("get as CN root: %v %v", r, err)
	}
	if _, err := byRootCN.UserList(ctx); err != nil {
		t.Errorf("UserList as CN root: %v", err)
	}
	byClientCN := as("client") // no user "client"
	_, err := byClientCN.Get(ctx, "k")
	wantErr(t, "get as CN client", err, rpctypes.ErrGRPCPermissionDenied)
	if _, err := root.UserAdd(ctx, "client", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx, "client", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := byClientCN.Get(ctx, "k"); err != nil {
		t.Errorf("get as CN client with role root: %v", err)
	}
	// A bad token is refused even with a good certificate.
	bad := metadata.AppendToOutgoingContext(ctx, "token", "nope.1")
	_, err = byRootCN.Get(bad, "k")
	wantErr(t, "bad token over CN root", err, rpctypes.ErrGRPCInvalidAuthToken)
}

// TestAuthSDKConnectionString: the SDK authenticates from a connection
// string's Username and Password, and a wrong password fails New with
// etcd's error.
func TestAuthSDKConnectionString(t *testing.T) {
	s := Start(t, WithAuth(`p,"w`))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := client.ParseConnectionString(`Server=` + s.Endpoints()[0] + `,Username=root,Password="p,""w"`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Etcd().Put(ctx, "k", "v"); err != nil {
		t.Errorf("put as root: %v", err)
	}
	cfg.Password = "wrong"
	if c2, err := client.New(cfg); err == nil {
		c2.Close()
		t.Errorf("New with a wrong password succeeded")
	} else if !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("New with a wrong password: %v", err)
	}
}
