package authtoken

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestSimple(t *testing.T, ttl time.Duration, opts ...Option) (Provider, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	p, err := New("simple", ttl, discard(), append([]Option{WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p, clk
}

func TestSimpleAssignInfo(t *testing.T) {
	ctx := t.Context()
	p, _ := newTestSimple(t, time.Minute)
	p.Enable()
	p.Enable() // idempotent
	tok, err := p.Assign("alice", 3, "abcdefghijklmnop", 42)
	if err != nil {
		t.Fatal(err)
	}
	if want := "abcdefghijklmnop.42"; tok != want {
		t.Fatalf("Assign = %q, want %q", tok, want)
	}
	// The revision reported is the caller's current one, not the one at
	// Assign: simple tokens never go stale (etcd).
	info, ok := p.Info(ctx, tok, 9)
	if !ok || info != (AuthInfo{Username: "alice", Revision: 9}) {
		t.Fatalf("Info = %+v, %v; want alice at 9", info, ok)
	}
	if _, err := p.Assign("bob", 3, "abcdefghijklmnop", 42); !errors.Is(err, ErrTokenInUse) {
		t.Fatalf("second Assign of the same token: error = %v, want %v", err, ErrTokenInUse)
	}
	if info, _ := p.Info(ctx, tok, 9); info.Username != "alice" {
		t.Fatalf("token owner changed to %q", info.Username)
	}
}

func TestSimpleInfoRejects(t *testing.T) {
	ctx := t.Context()
	p, _ := newTestSimple(t, time.Minute)
	p.Enable()
	if _, err := p.Assign("alice", 1, "abcdefghijklmnop", 42); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{
		"", ".", "abcdefghijklmnop", "abcdefghijklmnop.", "abcdefghijklmnop.x",
		"abcdefghijklmnop.-42", "abcdefghijklmnop.42.1", "a.b.c",
		"abcdefghijklmnop.18446744073709551616", // overflows uint64
		"abcdefghijklmnop.43", "bbcdefghijklmnop.42", " abcdefghijklmnop.42",
		"abcdefghijklmnop.042", // parses as 42 but is another token
	} {
		if info, ok := p.Info(ctx, tok, 1); ok {
			t.Errorf("Info(%q) = %+v, true; want false", tok, info)
		}
	}
}

func TestSimpleTTL(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration // effective TTL
	}{
		{"given", 10 * time.Second, 10 * time.Second},
		{"zero is the default", 0, DefaultSimpleTTL},
		{"negative is the default", -time.Second, DefaultSimpleTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, clk := newTestSimple(t, tt.ttl)
			p.Enable()
			tok, err := p.Assign("alice", 1, "abcdefghijklmnop", 1)
			if err != nil {
				t.Fatal(err)
			}
			// Use at the edge refreshes the TTL, three times over.
			for i := 0; i < 3; i++ {
				clk.Advance(tt.want)
				if _, ok := p.Info(ctx, tok, 1); !ok {
					t.Fatalf("use %d at exactly TTL after the last: token gone", i)
				}
			}
			clk.Advance(tt.want + time.Nanosecond)
			if _, ok := p.Info(ctx, tok, 1); ok {
				t.Fatal("token still valid after TTL without use")
			}
			// Expired means deleted: time going back does not revive it.
			clk.Advance(-tt.want)
			if _, ok := p.Info(ctx, tok, 1); ok {
				t.Fatal("expired token revived")
			}
			if n := tokenCount(p); n != 0 {
				t.Fatalf("%d tokens remembered after expiry, want 0", n)
			}
		})
	}
}

func tokenCount(p Provider) int {
	s := p.(*simple)
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.tokens)
}

// TestSimpleSweep: tokens nobody uses again are deleted by a later
// Assign once expired, so memory stays bounded by one TTL of logins.
func TestSimpleSweep(t *testing.T) {
	p, clk := newTestSimple(t, 10*time.Second)
	p.Enable()
	for i := uint64(1); i <= 100; i++ {
		if _, err := p.Assign("u", 1, "abcdefghijklmnop", i); err != nil {
			t.Fatal(err)
		}
	}
	if n := tokenCount(p); n != 100 {
		t.Fatalf("%d tokens, want 100", n)
	}
	clk.Advance(10*time.Second + time.Millisecond)
	if _, err := p.Assign("u", 1, "abcdefghijklmnop", 101); err != nil {
		t.Fatal(err)
	}
	if n := tokenCount(p); n != 1 {
		t.Fatalf("%d tokens after the sweep, want 1", n)
	}
}

// TestSimpleSweepInterval: sweeps happen at most once per sweepInterval;
// an expired token not swept yet is still refused.
func TestSimpleSweepInterval(t *testing.T) {
	p, clk := newTestSimple(t, 100*time.Millisecond)
	p.Enable()
	clk.Advance(sweepInterval)
	p.Assign("u", 1, "abcdefghijklmnop", 1) // sweeps (nothing) now
	clk.Advance(200 * time.Millisecond)
	p.Assign("u", 1, "abcdefghijklmnop", 2) // no sweep: .1 stays
	if n := tokenCount(p); n != 2 {
		t.Fatalf("%d tokens, want 2 (no sweep within %v)", n, sweepInterval)
	}
	if _, ok := p.Info(t.Context(), "abcdefghijklmnop.1", 1); ok {
		t.Fatal("expired, unswept token accepted")
	}
	clk.Advance(sweepInterval)
	p.Assign("u", 1, "abcdefghijklmnop", 3) // sweeps .2
	if n := tokenCount(p); n != 1 {
		t.Fatalf("%d tokens after the sweep, want 1", n)
	}
}

