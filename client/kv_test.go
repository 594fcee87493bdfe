package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestKV(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)

	rev1, err := c.Put(ctx, "/app/a", "1")
	if err != nil {
		t.Fatal(err)
	}
	rev2, err := c.Put(ctx, "/app/a", "2")
	if err != nil {
		t.Fatal(err)
	}
	if rev2 != rev1+1 {
		t.Fatalf("second put at revision %d, want %d", rev2, rev1+1)
	}
	got, err := c.Get(ctx, "/app/a")
	if err != nil {
		t.Fatal(err)
	}
	want := client.KeyValue{Key: "/app/a", Value: "2", CreateRevision: rev1, ModRevision: rev2, Version: 2}
	if got != want {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}
	if _, err := c.Get(ctx, "/app/missing"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get(missing) error = %v, want ErrNotFound", err)
	}
	for k, want := range map[string]bool{"/app/a": true, "/app/missing": false, "/app": false} {
		if ok, err := c.Exists(ctx, k); err != nil || ok != want {
			t.Fatalf("Exists(%q) = %v, %v; want %v", k, ok, err, want)
		}
	}

	for _, k := range []string{"/app/c", "/app/b", "/apple", "/app/d/e"} {
		if _, err := c.Put(ctx, k, "v"+k); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.GetPrefix(ctx, "/app/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range r.KVs {
		keys = append(keys, kv.Key)
	}
	if want := []string{"/app/a", "/app/b", "/app/c", "/app/d/e"}; !equal(keys, want) {
		t.Fatalf("GetPrefix keys = %q, want %q", keys, want)
	}
	if r.Revision != rev2+4 {
		t.Fatalf("GetPrefix revision = %d, want %d", r.Revision, rev2+4)
	}
	if m := r.Map(); len(m) != 4 || m["/app/b"].Value != "v/app/b" {
		t.Fatalf("Map() = %+v", m)
	}

	del, err := c.Delete(ctx, "/app/b")
	if err != nil || del.Deleted != 1 || del.Revision != r.Revision+1 {
		t.Fatalf("Delete = %+v, %v; want 1 deleted at %d", del, err, r.Revision+1)
	}
	if del, err := c.Delete(ctx, "/app/b"); err != nil || del.Deleted != 0 {
		t.Fatalf("second Delete = %+v, %v; want 0 deleted", del, err)
	}
	del, err = c.DeletePrefix(ctx, "/app/")
	if err != nil || del.Deleted != 3 {
		t.Fatalf("DeletePrefix = %+v, %v; want 3 deleted", del, err)
	}
	if ok, _ := c.Exists(ctx, "/apple"); !ok {
		t.Fatal("DeletePrefix(/app/) deleted /apple")
	}
	if _, err := c.DeletePrefix(ctx, ""); !errors.Is(err, client.ErrEmptyPrefix) {
		t.Fatalf("DeletePrefix(\"\") error = %v, want ErrEmptyPrefix", err)
	}
}

// GetPrefix pages through large ranges at one revision.
func TestGetPrefixPages(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	const n = 2500
	ops := make([]string, 0, n)
	for i := range n {
		ops = append(ops, keyN(i))
	}
	for _, k := range ops {
		if _, err := c.Put(ctx, k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.GetPrefix(ctx, "/many/")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.KVs) != n {
		t.Fatalf("GetPrefix returned %d keys, want %d", len(r.KVs), n)
	}
	for i, kv := range r.KVs {
		if kv.Key != ops[i] {
			t.Fatalf("key %d = %q, want %q", i, kv.Key, ops[i])
		}
	}
	all, err := c.GetPrefix(ctx, "")
	if err != nil || len(all.KVs) != n {
		t.Fatalf("GetPrefix(\"\") = %d keys, %v; want %d", len(all.KVs), err, n)
	}
}

func keyN(i int) string {
	const digits = "0123456789"
	b := []byte("/many/0000")
	for j := len(b) - 1; i > 0; j-- {
		b[j] = digits[i%10]
		i /= 10
	}
	return string(b)
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type settings struct {
	Name    string   `json:"name"`
	Workers int      `json:"workers"`
	Tags    []string `json:"tags,omitempty"`
}

func TestJSONAndCompareAndSwap(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)

	// 0 means "must not exist": the first CAS creates the key.
	ok, rev, err := client.CompareAndSwapJSON(ctx, c, "/cfg", 0, settings{Name: "a", Workers: 1})
	if err != nil || !ok {
		t.Fatalf("CAS create = %v, %d, %v; want ok", ok, rev, err)
	}
	created := rev
	// A second create loses and reports the current revision.
	if ok, cur, err := c.CompareAndSwap(ctx, "/cfg", 0, "x"); err != nil || ok || cur != created {
		t.Fatalf("CAS create again = %v, %d, %v; want false, %d", ok, cur, err, created)
	}

	v, kv, err := client.GetJSON[settings](ctx, c, "/cfg")
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "a" || v.Workers != 1 || kv.ModRevision != created {
		t.Fatalf("GetJSON = %+v at %d, want {a 1} at %d", v, kv.ModRevision, created)
	}

	// Two writers race from the same read: exactly one wins.
	v.Workers = 2
	ok1, rev1, err1 := client.CompareAndSwapJSON(ctx, c, "/cfg", kv.ModRevision, v)
	v.Workers = 3
	ok2, rev2, err2 := client.CompareAndSwapJSON(ctx, c, "/cfg", kv.ModRevision, v)
	if err1 != nil || err2 != nil || !ok1 || ok2 || rev2 != rev1 {
		t.Fatalf("racing CAS = (%v %d %v) (%v %d %v); want the first to win and the second to see its revision",
			ok1, rev1, err1, ok2, rev2, err2)
	}
	if v, _, _ := client.GetJSON[settings](ctx, c, "/cfg"); v.Workers != 2 {
		t.Fatalf("after racing CAS workers = %d, want 2", v.Workers)
	}

	if ok, cur, err := c.CompareAndDelete(ctx, "/cfg", created); err != nil || ok || cur != rev1 {
		t.Fatalf("stale CompareAndDelete = %v, %d, %v; want false, %d", ok, cur, err, rev1)
	}
	if ok, _, err := c.CompareAndDelete(ctx, "/cfg", rev1); err != nil || !ok {
		t.Fatalf("CompareAndDelete = %v, %v; want ok", ok, err)
	}
	if ok, cur, err := c.CompareAndSwap(ctx, "/cfg", rev1, "x"); err != nil || ok || cur != 0 {
		t.Fatalf("CAS on deleted key = %v, %d, %v; want false, 0", ok, cur, err)
	}

	if _, err := c.Put(ctx, "/bad", "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.GetJSON[settings](ctx, c, "/bad"); err == nil || errors.Is(err, client.ErrNotFound) {
		t.Fatalf("GetJSON(bad json) error = %v, want a decoding error", err)
	}
	if _, _, err := client.GetJSON[settings](ctx, c, "/nope"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("GetJSON(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := client.PutJSON(ctx, c, "/ch", make(chan int)); err == nil {
		t.Fatal("PutJSON(chan) succeeded")
	}
}
