package authtoken

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"time"
)

// Errors of New, with etcd's messages (server/auth/store.go).
var (
	// ErrInvalidAuthOpts: the --auth-token spec is malformed, names an
	// unknown type, or a jwt option is bad (ttl, key file, sign-method).
	ErrInvalidAuthOpts = errors.New("auth: invalid auth options")
	// ErrInvalidAuthMethod: jwt sign-method is missing or unknown. New
	// reports it as ErrInvalidAuthOpts, as etcd does; it is exported for
	// callers that parse options themselves.
	ErrInvalidAuthMethod = errors.New("auth: invalid auth signature method")
	// ErrMissingKey: jwt needs priv-key (HMAC) or priv-key/pub-key.
	ErrMissingKey = errors.New("auth: missing key data")
	// ErrKeyMismatch: jwt pub-key is not priv-key's public half.
	ErrKeyMismatch = errors.New("auth: public and private keys don't match")
)

// Errors of Assign.
var (
	// ErrVerifyOnly: a jwt provider configured with a public key only
	// cannot sign tokens.
	ErrVerifyOnly = errors.New("auth: token signing attempted with verify-only key")
	// ErrAuthFailed: the provider of spec "" assigns no token. It carries
	// etcd's message of auth.ErrAuthFailed; the auth layer maps it to
	// rpctypes.ErrAuthFailed.
	ErrAuthFailed = errors.New("auth: authentication failed, invalid user ID or password")
	// ErrTokenInUse: a simple token with this prefix and index is already
	// assigned (etcd panics here; it means a Raft entry was applied twice
	// or a prefix repeated).
	ErrTokenInUse = errors.New("auth: failed to assign already-used simple token")
)

// Defaults, as etcd.
const (
	// DefaultSimpleTTL is the simple token TTL when New's simpleTTL is <= 0
	// (etcd's --auth-token-ttl default, 300 s).
	DefaultSimpleTTL = 300 * time.Second
	// DefaultJWTTTL is the jwt ttl when the spec has none (etcd's
	// auth.DefaultTTL).
	DefaultJWTTTL = 5 * time.Minute
	// SimpleTokenPrefixLength is the number of letters GenTokenPrefix
	// returns for simple tokens.
	SimpleTokenPrefixLength = 16
)

// Token types, the first word of the --auth-token spec.
const (
	TypeSimple = "simple"
	TypeJWT    = "jwt"
	TypeNone   = ""
)

// AuthInfo is who a token belongs to: the user name and the auth revision
// the token stands for (etcd's auth.AuthInfo).
type AuthInfo struct {
	Username string
	Revision uint64
}

// Provider issues and resolves tokens; the contract is in the package
// doc. It is etcd's auth.TokenProvider with exported methods, and with
// Assign taking the simple-token prefix and Raft index as arguments
// instead of context values.
type Provider interface {
	// Type is TypeSimple, TypeJWT or TypeNone.
	Type() string
	// Enable starts remembering simple tokens; idempotent.
	Enable()
	// Disable forgets every simple token; idempotent.
	Disable()
	// GenTokenPrefix returns the random prefix the receiving member puts
	// in the Authenticate proposal: 16 letters for simple, "" otherwise.
	GenTokenPrefix() (string, error)
	// Assign returns the token of user at auth revision authRevision, for
	// the Authenticate entry at Raft index index whose proposal carried
	// prefix. Errors: ErrVerifyOnly, ErrAuthFailed (type none),
	// ErrTokenInUse, or a signing error.
	Assign(user string, authRevision uint64, prefix string, index uint64) (string, error)
	// Info resolves token; ok is false for an unknown, expired, malformed
	// or badly signed token, or when ctx ends while waiting for the
	// token's index to be applied. authRevision is the current auth
	// revision, reported for simple tokens.
	Info(ctx context.Context, token string, authRevision uint64) (info AuthInfo, ok bool)
	// InvalidateUser drops user's simple tokens.
	InvalidateUser(user string)
}

// Option configures New.
type Option func(*options)

type options struct {
	now         func() time.Time
	indexWaiter func(ctx context.Context, index uint64) bool
}

// WithClock sets the clock simple-token expiry and jwt exp use (default
// time.Now). Tests pass a fake one.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithIndexWaiter sets how a simple-token Info waits until this member
// has applied the token's Raft index: wait returns true once the index is
// applied, false if ctx ends first (etcd's indexWaiter on applyWait). A
// pkg/wait.Index fits as
//
//	func(ctx context.Context, i uint64) bool { return idx.Wait(ctx.Done(), i) }
//
// Without it Info does not wait: a token whose entry is not applied yet
// is unknown.
func WithIndexWaiter(wait func(ctx context.Context, index uint64) bool) Option {
	return func(o *options) { o.indexWaiter = wait }
}

// New returns the provider the --auth-token spec names, as etcd's
// auth.NewTokenProvider. simpleTTL is --auth-token-ttl (a value <= 0
// means DefaultSimpleTTL, applied at Enable as etcd). lg may be nil.
// Errors: see the package doc.
func New(spec string, simpleTTL time.Duration, lg *slog.Logger, opts ...Option) (Provider, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	tokenType, typeOpts, err := decomposeOpts(lg, spec)
	if err != nil {
		return nil, ErrInvalidAuthOpts
	}
	switch tokenType {
	case TypeSimple:
		lg.Warn("simple token is not cryptographically signed")
		return newSimple(lg, simpleTTL, o), nil
	case TypeJWT:
		return newJWT(lg, typeOpts, o)
	case TypeNone:
		return nop{}, nil
	default:
		lg.Warn("unknown token type", "type", tokenType, "error", ErrInvalidAuthOpts)
		return nil, ErrInvalidAuthOpts
	}
}

// decomposeOpts splits "type,k=v,k=v" as etcd's decomposeOpts: every item
// after the type must split on "=" into exactly two parts, and no name may
// repeat. Values may be empty.
func decomposeOpts(lg *slog.Logger, spec string) (string, map[string]string, error) {
	items := strings.Split(spec, ",")
	tokenType := items[0]
	m := make(map[string]string)
	for _, item := range items[1:] {
		pair := strings.Split(item, "=")
		if len(pair) != 2 {
			lg.Error("invalid token option", "option", spec)
			return "", nil, ErrInvalidAuthOpts
		}
		if _, dup := m[pair[0]]; dup {
			lg.Error("invalid token option", "option", spec, "duplicate-parameter", pair[0])
			return "", nil, ErrInvalidAuthOpts
		}
		m[pair[0]] = pair[1]
	}
	return tokenType, m, nil
}

// Fingerprint is what logs show instead of a token: the first 12 hex
// digits of its SHA-256 (etcd's redactToken).
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])[:12]
}

// nop is the provider of spec "": no token is ever valid.
type nop struct{}

func (nop) Type() string                    { return TypeNone }
func (nop) Enable()                         {}
func (nop) Disable()                        {}
func (nop) GenTokenPrefix() (string, error) { return "", nil }
func (nop) InvalidateUser(string)           {}
func (nop) Info(context.Context, string, uint64) (AuthInfo, bool) {
	return AuthInfo{}, false
}
func (nop) Assign(string, uint64, string, uint64) (string, error) { return "", ErrAuthFailed }
