package cairntest

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-kv/cairn/bench"
)

// TestBenchUser: `cairn bench --user name:password` authenticates every
// connection; without it the puts are refused.
func TestBenchUser(t *testing.T) {
	s := Start(t, WithAuth("rootpw"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(user string) *bench.Result {
		cfg := bench.Config{Endpoints: s.Endpoints(), Command: "put", Total: 50, Conns: 2, Clients: 4, User: user}
		cfg.EnsureDefaults()
		res, err := bench.Run(ctx, cfg, nil)
		if err != nil {
			t.Fatalf("bench as %q: %v", user, err)
		}
		return res
	}
	if res := run("root:rootpw"); res.Errors != 0 {
		t.Errorf("as root: %d errors", res.Errors)
	}
	if res := run(""); res.Errors == 0 {
		t.Errorf("without a user: no errors")
	}
}
