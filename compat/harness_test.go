package compat

// The differential harness shared by the KV suites: a pair of fresh members
// with raw etcdserverpb KV clients, one call per request on each, and a
// field-by-field comparison of the two answers.

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-kv/cairn/compat/internal/cluster"
)

// requestTimeout bounds one request to one member.
const requestTimeout = 10 * time.Second

// maxMismatches is how many mismatches one sequence reports before it stops:
// after the first, later ones are often consequences of it.
const maxMismatches = 8

// pair is a fresh Cairn member and a fresh etcd member with a raw KV client
// on each. Raw clients let the test compare whole responses, including
// headers of nested txn responses that clientv3 does not surface.
type pair struct {
	etcd, cairn pb.KVClient
	// etcdCrashed closes if etcd hits a fatal error; etcdCrash says why.
	etcdCrashed <-chan struct{}
	etcdCrash   func() string
}

func newPair(t *testing.T) *pair {
	t.Helper()
	cairnEps, etcdEps := cluster.StartBoth(t)
	crashed, crash := cluster.EtcdCrash(etcdEps[0])
	return &pair{
		etcd:        pb.NewKVClient(dial(t, etcdEps[0])),
		cairn:       pb.NewKVClient(dial(t, cairnEps[0])),
		etcdCrashed: crashed,
		etcdCrash:   crash,
	}
}

func dial(t *testing.T, endpoint string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)))
	if err != nil {
		t.Fatalf("dial %s: %v", endpoint, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// outcome is one member's answer to one request: a response, or a gRPC status.
type outcome struct {
	resp any // *pb.RangeResponse, *pb.PutResponse, ...; nil on error
	err  *status.Status
}

// call sends req, one of the five KV request types, and normalizes the
// answer. It gives up early when abort closes.
func call(kv pb.KVClient, req any, abort <-chan struct{}) outcome {
	ctx, cancel := requestCtx(abort)
	defer cancel()
	var (
		resp any
		hdr  *pb.ResponseHeader
		err  error
	)
	switch r := req.(type) {
	case *pb.RangeRequest:
		var x *pb.RangeResponse
		if x, err = kv.Range(ctx, r); x != nil {
			resp, hdr = x, x.Header
		}
	case *pb.PutRequest:
		var x *pb.PutResponse
		if x, err = kv.Put(ctx, r); x != nil {
			resp, hdr = x, x.Header
		}
	case *pb.DeleteRangeRequest:
		var x *pb.DeleteRangeResponse
		if x, err = kv.DeleteRange(ctx, r); x != nil {
			resp, hdr = x, x.Header
		}
	case *pb.TxnRequest:
		var x *pb.TxnResponse
		if x, err = kv.Txn(ctx, r); x != nil {
			resp, hdr = x, x.Header
		}
	case *pb.CompactionRequest:
		var x *pb.CompactionResponse
		if x, err = kv.Compact(ctx, r); x != nil {
			resp, hdr = x, x.Header
		}
	default:
		panic(fmt.Sprintf("call: unexpected request type %T", req))
	}
	return settle(resp, hdr, err)
}

// requestCtx bounds one request by requestTimeout and ends it early when
// abort (if not nil) closes.
func requestCtx(abort <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	if abort != nil {
		go func() {
			select {
			case <-abort:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// settle makes the outcome of one call: its gRPC status, or the response
// with its top-level header normalized.
func settle(resp any, hdr *pb.ResponseHeader, err error) outcome {
	if err != nil {
		return outcome{err: status.Convert(err)}
	}
	normalizeHeader(hdr)
	return outcome{resp: resp}
}

// normalizeHeader replaces the identity fields of a top-level header, which
// differ between any two clusters, by whether they are set (1) or not (0).
// The revision is kept, and so are headers nested in txn responses, which
// etcd leaves without identity.
func normalizeHeader(h *pb.ResponseHeader) {
	if h == nil {
		return
	}
	h.ClusterId = setOrNot(h.ClusterId)
	h.MemberId = setOrNot(h.MemberId)
	h.RaftTerm = setOrNot(h.RaftTerm)
}

func setOrNot(v uint64) uint64 {
	if v != 0 {
		return 1
	}
	return 0
}

// diffOutcomes returns "" when the two outcomes are the same: equal
// responses, or errors with the same gRPC code and message.
func diffOutcomes(etcd, cairn outcome) string {
	switch {
	case etcd.err != nil || cairn.err != nil:
		if etcd.err != nil && cairn.err != nil &&
			etcd.err.Code() == cairn.err.Code() && etcd.err.Message() == cairn.err.Message() {
			return ""
		}
		return "outcomes differ (see above)"
	case msgEqual(etcd.resp, cairn.resp):
		return ""
	default:
		return shorten(cmp.Diff(etcd.resp, cairn.resp, cmpOpts...), 6000)
	}
}

func (o outcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("error code=%s desc=%q", o.err.Code(), o.err.Message())
	}
	return describe(o.resp)
}

// describe prints a message in compact text form (see msgText), after its
// type, shortened in the middle when it is long (oversized values).
func describe(m any) string {
	text := fmt.Sprint(m)
	if pm, ok := m.(proto.Message); ok {
		text = msgText(pm)
	}
	return shorten(strings.TrimPrefix(fmt.Sprintf("%T %s", m, text), "*etcdserverpb."), 1500)
}

// shorten cuts the middle out of s when it is longer than max.
func shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return s[:max-300] + fmt.Sprintf(" …(%d bytes elided)… ", len(s)-max) + s[len(s)-300:]
}

// trace, set by CAIRN_COMPAT_TRACE=1, logs every step with etcd's answer
// (run with -v), to read what a sequence exercises.
var trace = os.Getenv("CAIRN_COMPAT_TRACE") != ""

// checker runs a sequence of requests on a pair and reports each mismatch
// with its step number, the request and both answers.
type checker struct {
	t          *testing.T
	p          *pair
	step       int
	mismatches int
}

func newChecker(t *testing.T) *checker { return &checker{t: t, p: newPair(t)} }

// do sends req to etcd, then to Cairn, and returns etcd's outcome and
// whether Cairn's was the same.
func (c *checker) do(req any) (outcome, bool) {
	c.t.Helper()
	c.step++
	e := call(c.p.etcd, req, c.p.etcdCrashed)
	k := call(c.p.cairn, req, nil)
	select {
	case <-c.p.etcdCrashed:
		c.t.Fatalf("step %d: etcd, the oracle, crashed on this request (an etcd bug; Cairn is not at fault)\n"+
			"etcd log: %s\nrequest: %s\ncairn:   %s", c.step, c.p.etcdCrash(), describe(req), k)
	default:
	}
	d := diffOutcomes(e, k)
	if trace {
		c.t.Logf("step %d: %s\n  -> %s", c.step, describe(req), e)
	}
	if d == "" {
		return e, true
	}
	c.mismatches++
	c.t.Errorf("step %d: Cairn differs from etcd\nrequest: %s\netcd:    %s\ncairn:   %s\ndiff (-etcd +cairn):\n%s",
		c.step, describe(req), e, k, d)
	if c.mismatches >= maxMismatches {
		c.t.Fatalf("stopping after %d mismatches", c.mismatches)
	}
	return e, false
}
