package compat

// Shrinking a diverging random sequence, and printing it as Go code.
//
// shrink is delta debugging: it replays candidate sequences, each on a
// fresh pair of members, and keeps a candidate when it still diverges with
// the same kind of divergence (the type of the request that differed, or
// "watch", "history", ...). It first drops chunks of steps, halving the
// chunk size when no chunk can go, then simplifies the steps left one at a
// time: it drops a txn's compares and ops, nested ones included, and
// zeroes options. A candidate that would crash etcd or that the runner
// cannot compare (errInvalid) does not count as diverging.

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// shrink returns the smallest sequence it finds within budget that still
// diverges as d did, and that divergence.
func shrink(t *testing.T, steps []any, d *divergence, budget time.Duration) ([]any, *divergence) {
	deadline := time.Now().Add(budget)
	best, bestD := steps, d
	replays := 0
	try := func(cand []any) bool {
		if time.Now().After(deadline) {
			return false
		}
		replays++
		cd, err := replay(t, cand)
		if err != nil || cd == nil || cd.kind != d.kind {
			return false
		}
		best, bestD = cand, cd
		if cd.step < len(cand) {
			best = cand[:cd.step+1] // later steps did not run
		}
		return true
	}
	if d.step < len(steps) && !try(steps[:d.step+1]) {
		t.Logf("shrink: the sequence up to step %d does not diverge again on a fresh pair; shrinking the whole sequence", d.step)
	}
	for n := 2; len(best) >= 2 && time.Now().Before(deadline); {
		chunk := (len(best) + n - 1) / n
		reduced := false
		for start := 0; start < len(best); start += chunk {
			cand := append(append([]any(nil), best[:start]...), best[min(start+chunk, len(best)):]...)
			if try(cand) {
				n = max(n-1, 2)
				reduced = true
				break
			}
		}
		if !reduced {
			if chunk == 1 {
				break
			}
			n = min(2*n, len(best))
		}
	}
	for changed := true; changed && time.Now().Before(deadline); {
		changed = false
		for i := 0; i < len(best); i++ {
			for _, v := range simpler(best[i]) {
				cand := append([]any(nil), best...)
				cand[i] = v
				if try(cand) {
					changed = true
					break
				}
			}
		}
	}
	t.Logf("shrink: %d replays in %v", replays, time.Since(deadline.Add(-budget)).Round(time.Millisecond))
	return best, bestD
}

// replay runs steps on a fresh pair and returns the first divergence.
func replay(t *testing.T, steps []any) (*divergence, error) {
	r := newDiffRun(t)
	defer r.close()
	return r.run(steps)
}

// simpler returns variants of a step that each do a little less.
func simpler(step any) []any {
	switch x := step.(type) {
	case watchOpen:
		var out []any
		if x.stream != 0 {
			out = append(out, watchOpen{req: x.req})
		}
		for _, v := range simplerMsg(x.req) {
			out = append(out, watchOpen{stream: x.stream, req: v.(*pb.WatchCreateRequest)})
		}
		return out
	case watchCancel:
		return nil
	default:
		return simplerMsg(step)
	}
}

// simplerMsg returns copies of a request with one option zeroed, or one
// element of a list (compares, txn ops) dropped or simplified. Keys, IDs
// and compare targets stay.
func simplerMsg(msg any) []any {
	var out []any
	v := reflect.ValueOf(msg).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		fv := v.Field(i)
		switch {
		case !f.IsExported() || strings.HasPrefix(f.Name, "XXX_") || fv.IsZero():
			continue
		case f.Name == "Key" || f.Name == "ID" || f.Name == "Target" || f.Name == "TargetUnion" || f.Name == "Request":
			continue
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Pointer:
			for j := range fv.Len() {
				c := cloneMsg(msg)
				cf := reflect.ValueOf(c).Elem().Field(i)
				cf.Set(reflect.AppendSlice(cf.Slice(0, j), cf.Slice(j+1, cf.Len())))
				out = append(out, c)
			}
			for j := range fv.Len() {
				for _, e := range simplerElem(fv.Index(j).Interface()) {
					c := cloneMsg(msg)
					reflect.ValueOf(c).Elem().Field(i).Index(j).Set(reflect.ValueOf(e))
					out = append(out, c)
				}
			}
		default:
			c := cloneMsg(msg)
			reflect.ValueOf(c).Elem().Field(i).Set(reflect.Zero(f.Type))
			out = append(out, c)
		}
	}
	return out
}

func simplerElem(e any) []any {
	o, ok := e.(*pb.RequestOp)
	if !ok {
		return simplerMsg(e)
	}
	inner := requestOf(o)
	if inner == nil {
		return nil
	}
	var out []any
	for _, v := range simplerMsg(inner) {
		out = append(out, op(v))
	}
	return out
}

