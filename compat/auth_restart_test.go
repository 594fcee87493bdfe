package compat

// Auth across a restart, differential.
//
// What it proves: after both members are stopped and started again on
// their data, Cairn and etcd 3.7.4 answer the same: auth is still
// enabled at the same auth revision, users, roles and permissions are
// intact, simple tokens are gone (they live in memory only) while JWTs
// still verify, and logins work again. Simple and JWT mode.

import (
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

func TestAuthRestartDiff(t *testing.T) {
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			r := cluster.StartBothRestartable(t, authOptions(mode.spec(t)))
			e := &authEnv{t: t, mode: mode.name, sides: []int{etcdSide}}
			connect := func() {
				cairnEP, etcdEP := r.Endpoints()
				e.conns[etcdSide] = dial(t, etcdEP)
				e.conns[cairnSide] = dial(t, cairnEP)
			}
			connect()
			if why := cairnAuthGate(t, e.conns[cairnSide], mode.name); why != "" {
				gateCairn(t, why)
			} else {
				e.sides = append(e.sides, cairnSide)
			}
			for side := range 2 {
				e.tokens[side] = map[string]string{}
			}

			e.run("", userAdd("root", "pw"), ok)
			e.run("", grantRole("root", "root"), ok)
			e.run("", roleAdd("reader"), ok)
			e.run("", grantPerm("reader", read, "foo", ""), ok)
			e.run("", userAdd("alice", "pw-a"), ok)
			e.run("", grantRole("alice", "reader"), ok)
			e.run("", userAddNoPassword("carol"), ok)
			e.run("", put("foo", "1"), ok)
			e.run("", authEnable, ok)
			e.login("root", "pw", ok)
			e.login("alice", "pw-a", ok)
			e.run("alice", get("foo"), ok)
			e.run("", authStatus, ok)

			r.Restart()
			connect()

			e.run("", authStatus, ok) // enabled, same auth revision
			e.run("", get("foo"), rpctypes.ErrGRPCUserEmpty)
			e.run("alice", get("foo"), e.pick(rpctypes.ErrGRPCInvalidAuthToken, ok))
			e.run("root", userList, e.pick(rpctypes.ErrGRPCInvalidAuthToken, ok))
			e.login("alice", "wrong", rpctypes.ErrGRPCAuthFailed)
			e.login("carol", "", errNoPasswordUser)
			e.login("alice", "pw-a", ok)
			e.login("root", "pw", ok)
			e.run("alice", get("foo"), ok)
			e.run("alice", put("foo", "x"), rpctypes.ErrGRPCPermissionDenied)
			e.run("root", userList, ok)
			e.run("root", roleGet("reader"), ok)
			e.run("root", userGet("alice"), ok)
			e.run("root", authDisable, ok)

			// Disabled survives a restart too.
			r.Restart()
			connect()
			e.run("", authStatus, ok)
			e.run("", get("foo"), ok)
		})
	}
}
