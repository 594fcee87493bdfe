package mvcc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/cairn-kv/cairn/storage"
)

// TestDataDriven runs the transcripts in testdata/transcripts. Commands:
//
//	put key=K value=V [lease=N]        one write txn with one put; prints the revision
//	del key=K [end=E|end=\0]           one write txn; prints deleted keys and the revision
//	txn                                one write txn; input lines "put K V" or "del K [E]"
//	get key=K [end=E] [rev=N] [limit=N] [count] [keys-only]
//	scan key=K [end=E] [rev=N] [reverse] [stop=N]   Scan; stop=N stops after N keys
//	compact rev=N                      compacts in its own batch
//	wait-compacted rev=N               waits for physical compaction
//	raw-versions                       lists the stored versions ('k' keyspace)
//	restart                            closes and reopens the store on the same dir
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/transcripts", func(t *testing.T, path string) {
		h := newHarness(t)
		defer h.close()
		datadriven.RunTest(t, path, h.run)
	})
}

// argT is the test the current directive runs in, for ScanArgs failures.
var argT *testing.T

type harness struct {
	t   *testing.T
	dir string
	eng *storage.Engine
	s   *Store
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir()}
	h.open()
	return h
}

func (h *harness) open() {
	eng, err := storage.Open(h.dir, storage.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	s, err := Open(eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		h.t.Fatal(err)
	}
	h.eng, h.s = eng, s
}

func (h *harness) close() {
	h.s.Close()
	h.eng.Close()
}

func argBytes(d *datadriven.TestData, name string) []byte {
	if !d.HasArg(name) {
		return nil
	}
	var s string
	d.ScanArgs(argT, name, &s)
	if s == `\0` {
		return []byte{0}
	}
	return []byte(s)
}

func argInt(d *datadriven.TestData, name string) int64 {
	var v int
	if d.HasArg(name) {
		d.ScanArgs(argT, name, &v)
	}
	return int64(v)
}

func (h *harness) write(fn func(tw *TxnWrite) error) string {
	wb := h.s.NewBatch()
	tw := wb.Write()
	if err := fn(tw); err != nil {
		wb.Abort()
		return "error: " + err.Error()
	}
	tw.End()
	if err := h.s.Commit(wb); err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, ev := range wb.Events {
		fmt.Fprintf(&b, "event %s %s mod=%d\n", ev.Type, ev.Kv.Key, ev.Kv.ModRevision)
	}
	fmt.Fprintf(&b, "rev=%d\n", h.s.Rev())
	return b.String()
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	argT = t
	ctx := context.Background()
	switch d.Cmd {
	case "put":
		return h.write(func(tw *TxnWrite) error {
			_, _, err := tw.Put(argBytes(d, "key"), argBytes(d, "value"), argInt(d, "lease"))
			return err
		})
	case "del":
		return h.write(func(tw *TxnWrite) error {
			_, _, err := tw.DeleteRange(ctx, argBytes(d, "key"), endArg(d))
			return err
		})
	case "txn":
		return h.write(func(tw *TxnWrite) error {
			for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
				f := strings.Fields(line)
				switch {
				case len(f) == 3 && f[0] == "put":
					if _, _, err := tw.Put([]byte(f[1]), []byte(f[2]), 0); err != nil {
						return err
					}
				case len(f) >= 2 && f[0] == "del":
					var end []byte
					if len(f) == 3 {
						end = []byte(f[2])
					}
					if _, _, err := tw.DeleteRange(ctx, []byte(f[1]), end); err != nil {
						return err
					}
				default:
					return fmt.Errorf("bad txn line %q", line)
				}
			}
			return nil
		})
	case "get":
		rt := h.s.Read()
		defer rt.End()
		rr, err := rt.Range(ctx, argBytes(d, "key"), endArg(d), RangeOptions{Rev: argInt(d, "rev"), Limit: argInt(d, "limit"), Count: d.HasArg("count"), KeysOnly: d.HasArg("keys-only")})
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		var b strings.Builder
		for _, kv := range rr.KVs {
			fmt.Fprintf(&b, "%s=%s create=%d mod=%d ver=%d lease=%d\n", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
		}
		fmt.Fprintf(&b, "count=%d rev=%d\n", rr.Count, rr.Rev)
		return b.String()
	case "scan":
		rt := h.s.Read()
		defer rt.End()
		var b strings.Builder
		stop := argInt(d, "stop")
		n := int64(0)
		rev, err := rt.Scan(ctx, argBytes(d, "key"), endArg(d), ScanOptions{Rev: argInt(d, "rev"), Reverse: d.HasArg("reverse")}, func(kv *KeyValueRef) bool {
			fmt.Fprintf(&b, "%s=%s create=%d mod=%d ver=%d lease=%d\n", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
			n++
			return stop == 0 || n < stop
		})
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		fmt.Fprintf(&b, "rev=%d\n", rev)
		return b.String()
	case "compact":
		wb := h.s.NewBatch()
		if err := wb.Compact(argInt(d, "rev")); err != nil {
			wb.Abort()
			return "error: " + err.Error() + "\n"
		}
		if err := h.s.Commit(wb); err != nil {
			return "error: " + err.Error() + "\n"
		}
		return fmt.Sprintf("compacted=%d\n", h.s.CompactRev())
	case "wait-compacted":
		if err := h.s.WaitCompacted(ctx, argInt(d, "rev")); err != nil {
			return "error: " + err.Error() + "\n"
		}
		return "ok\n"
	case "raw-versions":
		return h.rawVersions()
	case "restart":
		h.close()
		h.open()
		return fmt.Sprintf("rev=%d compacted=%d\n", h.s.Rev(), h.s.CompactRev())
	}
	t.Fatalf("unknown command %q", d.Cmd)
	return ""
}

func endArg(d *datadriven.TestData) []byte {
	if !d.HasArg("end") {
		return nil
	}
	e := argBytes(d, "end")
	if len(e) == 1 && e[0] == 0 {
		return []byte{} // to the end of the keyspace
	}
	return e
}

func (h *harness) rawVersions() string {
	it, err := h.eng.DB.NewIter(nil)
	if err != nil {
		return err.Error()
	}
	defer it.Close()
	var b strings.Builder
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) == 0 || k[0] != storage.KeyspaceVersions {
			continue
		}
		key, rev, sub, err := decodeVersionKey(k)
		if err != nil {
			return err.Error()
		}
		rec, err := decodeRecord(it.Value())
		if err != nil {
			return err.Error()
		}
		if rec.tombstone {
			fmt.Fprintf(&b, "%s@%d.%d tombstone\n", key, rev, sub)
		} else {
			fmt.Fprintf(&b, "%s@%d.%d %s ver=%d\n", key, rev, sub, rec.value, rec.version)
		}
	}
	if b.Len() == 0 {
		return "none\n"
	}
	return b.String()
}