// requestOf returns the request a RequestOp wraps, or nil.
func requestOf(o *pb.RequestOp) any {
	switch r := o.Request.(type) {
	case *pb.RequestOp_RequestRange:
		return r.RequestRange
	case *pb.RequestOp_RequestPut:
		return r.RequestPut
	case *pb.RequestOp_RequestDeleteRange:
		return r.RequestDeleteRange
	case *pb.RequestOp_RequestTxn:
		return r.RequestTxn
	default:
		return nil
	}
}

// goCase prints a regression case for the regressions table.
func goCase(name string, steps []any) string {
	body := strings.ReplaceAll(goSteps(steps), "\n", "\n\t")
	return fmt.Sprintf("{\n\tname: %q,\n\tsteps: %s,\n},", name, body)
}

// goSteps prints steps as a Go []any literal, one step a line.
func goSteps(steps []any) string {
	var b strings.Builder
	b.WriteString("[]any{\n")
	for _, s := range steps {
		b.WriteString("\t" + goStep(s) + ",\n")
	}
	b.WriteString("}")
	return b.String()
}

func goStep(s any) string {
	switch x := s.(type) {
	case watchOpen:
		return fmt.Sprintf("watchOpen{stream: %d, req: %s}", x.stream, goValue(reflect.ValueOf(x.req)))
	case watchCancel:
		return fmt.Sprintf("watchCancel{stream: %d, id: %d}", x.stream, x.id)
	default:
		return goValue(reflect.ValueOf(s))
	}
}

// goValue prints a generated message, or a part of one, as a Go
// expression: zero fields are left out, byte strings are quoted, enums
// named, and txn ops written with op().
func goValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "nil"
		}
		if o, ok := v.Interface().(*pb.RequestOp); ok {
			inner := requestOf(o)
			if inner == nil {
				return "op(nil)"
			}
			return "op(" + goValue(reflect.ValueOf(inner)) + ")"
		}
		return "&" + goValue(v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return "nil"
		}
		return goValue(v.Elem())
	case reflect.Struct:
		var fields []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || strings.HasPrefix(f.Name, "XXX_") || v.Field(i).IsZero() {
				continue
			}
			fields = append(fields, f.Name+": "+goValue(v.Field(i)))
		}
		return goType(v.Type()) + "{" + strings.Join(fields, ", ") + "}"
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "[]byte(" + strconv.Quote(string(v.Bytes())) + ")"
		}
		elems := make([]string, v.Len())
		for i := range elems {
			elems[i] = goValue(v.Index(i))
		}
		return goType(v.Type()) + "{" + strings.Join(elems, ", ") + "}"
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int32:
		if s, ok := v.Interface().(fmt.Stringer); ok {
			name := s.String()
			typ := goType(v.Type())
			if _, err := strconv.Atoi(name); err == nil {
				return fmt.Sprintf("%s(%s)", typ, name)
			}
			return typ[:strings.LastIndex(typ, "_")+1] + name
		}
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	default:
		return fmt.Sprintf("%#v", v.Interface())
	}
}

func goType(t reflect.Type) string { return strings.ReplaceAll(t.String(), "etcdserverpb.", "pb.") }

// TestGoSteps checks that a sequence prints as the Go code that builds it.
func TestGoSteps(t *testing.T) {
	steps := []any{
		&pb.PutRequest{Key: []byte("a\x00\xff"), Value: []byte("v"), PrevKv: true, Lease: 3},
		txn(cmps(cmpValue("a", gt, "v1"), over(cmpLease("b", ne, 2), "c")),
			ops(&pb.RangeRequest{Key: []byte("a"), SortOrder: pb.RangeRequest_DESCEND, SortTarget: 7}, txn(nil, nil, ops(del("x"))), nil), nil),
		watchOpen{stream: 1, req: &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 3, Filters: []pb.WatchCreateRequest_FilterType{noPut}}},
		watchCancel{stream: 1, id: -1},
		&pb.CompactionRequest{Revision: 4, Physical: true},
	}
	want := `[]any{
	&pb.PutRequest{Key: []byte("a\x00\xff"), Value: []byte("v"), Lease: 3, PrevKv: true},
	&pb.TxnRequest{Compare: []*pb.Compare{&pb.Compare{Result: pb.Compare_GREATER, Target: pb.Compare_VALUE, Key: []byte("a"), TargetUnion: &pb.Compare_Value{Value: []byte("v1")}}, &pb.Compare{Result: pb.Compare_NOT_EQUAL, Target: pb.Compare_LEASE, Key: []byte("b"), TargetUnion: &pb.Compare_Lease{Lease: 2}, RangeEnd: []byte("c")}}, Success: []*pb.RequestOp{op(&pb.RangeRequest{Key: []byte("a"), SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_SortTarget(7)}), op(&pb.TxnRequest{Failure: []*pb.RequestOp{op(&pb.DeleteRangeRequest{Key: []byte("x")})}}), op(nil)}},
	watchOpen{stream: 1, req: &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 3, Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}}},
	watchCancel{stream: 1, id: -1},
	&pb.CompactionRequest{Revision: 4, Physical: true},
}`
	if got := goSteps(steps); got != want {
		t.Errorf("goSteps: got\n%s\nwant\n%s", got, want)
	}
}
