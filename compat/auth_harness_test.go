package compat

// The harness of the auth differential tests (auth_diff_test.go,
// auth_etcdctl_test.go): a pair of fresh members started with the same
// --auth-token, requests sent as a user (the "token" metadata of the
// user's login on that member), answers normalized and compared.
//
// Each step also states etcd's expected answer, checked on etcd, so the
// scenario itself is proven; Cairn's answers are compared with etcd's. A
// Cairn that cannot run a scenario (no Auth service, a mode it refuses)
// fails the test.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// authMode is one --auth-token configuration both members run with.
type authMode struct {
	name string
	spec func(tb testing.TB) string // the --auth-token value
}

// authModes are the token providers the auth scenarios run under.
var authModes = []authMode{
	{"simple", func(testing.TB) string { return "simple" }},
	{"jwt", jwtRS256Spec},
}

// jwtRS256Spec writes a fresh RSA key pair to a temp dir and returns
// the --auth-token value that signs with it (RS256, 5 minute tokens).
func jwtRS256Spec(t testing.TB) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	priv := filepath.Join(dir, "jwt.key")
	pub := filepath.Join(dir, "jwt.pub")
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for path, blk := range map[string]*pem.Block{
		priv: {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)},
		pub:  {Type: "PUBLIC KEY", Bytes: pubDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return "jwt,pub-key=" + pub + ",priv-key=" + priv + ",sign-method=RS256,ttl=5m"
}

// authOptions are the pair options of one mode: bcrypt at its minimum
// cost so that logins are cheap.
func authOptions(spec string) cluster.Options {
	return cluster.Options{Auth: &cluster.Auth{Token: spec, BcryptCost: 4}}
}

// cairnAuthGate returns why the Cairn side of an auth scenario cannot run
// ("" when it can): Cairn has no Auth service yet (AuthStatus is
// Unimplemented), or its embed.Config cannot take the mode's --auth-token.
func cairnAuthGate(t testing.TB, conn *grpc.ClientConn, mode string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	_, err := pb.NewAuthClient(conn).AuthStatus(ctx, &pb.AuthStatusRequest{})
	if status.Code(err) == codes.Unimplemented {
		return "Cairn's Auth service is Unimplemented (issue #17 not merged)"
	}
	return ""
}

// gateCairn fails the test: Cairn serves Auth (issue #17), so a Cairn side
// that cannot run is a defect.
func gateCairn(t *testing.T, why string) {
	t.Helper()
	t.Fatalf("the Cairn side of the auth scenario cannot run: %s", why)
}

// authEnv is one auth scenario on a pair.
type authEnv struct {
	t     *testing.T
	mode  string
	conns [2]*grpc.ClientConn
	sides []int // etcdSide, and cairnSide unless gated
	// tokens maps, per member, a login name to the token it got.
	tokens [2]map[string]string
	step   int
	// mismatches counts steps where Cairn differed; the scenario stops
	// comparing after maxMismatches, as later ones follow from the first.
	mismatches int
}

func newAuthEnv(t *testing.T, mode authMode) *authEnv {
	t.Helper()
	cairnEps, etcdEps := cluster.StartBothWith(t, authOptions(mode.spec(t)))
	e := &authEnv{t: t, mode: mode.name, sides: []int{etcdSide}}
	e.conns[etcdSide] = dial(t, etcdEps[0])
	e.conns[cairnSide] = dial(t, cairnEps[0])
	if why := cairnAuthGate(t, e.conns[cairnSide], mode.name); why != "" {
		gateCairn(t, why)
	} else {
		e.sides = append(e.sides, cairnSide)
	}
	for side := range 2 {
		e.tokens[side] = map[string]string{}
	}
	return e
}

// pick returns simple or jwt for the scenario's mode: where the two
// token kinds behave differently in etcd (stale JWTs, simple tokens
// dropped on password change or auth disable).
func (e *authEnv) pick(simple, jwt error) error {
	if e.mode == "jwt" {
		return jwt
	}
	return simple
}

// authCall is a request that is not a single unary message: it gets the
// context carrying the caller's token and the member's connection.
type authCall struct {
	name string
	fn   func(ctx context.Context, conn *grpc.ClientConn) (any, error)
}

// errAny, as an expectation, accepts any error from etcd; ok accepts success.
var (
	errAny = errors.New("any error")
	ok     error
)

