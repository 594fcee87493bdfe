// Package authtoken issues and resolves the auth tokens a client sends in
// the "token" gRPC metadata, with etcd 3.7's semantics
// (server/auth/simple_token.go, jwt.go, options.go).
//
// It knows nothing about users, roles or revisions beyond what it is
// handed: the auth state machine decides who may authenticate, and asks a
// Provider for the token.
//
// # Choosing a provider
//
// New parses the --auth-token flag exactly as etcd's NewTokenProvider:
//
//	simple                                  simple tokens (the default)
//	jwt,sign-method=RS256,priv-key=F,pub-key=F,ttl=5m
//	                                        signed JWTs
//	""                                      no tokens: Assign fails
//
// The first comma-separated word is the type; every further item must be
// exactly one "name=value" (a second "=" or a repeated name is
// ErrInvalidAuthOpts). For jwt, sign-method is required and is any method
// golang-jwt/jwt/v5 knows (HS256/384/512, RS256/384/512, PS256/384/512,
// ES256/384/512, EdDSA); ttl is a Go duration (default 5m, "ttl=0s" is
// kept as zero as etcd does); priv-key and pub-key are PEM files. HMAC
// methods use priv-key's raw bytes as the secret. With only pub-key the
// provider verifies tokens and Assign returns ErrVerifyOnly (a member
// that cannot sign). Unknown jwt options are logged and ignored.
// Errors: ErrInvalidAuthOpts for a bad spec, a bad ttl, an unreadable
// file or an unknown sign-method; ErrMissingKey, ErrKeyMismatch, a
// golang-jwt PEM error (e.g. jwt.ErrNotRSAPrivateKey), or "unsupported
// signing method: %T" from the keys — the same values etcd returns.
//
// # The contract (mirrors etcd's TokenProvider)
//
//   - Enable / Disable: called when auth is switched on or off (and Disable
//     on shutdown). Disable forgets every simple token. Both idempotent.
//   - GenTokenPrefix: called by the member that receives an Authenticate
//     request, before proposing it. Simple: 16 random ASCII letters; the
//     prefix travels in the Raft entry (InternalAuthenticateRequest's
//     simple_token). JWT and none: "".
//   - Assign(user, authRevision, prefix, index): called at apply, on every
//     member, for the committed Authenticate entry at Raft index `index`.
//     Simple: the token is "<prefix>.<index>", identical on every member,
//     registered with the simple TTL (only while enabled; while disabled
//     the token is returned but not remembered, as etcd). JWT: a token
//     signed now with claims {"username", "revision": authRevision,
//     "exp": now+ttl (Unix seconds)}; prefix and index are ignored.
//   - Info(ctx, token, authRevision): resolves a token on any member.
//     Simple: the token must be "<x>.<uint>"; Info first waits (ctx-bounded,
//     through WithIndexWaiter) until this member has applied that index,
//     so a token issued by another member is known here; a known,
//     unexpired token is refreshed to now+TTL and Info returns the user
//     with Revision = authRevision (simple tokens never go stale; the
//     caller's stale check passes). An expired token is deleted. JWT:
//     signature (with the configured method only) and exp are checked;
//     Revision is the token's "revision" claim, which the caller compares
//     with the current auth revision (etcd's ErrAuthOldRevision).
//   - InvalidateUser(user): drops the user's simple tokens (user deleted or
//     password changed). No-op for JWT, as etcd.
//
// Simple tokens live in memory only, per member, as in etcd: a restart
// forgets them. Expiry is lazy (checked against the injected clock on
// Info, and expired tokens are swept at most once a second on Assign), so
// the package runs no goroutine and needs no Close; memory is bounded by
// the tokens assigned within one TTL.
//
// All methods are safe for concurrent use.
package authtoken
