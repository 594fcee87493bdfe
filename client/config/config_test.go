package config_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-kv/cairn/client"
	"github.com/cairn-kv/cairn/client/cairntest"
	"github.com/cairn-kv/cairn/client/config"
)

type appConfig struct {
	Greeting string            `json:"greeting"`
	Workers  int               `json:"workers"`
	Limits   map[string]int    `json:"limits,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

func (c *appConfig) Validate() error {
	if c.Workers < 1 || c.Workers > 64 {
		return fmt.Errorf("workers must be between 1 and 64, not %d", c.Workers)
	}
	return nil
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// callbacks records a binding's callbacks as lines.
type callbacks struct{ ch chan string }

func newLog() *callbacks { return &callbacks{ch: make(chan string, 100)} }

func options(l *callbacks) config.Options[appConfig] {
	return config.Options[appConfig]{
		OnChange: func(old, new appConfig, rev int64) {
			l.ch <- fmt.Sprintf("change@%d %s/%d -> %s/%d", rev, old.Greeting, old.Workers, new.Greeting, new.Workers)
		},
		OnReject: func(err error, rev int64) {
			if !errors.Is(err, config.ErrInvalid) {
				l.ch <- "reject without ErrInvalid: " + err.Error()
				return
			}
			l.ch <- fmt.Sprintf("reject@%d", rev)
		},
	}
}

func (l *callbacks) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-l.ch:
			if got != w {
				t.Fatalf("callback %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no callback, want %q", w)
		}
	}
}

func TestBindHotReloadAndRejects(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)
	const key = "/app/config.json"
	rev, _ := c.Put(ctx, key, `{"greeting":"hello","workers":2}`) // 2

	l := newLog()
	opts := options(l)
	opts.Validate = func(c appConfig) error {
		if strings.TrimSpace(c.Greeting) == "" {
			return errors.New("greeting is empty")
		}
		return nil
	}
	b, err := config.Bind(ctx, c, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.Current(); got.Greeting != "hello" || got.Workers != 2 || b.Revision() != rev {
		t.Fatalf("Current() = %+v at %d, want hello/2 at %d", got, b.Revision(), rev)
	}

	c.Put(ctx, key, `{"greeting":"bonjour","workers":4}`) // 3
	l.expect(t, "change@3 hello/2 -> bonjour/4")
	c.Put(ctx, key, `{"greeting":"hola",`)               // 4: not JSON
	c.Put(ctx, key, `{"greeting":"hola","workers":100}`) // 5: fails appConfig.Validate
	c.Put(ctx, key, `{"greeting":" ","workers":1}`)      // 6: fails Options.Validate
	c.Put(ctx, key, `{"greeting":"hi","workers":1} {}`)  // 7: trailing data
	l.expect(t, "reject@4", "reject@5", "reject@6", "reject@7")
	if got := b.Current(); got.Greeting != "bonjour" || got.Workers != 4 || b.Revision() != 3 {
		t.Fatalf("after rejected updates Current() = %+v at %d, want the last good bonjour/4 at 3", got, b.Revision())
	}
	if err := b.Rejected(); err == nil || !strings.Contains(err.Error(), "trailing") && !strings.Contains(err.Error(), "after the value") {
		t.Fatalf("Rejected() = %v, want the last rejection", err)
	}
	c.Delete(ctx, key) // 8: absent, and no Default
	l.expect(t, "reject@8")
	if !errors.Is(b.Rejected(), client.ErrNotFound) {
		t.Fatalf("Rejected() after delete = %v, want ErrNotFound", b.Rejected())
	}

	c.Put(ctx, key, `{"greeting":"ciao","workers":8}`) // 9
	l.expect(t, "change@9 bonjour/4 -> ciao/8")
	if b.Rejected() != nil {
		t.Fatalf("Rejected() after a good update = %v", b.Rejected())
	}
	// Revision is the key's ModRevision: good for a compare-and-swap.
	ok, _, err := c.CompareAndSwap(ctx, key, b.Revision(), `{"greeting":"ciao","workers":9}`)
	if err != nil || !ok {
		t.Fatalf("CompareAndSwap at Revision(): %v, %v", ok, err)
	}
	l.expect(t, "change@10 ciao/8 -> ciao/9")
}

func TestBindInitialValue(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)

	_, err := config.Bind(ctx, c, "/missing", config.Options[appConfig]{})
	if !errors.Is(err, config.ErrInvalid) || !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Bind(missing) error = %v, want ErrInvalid and ErrNotFound", err)
	}
	c.Put(ctx, "/bad", `{"workers":0}`)
	if _, err := config.Bind(ctx, c, "/bad", config.Options[appConfig]{}); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Bind(invalid) error = %v, want ErrInvalid", err)
	}
	c.Put(ctx, "/strict", `{"greeting":"x","workers":1,"wrokers":2}`)
	if _, err := config.Bind(ctx, c, "/strict", config.Options[appConfig]{Strict: true}); err == nil || !strings.Contains(err.Error(), "wrokers") {
		t.Fatalf("strict Bind with an unknown field: error = %v", err)
	}

	// With a Default, absence is fine and values are decoded onto it.
	l := newLog()
	opts := options(l)
	opts.Default = &appConfig{Greeting: "default", Workers: 1, Limits: map[string]int{"rps": 10}}
	b, err := config.Bind(ctx, c, "/app.json", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.Current(); got.Greeting != "default" || b.Revision() != 0 {
		t.Fatalf("Current() = %+v at %d, want the default at 0", got, b.Revision())
	}
	rev, _ := c.Put(ctx, "/app.json", `{"workers":3,"limits":{"burst":5}}`)
	l.expect(t, fmt.Sprintf("change@%d default/1 -> default/3", rev))
	if got := b.Current(); got.Limits["rps"] != 10 || got.Limits["burst"] != 5 {
		t.Fatalf("limits = %v, want the default's rps merged with burst", got.Limits)
	}
	if opts.Default.Limits["burst"] != 0 {
		t.Fatal("decoding modified Options.Default")
	}
	c.Delete(ctx, "/app.json")
	l.expect(t, "change@0 default/3 -> default/1")
}

func TestBindYAMLAndPrefix(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := cairntest.Start(t).Client(t)

	c.Put(ctx, "/y/app.yaml", "greeting: hej\nworkers: 2\nlabels:\n  team: core\n")
	yb, err := config.Bind(ctx, c, "/y/app.yaml", config.Options[appConfig]{})
	if err != nil {
		t.Fatal(err)
	}
	defer yb.Close()
	if got := yb.Current(); got.Greeting != "hej" || got.Workers != 2 || got.Labels["team"] != "core" {
		t.Fatalf("YAML Current() = %+v", got)
	}

	c.Put(ctx, "/p/00-base.yaml", "greeting: base\nworkers: 1\nlabels: {team: core, tier: web}\n")
	c.Put(ctx, "/p/50-prod.json", `{"workers":6,"labels":{"tier":"api"}}`)
	l := newLog()
	b, err := config.BindPrefix(ctx, c, "/p/", options(l))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := b.Current()
	if got.Greeting != "base" || got.Workers != 6 || got.Labels["team"] != "core" || got.Labels["tier"] != "api" {
		t.Fatalf("merged Current() = %+v", got)
	}
	// One Txn changing both keys is one update, never a half-applied one
	// (workers 0 alone would be rejected).
	resp, err := c.Etcd().Txn(ctx).Then(
		clientv3.OpPut("/p/00-base.yaml", "greeting: new\nworkers: 0\n"),
		clientv3.OpPut("/p/50-prod.json", `{"workers":7}`),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
	l.expect(t, fmt.Sprintf("change@%d base/6 -> new/7", resp.Header.Revision))
	c.Put(ctx, "/p/60-broken.yaml", "workers: [")
	l.expect(t, fmt.Sprintf("reject@%d", resp.Header.Revision+1))
	c.Delete(ctx, "/p/60-broken.yaml")
	rev, _ := c.Put(ctx, "/p/70-more.json", `{"greeting":"last"}`)
	l.expect(t, fmt.Sprintf("change@%d new/7 -> new/7", rev-1), fmt.Sprintf("change@%d new/7 -> last/7", rev))
	if b.Revision() != rev {
		t.Fatalf("Revision() = %d, want %d", b.Revision(), rev)
	}
}