// run sends req as user as on every member, checks etcd's answer against
// want (nil: success, errAny: some error, else that gRPC error), and
// compares Cairn's answer with etcd's. It returns etcd's response (nil on
// error).
func (e *authEnv) run(as string, req any, want error) any {
	e.t.Helper()
	return e.runOpts(as, req, want, false)
}

// runErrOnly is run for calls whose successful answers differ between
// any two clusters (Status, HashKV, MemberList): only the error, or
// success, is compared.
func (e *authEnv) runErrOnly(as string, req any, want error) {
	e.t.Helper()
	e.runOpts(as, req, want, true)
}

func (e *authEnv) runOpts(as string, req any, want error, errOnly bool) any {
	e.t.Helper()
	e.step++
	var outs [2]outcome
	for _, side := range e.sides {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		ctx = e.withToken(ctx, side, as)
		resp, err := authDo(ctx, e.conns[side], req)
		cancel()
		outs[side] = authSettle(resp, err, errOnly)
	}
	what := fmt.Sprintf("step %d (%s, as %s): %s", e.step, e.mode, asName(as), describeReq(req))
	if trace {
		e.t.Logf("%s\n  etcd:  %s", what, outs[etcdSide])
	}
	if msg := checkWant(outs[etcdSide], want); msg != "" {
		e.t.Errorf("%s\n  etcd (the oracle) answered %s; the scenario expects %s", what, outs[etcdSide], msg)
	}
	if len(e.sides) == 2 && e.mismatches < maxMismatches {
		if d := diffOutcomes(outs[etcdSide], outs[cairnSide]); d != "" {
			e.mismatches++
			e.t.Errorf("%s\n  etcd:  %s\n  cairn: %s\n%s", what, outs[etcdSide], outs[cairnSide], d)
		}
	}
	return outs[etcdSide].resp
}

// login authenticates name on every member and keeps each member's token
// under name; want is etcd's expected answer.
func (e *authEnv) login(name, password string, want error) {
	e.t.Helper()
	e.loginAs(name, name, password, want)
}

// loginAs is login that keeps the token under key.
func (e *authEnv) loginAs(key, name, password string, want error) {
	e.t.Helper()
	e.step++
	req := &pb.AuthenticateRequest{Name: name, Password: password}
	var outs [2]outcome
	for _, side := range e.sides {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		resp, err := pb.NewAuthClient(e.conns[side]).Authenticate(ctx, req)
		cancel()
		if err == nil {
			e.tokens[side][key] = resp.Token
		}
		outs[side] = authSettle(resp, err, false)
	}
	what := fmt.Sprintf("step %d (%s): Authenticate %q/%q", e.step, e.mode, name, password)
	if trace {
		e.t.Logf("%s\n  etcd:  %s", what, outs[etcdSide])
	}
	if msg := checkWant(outs[etcdSide], want); msg != "" {
		e.t.Errorf("%s\n  etcd (the oracle) answered %s; the scenario expects %s", what, outs[etcdSide], msg)
	}
	if len(e.sides) == 2 && e.mismatches < maxMismatches {
		if d := diffOutcomes(outs[etcdSide], outs[cairnSide]); d != "" {
			e.mismatches++
			e.t.Errorf("%s\n  etcd:  %s\n  cairn: %s\n%s", what, outs[etcdSide], outs[cairnSide], d)
		}
	}
}

// withToken attaches the token as's login got on side. as "" sends no
// token; "token:X" sends X itself.
func (e *authEnv) withToken(ctx context.Context, side int, as string) context.Context {
	tok, literal := strings.CutPrefix(as, "token:")
	if !literal {
		if as == "" {
			return ctx
		}
		var found bool
		if tok, found = e.tokens[side][as]; !found {
			e.t.Fatalf("step %d: no login %q on %s", e.step, as, sideName(side))
		}
	}
	return metadata.AppendToOutgoingContext(ctx, "token", tok)
}

func asName(as string) string {
	if as == "" {
		return "nobody (no token)"
	}
	return as
}

// checkWant returns "" when o is what want says, else what was wanted.
func checkWant(o outcome, want error) string {
	switch {
	case want == nil:
		if o.err != nil {
			return "success"
		}
	case want == errAny:
		if o.err == nil {
			return "an error"
		}
	default:
		w := status.Convert(want)
		if o.err == nil || o.err.Code() != w.Code() || o.err.Message() != w.Message() {
			return fmt.Sprintf("error code=%s desc=%q", w.Code(), w.Message())
		}
	}
	return ""
}

