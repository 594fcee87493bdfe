package compat

// clientv3 auth differential test.
//
// What it proves: etcd's own Go client, configured with Username and
// Password as applications configure it, sees the same on Cairn as on
// etcd 3.7.4, in simple and JWT mode: a wrong password at connection
// time, permission errors, the client's transparent re-login when the
// server says a token is invalid or stale (a role change, a password
// change), watches canceled for a lack of permission, and concurrency's
// Mutex and Session over a user's lease. Each member's run produces a
// transcript of results and error messages; the transcripts are compared
// line by line, and etcd's transcript is also checked against the
// expected lines written here.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

func TestAuthClientv3Diff(t *testing.T) {
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			cairnEps, etcdEps := cluster.StartBothWith(t, authOptions(mode.spec(t)))
			gated := cairnAuthGate(t, dial(t, cairnEps[0]), mode.name)
			etcd := authClientv3Run(t, etcdEps[0])
			if d := diffLines(authClientv3Want, etcd); d != "" {
				t.Errorf("etcd's transcript is not the expected one:\n%s", d)
			}
			if gated != "" {
				gateCairn(t, gated)
				return
			}
			cairn := authClientv3Run(t, cairnEps[0])
			if d := diffLines(etcd, cairn); d != "" {
				t.Errorf("transcripts differ (etcd, cairn):\n%s", d)
			}
		})
	}
}

// authClientv3Want is etcd's transcript, the same in both modes.
var authClientv3Want = []string{
	"setup: ok",
	"New alice/wrong: etcdserver: authentication failed, invalid user ID or password",
	"New nosuch/pw: etcdserver: authentication failed, invalid user ID or password",
	"alice Get foo: foo=1",
	"alice Put foo: etcdserver: permission denied",
	"alice Get secret: etcdserver: permission denied",
	"root grants alice writer: ok",
	"alice Get foo after a role change: foo=1",
	"alice Put app/x: ok",
	"alice Watch secret: canceled=true err=etcdserver: permission denied",
	"alice Watch foo from rev 1: PUT foo=1",
	"alice Session and Mutex on app/lock: locked app/lock/<lease>",
	"alice Mutex unlock: ok",
	"alice Mutex on lock: etcdserver: permission denied",
	"root changes alice's password: ok",
	"alice Get foo after a password change: etcdserver: authentication failed, invalid user ID or password",
	"New alice/new: ok",
	"alice(new) Get foo: foo=1",
	"root deletes alice: ok",
	"alice(new) Get foo after delete: etcdserver: authentication failed, invalid user ID or password",
}

