package authtoken

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The jwt options of the --auth-token spec (etcd's options.go).
const (
	optSignMethod = "sign-method"
	optPublicKey  = "pub-key"
	optPrivateKey = "priv-key"
	optTTL        = "ttl"
)

var knownOptions = map[string]bool{
	optSignMethod: true,
	optPublicKey:  true,
	optPrivateKey: true,
	optTTL:        true,
}

// jwtOptions are the parsed jwt options (etcd's jwtOptions).
type jwtOptions struct {
	signMethod jwt.SigningMethod
	publicKey  []byte
	privateKey []byte
	ttl        time.Duration
}

// parse reads optMap as etcd's ParseWithDefaults: a missing or empty ttl
// is DefaultJWTTTL; ttl, then the key files, then sign-method are checked
// in that order.
func (o *jwtOptions) parse(optMap map[string]string) error {
	var err error
	o.ttl = DefaultJWTTTL
	if ttl := optMap[optTTL]; ttl != "" {
		if o.ttl, err = time.ParseDuration(ttl); err != nil {
			return err
		}
	}
	if file := optMap[optPublicKey]; file != "" {
		if o.publicKey, err = os.ReadFile(file); err != nil {
			return err
		}
	}
	if file := optMap[optPrivateKey]; file != "" {
		if o.privateKey, err = os.ReadFile(file); err != nil {
			return err
		}
	}
	if o.signMethod = jwt.GetSigningMethod(optMap[optSignMethod]); o.signMethod == nil {
		return ErrInvalidAuthMethod
	}
	return nil
}

// key returns the signing key, or the verifying key when only pub-key is
// given (etcd's jwtOptions.Key).
func (o *jwtOptions) key() (any, error) {
	switch o.signMethod.(type) {
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		return pairKey(o, jwt.ParseRSAPrivateKeyFromPEM, jwt.ParseRSAPublicKeyFromPEM)
	case *jwt.SigningMethodECDSA:
		return pairKey(o, jwt.ParseECPrivateKeyFromPEM, jwt.ParseECPublicKeyFromPEM)
	case *jwt.SigningMethodEd25519:
		return pairKey(o,
			func(b []byte) (ed25519.PrivateKey, error) {
				k, err := jwt.ParseEdPrivateKeyFromPEM(b)
				if err != nil {
					return nil, err
				}
				return k.(ed25519.PrivateKey), nil
			},
			func(b []byte) (ed25519.PublicKey, error) {
				k, err := jwt.ParseEdPublicKeyFromPEM(b)
				if err != nil {
					return nil, err
				}
				return k.(ed25519.PublicKey), nil
			})
	case *jwt.SigningMethodHMAC:
		if len(o.privateKey) == 0 {
			return nil, ErrMissingKey
		}
		return o.privateKey, nil
	default:
		return nil, fmt.Errorf("unsupported signing method: %T", o.signMethod)
	}
}

// privateKey is what the three asymmetric families' private keys have.
type privateKey interface {
	Public() crypto.PublicKey
}

// publicKey is what the three asymmetric families' public keys have.
type publicKey interface {
	Equal(crypto.PublicKey) bool
}

// pairKey parses whichever of the two PEM files are given: the private
// key wins (and must match the public one), the public key alone makes a
// verify-only provider, neither is ErrMissingKey.
func pairKey[Priv privateKey, Pub publicKey](o *jwtOptions, parsePriv func([]byte) (Priv, error), parsePub func([]byte) (Pub, error)) (any, error) {
	var (
		priv Priv
		pub  Pub
		err  error
	)
	havePriv, havePub := len(o.privateKey) > 0, len(o.publicKey) > 0
	if havePriv {
		if priv, err = parsePriv(o.privateKey); err != nil {
			return nil, err
		}
	}
	if havePub {
		if pub, err = parsePub(o.publicKey); err != nil {
			return nil, err
		}
	}
	if !havePriv {
		if !havePub {
			return nil, ErrMissingKey
		}
		return pub, nil
	}
	if havePub && !pub.Equal(priv.Public()) {
		return nil, ErrKeyMismatch
	}
	return priv, nil
}

// jwtProvider is etcd's tokenJWT.
type jwtProvider struct {
	lg         *slog.Logger
	now        func() time.Time
	signMethod jwt.SigningMethod
	key        any // signing key, or the public key when verifyOnly
	verifyKey  any
	ttl        time.Duration
	verifyOnly bool
}

func newJWT(lg *slog.Logger, optMap map[string]string, o options) (*jwtProvider, error) {
	var opts jwtOptions
	if err := opts.parse(optMap); err != nil {
		lg.Error("problem loading JWT options", "error", err)
		return nil, ErrInvalidAuthOpts
	}
	var unknown []string
	for k := range optMap {
		if !knownOptions[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		lg.Warn("unknown JWT options", "keys", unknown)
	}
	key, err := opts.key()
	if err != nil {
		return nil, err
	}
	t := &jwtProvider{lg: lg, now: o.now, signMethod: opts.signMethod, key: key, ttl: opts.ttl}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		t.verifyKey = &k.PublicKey
	case *ecdsa.PrivateKey:
		t.verifyKey = &k.PublicKey
	case ed25519.PrivateKey:
		t.verifyKey = k.Public()
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		t.verifyKey = key
		t.verifyOnly = true
	default: // HMAC secret
		t.verifyKey = key
	}
	return t, nil
}

func (t *jwtProvider) Type() string                    { return TypeJWT }
func (t *jwtProvider) Enable()                         {}
func (t *jwtProvider) Disable()                        {}
func (t *jwtProvider) InvalidateUser(string)           {}
func (t *jwtProvider) GenTokenPrefix() (string, error) { return "", nil }

// Assign signs {"username", "revision", "exp"} with the configured method;
// prefix and index are unused (etcd).
func (t *jwtProvider) Assign(user string, authRevision uint64, _ string, _ uint64) (string, error) {
	if t.verifyOnly {
		return "", ErrVerifyOnly
	}
	tk := jwt.NewWithClaims(t.signMethod, jwt.MapClaims{
		"username": user,
		"revision": authRevision,
		"exp":      t.now().Add(t.ttl).Unix(),
	})
	token, err := tk.SignedString(t.key)
	if err != nil {
		t.lg.Debug("failed to sign a JWT token", "user-name", user, "revision", authRevision, "error", err)
		return "", err
	}
	t.lg.Debug("created/assigned a new JWT token", "user-name", user, "revision", authRevision,
		"token-fingerprint", Fingerprint(token))
	return token, nil
}

var errWrongMethod = errors.New("invalid signing method")

// Info verifies the signature (only the configured algorithm is
// accepted) and exp, and returns the username and revision claims; the
// authRevision argument is unused (etcd).
func (t *jwtProvider) Info(_ context.Context, token string, _ uint64) (AuthInfo, bool) {
	parsed, err := jwt.Parse(token, func(tk *jwt.Token) (any, error) {
		if tk.Method.Alg() != t.signMethod.Alg() {
			return nil, errWrongMethod
		}
		return t.verifyKey, nil
	}, jwt.WithTimeFunc(t.now))
	if err != nil {
		t.lg.Warn("failed to parse a JWT token", "error", err)
		return AuthInfo{}, false
	}
	claims, ok := parsed.Claims.(jwt.MapClaims)
	if !parsed.Valid || !ok {
		t.lg.Warn("failed to obtain claims from a JWT token")
		return AuthInfo{}, false
	}
	username, ok := claims["username"].(string)
	if !ok {
		t.lg.Warn("failed to obtain user claims from jwt token")
		return AuthInfo{}, false
	}
	revision, ok := claims["revision"].(float64)
	if !ok {
		t.lg.Warn("failed to obtain revision claims from jwt token")
		return AuthInfo{}, false
	}
	return AuthInfo{Username: username, Revision: uint64(revision)}, true
}
