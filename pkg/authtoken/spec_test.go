package authtoken

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestNewSpec checks New's parsing of --auth-token against etcd 3.7.4's
// NewTokenProvider/decomposeOpts/jwtOptions rules (compat/ checks the
// same specs against etcd itself).
func TestNewSpec(t *testing.T) {
	k := testKeys(t)
	errAny := errors.New("any error")
	tests := []struct {
		spec     string
		wantType string
		wantErr  error // errAny: some non-sentinel error (a PEM or x509 error)
		wantMsg  string
		verify   bool // verify-only jwt
		ttl      time.Duration
	}{
		{spec: "simple", wantType: TypeSimple},
		{spec: "simple,whatever=1", wantType: TypeSimple},
		{spec: "simple,ttl=1s,ttl=2s", wantErr: ErrInvalidAuthOpts},
		{spec: "simple,", wantErr: ErrInvalidAuthOpts},
		{spec: "", wantType: TypeNone},
		{spec: ",a=b", wantType: TypeNone},
		{spec: "Simple", wantErr: ErrInvalidAuthOpts},
		{spec: " simple", wantErr: ErrInvalidAuthOpts},
		{spec: "bogus", wantErr: ErrInvalidAuthOpts},
		{spec: "jwt", wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,", wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method", wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=RS256=x", wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=HS256,sign-method=HS256,priv-key=" + k.hmac, wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=XS256,priv-key=" + k.hmac, wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=rs256,priv-key=" + k.rsaPriv, wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=", wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=HS256,priv-key=/nonexistent/key", wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=HS256,pub-key=/nonexistent/key,priv-key=" + k.hmac, wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=HS256,ttl=5,priv-key=" + k.hmac, wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=HS256,ttl=abc,priv-key=" + k.hmac, wantErr: ErrInvalidAuthOpts},
		// ttl is parsed before sign-method, but both collapse to the same error.
		{spec: "jwt,ttl=abc", wantErr: ErrInvalidAuthOpts},
		{spec: "jwt,sign-method=HS256", wantErr: ErrMissingKey},
		{spec: "jwt,sign-method=HS256,priv-key=" + k.empty, wantErr: ErrMissingKey},
		{spec: "jwt,sign-method=HS256,priv-key=", wantErr: ErrMissingKey},
		{spec: "jwt,sign-method=HS256,pub-key=" + k.hmac, wantErr: ErrMissingKey},
		{spec: "jwt,sign-method=RS256", wantErr: ErrMissingKey},
		{spec: "jwt,sign-method=ES256", wantErr: ErrMissingKey},
		{spec: "jwt,sign-method=EdDSA", wantErr: ErrMissingKey},
		{spec: "jwt,sign-method=none", wantMsg: "unsupported signing method: *jwt.signingMethodNone"},
		{spec: "jwt,sign-method=RS256,priv-key=" + k.garbage, wantErr: jwt.ErrKeyMustBePEMEncoded},
		{spec: "jwt,sign-method=RS256,pub-key=" + k.garbage, wantErr: jwt.ErrKeyMustBePEMEncoded},
		{spec: "jwt,sign-method=ES256,priv-key=" + k.garbage, wantErr: jwt.ErrKeyMustBePEMEncoded},
		{spec: "jwt,sign-method=EdDSA,priv-key=" + k.garbage, wantErr: jwt.ErrKeyMustBePEMEncoded},
		{spec: "jwt,sign-method=RS256,priv-key=" + k.ec256Priv, wantErr: errAny},
		{spec: "jwt,sign-method=RS256,pub-key=" + k.ec256Pub, wantErr: jwt.ErrNotRSAPublicKey},
		{spec: "jwt,sign-method=ES256,priv-key=" + k.rsaPriv, wantErr: errAny},
		{spec: "jwt,sign-method=ES256,pub-key=" + k.rsaPub, wantErr: jwt.ErrNotECPublicKey},
		{spec: "jwt,sign-method=EdDSA,priv-key=" + k.ec256Priv, wantErr: errAny},
		{spec: "jwt,sign-method=EdDSA,pub-key=" + k.rsaPub, wantErr: jwt.ErrNotEdPublicKey},
		{spec: "jwt,sign-method=RS256,priv-key=" + k.rsaPriv + ",pub-key=" + k.rsaPub2, wantErr: ErrKeyMismatch},
		{spec: "jwt,sign-method=ES256,priv-key=" + k.ec256Priv + ",pub-key=" + k.ec256Pub2, wantErr: ErrKeyMismatch},
		{spec: "jwt,sign-method=EdDSA,priv-key=" + k.edPriv + ",pub-key=" + k.edPub2, wantErr: ErrKeyMismatch},
		{spec: "jwt,sign-method=RS256,priv-key=" + k.rsaPriv, wantType: TypeJWT, ttl: 5 * time.Minute},
		{spec: "jwt,sign-method=RS384,priv-key=" + k.rsaPKCS8Priv + ",pub-key=" + k.rsaPub, wantType: TypeJWT, ttl: 5 * time.Minute},
		{spec: "jwt,sign-method=PS512,pub-key=" + k.rsaPub, wantType: TypeJWT, verify: true, ttl: 5 * time.Minute},
		{spec: "jwt,sign-method=ES384,priv-key=" + k.ec384Priv + ",ttl=1h", wantType: TypeJWT, ttl: time.Hour},
		{spec: "jwt,sign-method=ES256,pub-key=" + k.ec256Pub, wantType: TypeJWT, verify: true, ttl: 5 * time.Minute},
		{spec: "jwt,sign-method=EdDSA,priv-key=" + k.edPriv + ",pub-key=" + k.edPub, wantType: TypeJWT, ttl: 5 * time.Minute},
		{spec: "jwt,sign-method=EdDSA,pub-key=" + k.edPub, wantType: TypeJWT, verify: true, ttl: 5 * time.Minute},
		{spec: "jwt,sign-method=HS512,priv-key=" + k.hmac + ",ttl=", wantType: TypeJWT, ttl: 5 * time.Minute},
		{spec: "jwt,sign-method=HS256,priv-key=" + k.hmac + ",ttl=0s", wantType: TypeJWT, ttl: 0},
		{spec: "jwt,sign-method=HS256,priv-key=" + k.hmac + ",ttl=-1m", wantType: TypeJWT, ttl: -time.Minute},
		{spec: "jwt,sign-method=HS256,priv-key=" + k.hmac + ",color=blue", wantType: TypeJWT, ttl: 5 * time.Minute},
		{spec: "jwt,sign-method=HS256,priv-key=" + k.hmac + ",=", wantType: TypeJWT, ttl: 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			p, err := New(tt.spec, 0, nil)
			switch {
			case tt.wantMsg != "":
				if err == nil || err.Error() != tt.wantMsg {
					t.Fatalf("New(%q) error = %v, want %q", tt.spec, err, tt.wantMsg)
				}
				return
			case tt.wantErr == errAny:
				if err == nil {
					t.Fatalf("New(%q) = %v, want an error", tt.spec, p.Type())
				}
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("New(%q) error = %v, want %v", tt.spec, err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("New(%q) error = %v, want a %q provider", tt.spec, err, tt.wantType)
			}
			if p.Type() != tt.wantType {
				t.Fatalf("New(%q).Type() = %q, want %q", tt.spec, p.Type(), tt.wantType)
			}
			if jp, ok := p.(*jwtProvider); ok {
				if jp.verifyOnly != tt.verify {
					t.Errorf("verifyOnly = %v, want %v", jp.verifyOnly, tt.verify)
				}
				if jp.ttl != tt.ttl {
					t.Errorf("ttl = %v, want %v", jp.ttl, tt.ttl)
				}
			}
		})
	}
}

func TestDecomposeOpts(t *testing.T) {
	lg := discard()
	tests := []struct {
		spec     string
		wantType string
		want     map[string]string
		wantErr  bool
	}{
		{spec: "", wantType: "", want: map[string]string{}},
		{spec: "simple", wantType: "simple", want: map[string]string{}},
		{spec: "jwt,a=1,b=", wantType: "jwt", want: map[string]string{"a": "1", "b": ""}},
		{spec: "jwt,=x", wantType: "jwt", want: map[string]string{"": "x"}},
		{spec: "jwt,a", wantErr: true},
		{spec: "jwt,a=1=2", wantErr: true},
		{spec: "jwt,a=1,a=2", wantErr: true},
		{spec: "jwt,a=1,", wantErr: true},
		{spec: ",", wantErr: true},
	}
	for _, tt := range tests {
		typ, m, err := decomposeOpts(lg, tt.spec)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidAuthOpts) {
				t.Errorf("decomposeOpts(%q) error = %v, want %v", tt.spec, err, ErrInvalidAuthOpts)
			}
			continue
		}
		if err != nil || typ != tt.wantType || len(m) != len(tt.want) {
			t.Errorf("decomposeOpts(%q) = %q, %v, %v; want %q, %v", tt.spec, typ, m, err, tt.wantType, tt.want)
			continue
		}
		for key, v := range tt.want {
			if m[key] != v {
				t.Errorf("decomposeOpts(%q)[%q] = %q, want %q", tt.spec, key, m[key], v)
			}
		}
	}
}

func TestFingerprint(t *testing.T) {
	// sha256("abc") = ba7816bf8f01cfea414140de5dae2223...
	if got, want := Fingerprint("abc"), "ba7816bf8f01"; got != want {
		t.Fatalf("Fingerprint(abc) = %q, want %q", got, want)
	}
}
