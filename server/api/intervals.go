package api

import (
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// interval is [begin, end) over keys, where an empty string is +infinity
// (etcd's adt "string affine" intervals).
type interval struct{ begin, end string }

func point(k string) interval { return interval{k, k + "\x00"} }

// affineCompare orders strings with the empty string as +infinity.
func affineCompare(a, b string) int {
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	return strings.Compare(a, b)
}

func (iv interval) intersects(o interval) bool {
	return affineCompare(iv.begin, o.end) < 0 && affineCompare(o.begin, iv.end) < 0
}

type intervalSet []interval

func (s intervalSet) intersects(o interval) bool {
	for _, iv := range s {
		if iv.intersects(o) {
			return true
		}
	}
	return false
}

// checkIntervals refuses a txn branch that modifies a key twice: two puts of
// one key, or a put inside a range deleted on the same or an enclosing
// level (the then and else branches of a nested txn may overlap, as only
// one runs). It returns the branch's puts and deletes, as etcd's v3rpc
// checkIntervals, whose rules (and quirks: a delete to the end of the
// keyspace, range_end "\x00", never conflicts) it keeps.
func checkIntervals(ops []*pb.RequestOp) (map[string]struct{}, intervalSet, error) {
	var dels intervalSet
	for _, op := range ops {
		d := op.GetRequestDeleteRange()
		if d == nil {
			continue
		}
		if len(d.RangeEnd) != 0 {
			dels = append(dels, interval{string(d.Key), string(d.RangeEnd)})
		} else {
			dels = append(dels, point(string(d.Key)))
		}
	}
	puts := make(map[string]struct{})
	everything := interval{"\x00", ""}
	for _, op := range ops {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.Success)
		if err != nil {
			return nil, dels, err
		}
		putsElse, delsElse, err := checkIntervals(t.Failure)
		if err != nil {
			return nil, dels, err
		}
		for k := range putsThen {
			if _, dup := puts[k]; dup || dels.intersects(point(k)) {
				return nil, dels, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, dup := puts[k]; dup {
				if _, inThen := putsThen[k]; !inThen {
					return nil, dels, rpctypes.ErrGRPCDuplicateKey
				}
			}
			if dels.intersects(point(k)) {
				return nil, dels, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for _, iv := range append(delsThen, delsElse...) {
			if iv.intersects(everything) {
				dels = append(dels, iv)
			}
		}
	}
	for _, op := range ops {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.Key)
		if _, dup := puts[k]; dup || dels.intersects(point(k)) {
			return nil, dels, rpctypes.ErrGRPCDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
