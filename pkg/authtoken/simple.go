package authtoken

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"
)

// letters are the characters of a simple-token prefix (etcd's letters).
const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// sweepInterval is how often Assign sweeps expired simple tokens at most
// (etcd's simpleTokenTTLResolution, the period of its TTL keeper).
const sweepInterval = time.Second

// simple is etcd's tokenSimple: "<prefix>.<index>" tokens kept in memory
// with a TTL that every successful Info renews.
type simple struct {
	lg          *slog.Logger
	now         func() time.Time
	indexWaiter func(ctx context.Context, index uint64) bool
	ttl         time.Duration // as given; <= 0 means DefaultSimpleTTL

	mu struct {
		sync.Mutex
		enabled   bool
		tokens    map[string]simpleToken // token -> owner and expiry
		lastSweep time.Time
	}
}

type simpleToken struct {
	user    string
	expires time.Time
}

func newSimple(lg *slog.Logger, ttl time.Duration, o options) *simple {
	s := &simple{lg: lg, now: o.now, indexWaiter: o.indexWaiter, ttl: ttl}
	s.mu.tokens = make(map[string]simpleToken)
	return s
}

func (s *simple) Type() string { return TypeSimple }

func (s *simple) effectiveTTL() time.Duration {
	if s.ttl <= 0 {
		return DefaultSimpleTTL
	}
	return s.ttl
}

func (s *simple) Enable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.enabled {
		return
	}
	s.mu.enabled = true
	s.mu.lastSweep = s.now()
}

func (s *simple) Disable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.enabled = false
	s.mu.tokens = make(map[string]simpleToken) // invalidate all tokens
}

// GenTokenPrefix returns 16 letters drawn with crypto/rand, as etcd's
// genTokenPrefix.
func (s *simple) GenTokenPrefix() (string, error) {
	return genTokenPrefix()
}

func genTokenPrefix() (string, error) {
	ret := make([]byte, SimpleTokenPrefixLength)
	n := big.NewInt(int64(len(letters)))
	for i := range ret {
		b, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		ret[i] = letters[b.Int64()]
	}
	return string(ret), nil
}

// Assign returns "<prefix>.<index>"; authRevision is unused, as in etcd.
// While disabled the token is returned but not remembered (etcd).
func (s *simple) Assign(user string, _ uint64, prefix string, index uint64) (string, error) {
	token := fmt.Sprintf("%s.%d", prefix, index)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mu.enabled {
		return token, nil
	}
	now := s.now()
	s.sweepLocked(now)
	if _, used := s.mu.tokens[token]; used {
		s.lg.Error("failed to assign already-used simple token to a user",
			"user-name", user, "token-fingerprint", Fingerprint(token))
		return "", ErrTokenInUse
	}
	s.mu.tokens[token] = simpleToken{user: user, expires: now.Add(s.effectiveTTL())}
	return token, nil
}

// sweepLocked deletes expired tokens, at most once per sweepInterval.
func (s *simple) sweepLocked(now time.Time) {
	if now.Sub(s.mu.lastSweep) < sweepInterval {
		return
	}
	s.mu.lastSweep = now
	for tk, st := range s.mu.tokens {
		if now.After(st.expires) {
			s.lg.Debug("deleted a simple token", "user-name", st.user, "token-fingerprint", Fingerprint(tk))
			delete(s.mu.tokens, tk)
		}
	}
}

func (s *simple) Info(ctx context.Context, token string, authRevision uint64) (AuthInfo, bool) {
	index, ok := parseSimpleToken(token)
	if !ok {
		return AuthInfo{}, false
	}
	if s.indexWaiter != nil && !s.indexWaiter(ctx, index) {
		return AuthInfo{}, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.mu.tokens[token]
	if !ok {
		return AuthInfo{}, false
	}
	if now.After(st.expires) {
		s.lg.Debug("deleted a simple token", "user-name", st.user, "token-fingerprint", Fingerprint(token))
		delete(s.mu.tokens, token)
		return AuthInfo{}, false
	}
	st.expires = now.Add(s.effectiveTTL())
	s.mu.tokens[token] = st
	return AuthInfo{Username: st.user, Revision: authRevision}, true
}

// parseSimpleToken checks the shape etcd's isValidSimpleToken checks:
// exactly one ".", followed by a decimal uint64 (the Raft index).
func parseSimpleToken(token string) (uint64, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 2 {
		return 0, false
	}
	index, err := strconv.ParseUint(parts[1], 10, 0)
	if err != nil {
		return 0, false
	}
	return index, true
}

func (s *simple) InvalidateUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tk, st := range s.mu.tokens {
		if st.user == user {
			delete(s.mu.tokens, tk)
		}
	}
}