func TestSimpleEnableDisable(t *testing.T) {
	ctx := t.Context()
	p, _ := newTestSimple(t, time.Minute)
	// Disabled (as after New): the token is returned but not remembered.
	tok, err := p.Assign("alice", 1, "abcdefghijklmnop", 1)
	if err != nil || tok != "abcdefghijklmnop.1" {
		t.Fatalf("Assign while disabled = %q, %v", tok, err)
	}
	if _, ok := p.Info(ctx, tok, 1); ok {
		t.Fatal("token assigned while disabled is valid")
	}
	p.Enable()
	tok, _ = p.Assign("alice", 1, "abcdefghijklmnop", 2)
	if _, ok := p.Info(ctx, tok, 1); !ok {
		t.Fatal("token not valid while enabled")
	}
	p.Disable()
	p.Disable()
	if _, ok := p.Info(ctx, tok, 1); ok {
		t.Fatal("token valid after Disable")
	}
	p.Enable()
	if _, ok := p.Info(ctx, tok, 1); ok {
		t.Fatal("token valid again after Disable, Enable")
	}
}

func TestSimpleInvalidateUser(t *testing.T) {
	ctx := t.Context()
	p, _ := newTestSimple(t, time.Minute)
	p.Enable()
	a1, _ := p.Assign("alice", 1, "aaaaaaaaaaaaaaaa", 1)
	a2, _ := p.Assign("alice", 1, "bbbbbbbbbbbbbbbb", 2)
	b1, _ := p.Assign("bob", 1, "cccccccccccccccc", 3)
	p.InvalidateUser("alice")
	p.InvalidateUser("nobody")
	for _, tc := range []struct {
		tok  string
		want bool
	}{{a1, false}, {a2, false}, {b1, true}} {
		if _, ok := p.Info(ctx, tc.tok, 1); ok != tc.want {
			t.Errorf("Info(%q) ok = %v, want %v", tc.tok, ok, tc.want)
		}
	}
}

// TestSimpleIndexWaiter: a token issued at an index this member has not
// applied yet is resolved once it is, or refused when the caller gives up.
func TestSimpleIndexWaiter(t *testing.T) {
	applied := make(chan struct{})
	var waitedFor uint64
	waiter := func(ctx context.Context, index uint64) bool {
		waitedFor = index
		select {
		case <-applied:
			return true
		case <-ctx.Done():
			return false
		}
	}
	p, _ := newTestSimple(t, time.Minute, WithIndexWaiter(waiter))
	p.Enable()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, ok := p.Info(ctx, "abcdefghijklmnop.7", 1); ok {
		t.Fatal("Info with a canceled context = true")
	}
	if waitedFor != 7 {
		t.Fatalf("waited for index %d, want 7", waitedFor)
	}

	type result struct {
		info AuthInfo
		ok   bool
	}
	done := make(chan result, 1)
	go func() {
		info, ok := p.Info(t.Context(), "abcdefghijklmnop.7", 1)
		done <- result{info, ok}
	}()
	if _, err := p.Assign("alice", 1, "abcdefghijklmnop", 7); err != nil {
		t.Fatal(err)
	}
	close(applied)
	if r := <-done; !r.ok || r.info.Username != "alice" {
		t.Fatalf("Info after apply = %+v, %v; want alice", r.info, r.ok)
	}
	// Malformed tokens do not wait.
	waitedFor = 0
	p.Info(t.Context(), "abcdefghijklmnop", 1)
	if waitedFor != 0 {
		t.Fatal("malformed token waited for an index")
	}
}

func TestGenTokenPrefix(t *testing.T) {
	p, _ := newTestSimple(t, 0)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		s, err := p.GenTokenPrefix()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != SimpleTokenPrefixLength {
			t.Fatalf("prefix %q has %d letters, want %d", s, len(s), SimpleTokenPrefixLength)
		}
		if strings.Trim(s, letters) != "" {
			t.Fatalf("prefix %q has characters outside [a-zA-Z]", s)
		}
		if seen[s] {
			t.Fatalf("prefix %q repeated", s)
		}
		seen[s] = true
	}
	for _, spec := range []string{"", "jwt,sign-method=HS256,priv-key=" + testKeys(t).hmac} {
		p, err := New(spec, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := p.GenTokenPrefix(); s != "" || err != nil {
			t.Errorf("%q: GenTokenPrefix = %q, %v; want empty", spec, s, err)
		}
	}
}

func TestNop(t *testing.T) {
	p, err := New("", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Enable()
	if _, err := p.Assign("root", 1, "", 1); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Assign error = %v, want %v", err, ErrAuthFailed)
	}
	if _, ok := p.Info(t.Context(), "anything.1", 1); ok {
		t.Fatal("Info = true")
	}
}

// TestSimpleConcurrent exercises the lock under the race detector.
func TestSimpleConcurrent(t *testing.T) {
	p, clk := newTestSimple(t, time.Second)
	p.Enable()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(1); i <= 500; i++ {
			p.Assign("u", 1, "abcdefghijklmnop", i)
			clk.Advance(10 * time.Millisecond)
			if i%100 == 0 {
				p.InvalidateUser("u")
			}
		}
	}()
	for i := uint64(1); i <= 500; i++ {
		p.Info(t.Context(), "abcdefghijklmnop."+strconv.FormatUint(i, 10), 1)
	}
	<-done
}