// authSettle is settle for any response with a header, with tokens
// normalized (see normalizeToken). With errOnly a success is reduced to
// an empty AuthStatusResponse, so only errors are compared.
func authSettle(resp any, err error, errOnly bool) outcome {
	if err != nil {
		return outcome{err: status.Convert(err)}
	}
	if errOnly {
		return outcome{resp: "success"}
	}
	switch r := resp.(type) {
	case interface{ GetHeader() *pb.ResponseHeader }:
		normalizeHeader(r.GetHeader())
	case watchResps:
		for _, w := range r {
			normalizeHeader(w.Header)
		}
	}
	if a, ok := resp.(*pb.AuthenticateResponse); ok {
		a.Token = normalizeToken(a.Token)
	}
	return outcome{resp: resp}
}

var reSimpleToken = regexp.MustCompile(`^[a-zA-Z]{16}\.[0-9]+$`)

// normalizeToken reduces a token to what must be the same on both
// members: its kind, and for a JWT its algorithm, claims' names, user and
// auth revision, and whether exp is within the 5 minute TTL of now. The
// random prefix, Raft index and signature differ by design.
func normalizeToken(tok string) string {
	if reSimpleToken.MatchString(tok) {
		return "<simple token: 16 letters.index>"
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "<unknown token " + tok + ">"
	}
	var header, claims map[string]any
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			return "<undecodable JWT " + tok + ">"
		}
	}
	exp, _ := claims["exp"].(float64)
	until := time.Until(time.Unix(int64(exp), 0))
	expOK := until > 4*time.Minute && until <= 5*time.Minute+time.Second
	names := make([]string, 0, len(claims))
	for k := range claims {
		names = append(names, k)
	}
	return fmt.Sprintf("<JWT alg=%v typ=%v claims=%d username=%v revision=%v exp-in-ttl=%v>",
		header["alg"], header["typ"], len(names), claims["username"], claims["revision"], expOK)
}

// describeReq prints a request for a failure message.
func describeReq(req any) string {
	if c, ok := req.(authCall); ok {
		return c.name
	}
	return describe(req)
}