// authClientv3Run runs the client scenario on one member.
func authClientv3Run(t *testing.T, ep string) []string {
	t.Helper()
	var out []string
	logf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	result := func(what string, err error) {
		if err != nil {
			logf("%s: %v", what, errText(err))
		} else {
			logf("%s: ok", what)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	newClient := func(user, pw string) (*clientv3.Client, error) {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second,
			Username: user, Password: pw, Logger: zap.NewNop()})
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	get := func(c *clientv3.Client, what, key string, opts ...clientv3.OpOption) {
		resp, err := c.Get(ctx, key, opts...)
		if err != nil {
			logf("%s: %v", what, errText(err))
			return
		}
		var kvs []string
		for _, kv := range resp.Kvs {
			kvs = append(kvs, string(kv.Key)+"="+string(kv.Value))
		}
		logf("%s: %s", what, strings.Join(kvs, ","))
	}

	// Setup while auth is disabled.
	admin, err := newClient("", "")
	if err != nil {
		t.Fatalf("client for %s: %v", ep, err)
	}
	err = func() error {
		for _, step := range []func() error{
			func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
			func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
			func() error { _, err := admin.RoleAdd(ctx, "reader"); return err },
			func() error {
				_, err := admin.RoleGrantPermission(ctx, "reader", "foo", "", clientv3.PermissionType(clientv3.PermRead))
				return err
			},
			func() error { _, err := admin.RoleAdd(ctx, "writer"); return err },
			func() error {
				_, err := admin.RoleGrantPermission(ctx, "writer", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(clientv3.PermReadWrite))
				return err
			},
			func() error { _, err := admin.UserAdd(ctx, "alice", "alicepw"); return err },
			func() error { _, err := admin.UserGrantRole(ctx, "alice", "reader"); return err },
			func() error { _, err := admin.Put(ctx, "foo", "1"); return err },
			func() error { _, err := admin.Put(ctx, "secret", "s"); return err },
			func() error { _, err := admin.AuthEnable(ctx); return err },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	}()
	result("setup", err)

	for _, c := range [][2]string{{"alice", "wrong"}, {"nosuch", "pw"}} {
		_, err := newClient(c[0], c[1])
		result(fmt.Sprintf("New %s/%s", c[0], c[1]), err)
	}
	root, err := newClient("root", "rootpw")
	if err != nil {
		t.Fatalf("root client for %s: %v", ep, err)
	}
	alice, err := newClient("alice", "alicepw")
	if err != nil {
		t.Fatalf("alice client for %s: %v", ep, err)
	}
	get(alice, "alice Get foo", "foo")
	_, err = alice.Put(ctx, "foo", "x")
	result("alice Put foo", err)
	get(alice, "alice Get secret", "secret")

	// A role change: a JWT goes stale, and the client logs in again.
	_, err = root.UserGrantRole(ctx, "alice", "writer")
	result("root grants alice writer", err)
	get(alice, "alice Get foo after a role change", "foo")
	_, err = alice.Put(ctx, "app/x", "1")
	result("alice Put app/x", err)

	// Watches.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	wr := <-alice.Watch(wctx, "secret")
	logf("alice Watch secret: canceled=%v err=%v", wr.Canceled, errText(wr.Err()))
	wr = <-alice.Watch(wctx, "foo", clientv3.WithRev(1))
	if wr.Err() != nil || len(wr.Events) == 0 {
		logf("alice Watch foo from rev 1: err=%v events=%d", errText(wr.Err()), len(wr.Events))
	} else {
		ev := wr.Events[0]
		logf("alice Watch foo from rev 1: %s %s=%s", ev.Type, ev.Kv.Key, ev.Kv.Value)
	}
	wcancel()

	// concurrency over alice's own lease.
	sess, err := concurrency.NewSession(alice, concurrency.WithTTL(30), concurrency.WithContext(ctx))
	if err != nil {
		result("alice Session", err)
	} else {
		m := concurrency.NewMutex(sess, "app/lock")
		if err := m.Lock(ctx); err != nil {
			result("alice Session and Mutex on app/lock", err)
		} else {
			key := strings.Replace(m.Key(), fmt.Sprintf("%x", sess.Lease()), "<lease>", 1)
			logf("alice Session and Mutex on app/lock: locked %s", key)
			result("alice Mutex unlock", m.Unlock(ctx))
		}
		result("alice Mutex on lock", concurrency.NewMutex(sess, "lock").Lock(ctx))
		sess.Close()
	}

	// A password change: the token is dropped (simple) or stale (JWT);
	// the client's re-login with the old password fails.
	_, err = root.UserChangePassword(ctx, "alice", "newpw")
	result("root changes alice's password", err)
	get(alice, "alice Get foo after a password change", "foo")
	alice2, err := newClient("alice", "newpw")
	result("New alice/new", err)
	if err == nil {
		get(alice2, "alice(new) Get foo", "foo")
		_, err = root.UserDelete(ctx, "alice")
		result("root deletes alice", err)
		get(alice2, "alice(new) Get foo after delete", "foo")
	}
	return out
}

// errText is an error's message without the gRPC wrapping.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	if i := strings.Index(s, "desc = "); i >= 0 {
		s = s[i+len("desc = "):]
	}
	return s
}

// diffLines shows where two transcripts differ, "" if they do not.
func diffLines(a, b []string) string {
	var d strings.Builder
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			fmt.Fprintf(&d, "line %d:\n  - %s\n  + %s\n", i+1, x, y)
		}
	}
	return d.String()
}