// authDo sends one request of any unary etcdserverpb type (KV, Lease,
// Auth, Maintenance, Cluster) or runs an authCall.
func authDo(ctx context.Context, conn *grpc.ClientConn, req any) (any, error) {
	kv, lease, auth := pb.NewKVClient(conn), pb.NewLeaseClient(conn), pb.NewAuthClient(conn)
	mnt, clu := pb.NewMaintenanceClient(conn), pb.NewClusterClient(conn)
	// Return the typed response only when it is not nil, so that an error
	// leaves resp a nil interface.
	wrap := func(r any, isNil bool, err error) (any, error) {
		if isNil {
			return nil, err
		}
		return r, err
	}
	switch r := req.(type) {
	case authCall:
		return r.fn(ctx, conn)
	case *pb.RangeRequest:
		x, err := kv.Range(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.PutRequest:
		x, err := kv.Put(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.DeleteRangeRequest:
		x, err := kv.DeleteRange(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.TxnRequest:
		x, err := kv.Txn(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.CompactionRequest:
		x, err := kv.Compact(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.LeaseGrantRequest:
		x, err := lease.LeaseGrant(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.LeaseRevokeRequest:
		x, err := lease.LeaseRevoke(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.LeaseTimeToLiveRequest:
		x, err := lease.LeaseTimeToLive(ctx, r)
		if x != nil {
			// etcd lists the keys from a map; the TTL left depends on timing.
			x.Keys = sortedKeys(x.Keys)
			if x.TTL > 0 {
				x.TTL = 1
			}
		}
		return wrap(x, x == nil, err)
	case *pb.LeaseLeasesRequest:
		x, err := lease.LeaseLeases(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthEnableRequest:
		x, err := auth.AuthEnable(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthDisableRequest:
		x, err := auth.AuthDisable(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthStatusRequest:
		x, err := auth.AuthStatus(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthenticateRequest:
		x, err := auth.Authenticate(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthUserAddRequest:
		x, err := auth.UserAdd(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthUserGetRequest:
		x, err := auth.UserGet(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthUserListRequest:
		x, err := auth.UserList(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthUserDeleteRequest:
		x, err := auth.UserDelete(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthUserChangePasswordRequest:
		x, err := auth.UserChangePassword(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthUserGrantRoleRequest:
		x, err := auth.UserGrantRole(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthUserRevokeRoleRequest:
		x, err := auth.UserRevokeRole(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthRoleAddRequest:
		x, err := auth.RoleAdd(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthRoleGetRequest:
		x, err := auth.RoleGet(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthRoleListRequest:
		x, err := auth.RoleList(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthRoleDeleteRequest:
		x, err := auth.RoleDelete(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthRoleGrantPermissionRequest:
		x, err := auth.RoleGrantPermission(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AuthRoleRevokePermissionRequest:
		x, err := auth.RoleRevokePermission(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.StatusRequest:
		x, err := mnt.Status(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.AlarmRequest:
		x, err := mnt.Alarm(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.DefragmentRequest:
		x, err := mnt.Defragment(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.HashKVRequest:
		x, err := mnt.HashKV(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.HashRequest:
		x, err := mnt.Hash(ctx, r)
		return wrap(x, x == nil, err)
	case *pb.MemberListRequest:
		x, err := clu.MemberList(ctx, r)
		return wrap(x, x == nil, err)
	default:
		panic(fmt.Sprintf("authDo: unexpected request type %T", req))
	}
}

func sortedKeys(keys [][]byte) [][]byte {
	out := append([][]byte(nil), keys...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && string(out[j]) < string(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// watchCall opens a watch stream as the caller, sends cr, and collects
// responses until one carries events or is a cancel, or n responses came,
// whichever is first (a bounded wait: the creation response comes at
// once, historical events right after).
func watchCall(name string, cr *pb.WatchCreateRequest, n int) authCall {
	return authCall{name: "Watch " + name, fn: func(ctx context.Context, conn *grpc.ClientConn) (any, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := pb.NewWatchClient(conn).Watch(ctx)
		if err != nil {
			return nil, err
		}
		if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: cr}}); err != nil {
			return nil, err
		}
		var got watchResps
		for len(got) < n {
			wr, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				if len(got) == 0 {
					return nil, err
				}
				break
			}
			got = append(got, wr)
			if wr.Canceled || len(wr.Events) > 0 {
				break
			}
		}
		return got, nil
	}}
}

// watchResps are the responses of one watchCall, printed in msgText form.
type watchResps []*pb.WatchResponse

func (w watchResps) String() string {
	parts := make([]string, len(w))
	for i, r := range w {
		parts[i] = "<" + msgText(r) + ">"
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// keepAliveCall sends one keep-alive for id as the caller and returns the
// answer.
func keepAliveCall(id int64) authCall {
	return authCall{name: fmt.Sprintf("LeaseKeepAlive %d", id), fn: func(ctx context.Context, conn *grpc.ClientConn) (any, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := pb.NewLeaseClient(conn).LeaseKeepAlive(ctx)
		if err != nil {
			return nil, err
		}
		if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			return nil, err
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return resp, nil
	}}
}

// lockCall locks name with lease as the caller (the Lock service, which
// writes the lock key with the caller's token).
func lockCall(name string, lease int64) authCall {
	return authCall{name: fmt.Sprintf("Lock %q lease %d", name, lease), fn: func(ctx context.Context, conn *grpc.ClientConn) (any, error) {
		return v3lockpb.NewLockClient(conn).Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: lease})
	}}
}

// unlockCall releases the lock key.
func unlockCall(key string) authCall {
	return authCall{name: fmt.Sprintf("Unlock %q", key), fn: func(ctx context.Context, conn *grpc.ClientConn) (any, error) {
		return v3lockpb.NewLockClient(conn).Unlock(ctx, &v3lockpb.UnlockRequest{Key: []byte(key)})
	}}
}

// campaignCall campaigns for election name with lease and value.
func campaignCall(name string, lease int64, value string) authCall {
	return authCall{name: fmt.Sprintf("Campaign %q lease %d", name, lease), fn: func(ctx context.Context, conn *grpc.ClientConn) (any, error) {
		return v3electionpb.NewElectionClient(conn).Campaign(ctx, &v3electionpb.CampaignRequest{Name: []byte(name), Lease: lease, Value: []byte(value)})
	}}
}

// leaderCall asks for the leader of election name.
func leaderCall(name string) authCall {
	return authCall{name: fmt.Sprintf("Leader %q", name), fn: func(ctx context.Context, conn *grpc.ClientConn) (any, error) {
		return v3electionpb.NewElectionClient(conn).Leader(ctx, &v3electionpb.LeaderRequest{Name: []byte(name)})
	}}
}
