package authtoken

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtSpecs returns one signing spec per method, with a key of the right
// family, and the matching verify-only spec ("" for HMAC).
func jwtSpecs(t *testing.T) []struct{ method, sign, verify string } {
	k := testKeys(t)
	var out []struct{ method, sign, verify string }
	add := func(method, priv, pub string) {
		sign := "jwt,sign-method=" + method + ",priv-key=" + priv
		verify := ""
		if pub != "" {
			sign += ",pub-key=" + pub
			verify = "jwt,sign-method=" + method + ",pub-key=" + pub
		}
		out = append(out, struct{ method, sign, verify string }{method, sign, verify})
	}
	for _, m := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		add(m, k.rsaPriv, k.rsaPub)
	}
	add("ES256", k.ec256Priv, k.ec256Pub)
	add("ES384", k.ec384Priv, k.ec384Pub)
	add("ES512", k.ec521Priv, k.ec521Pub)
	add("EdDSA", k.edPriv, k.edPub)
	for _, m := range []string{"HS256", "HS384", "HS512"} {
		add(m, k.hmac, "")
	}
	return out
}

// claimsOf decodes a token's payload without verifying it.
func claimsOf(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts, want 3", tok, len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func TestJWTRoundTrip(t *testing.T) {
	for _, tc := range jwtSpecs(t) {
		t.Run(tc.method, func(t *testing.T) {
			ctx := t.Context()
			clk := newFakeClock()
			p, err := New(tc.sign+",ttl=90s", 0, discard(), WithClock(clk.Now))
			if err != nil {
				t.Fatal(err)
			}
			p.Enable()
			tok, err := p.Assign("alice", 17, "ignoredprefixxxx", 99)
			if err != nil {
				t.Fatal(err)
			}
			header, claims := claimsOf(t, tok)
			if header["alg"] != tc.method {
				t.Errorf("alg = %v, want %s", header["alg"], tc.method)
			}
			wantExp := float64(clk.Now().Add(90 * time.Second).Unix())
			if len(claims) != 3 || claims["username"] != "alice" || claims["revision"] != float64(17) || claims["exp"] != wantExp {
				t.Errorf("claims = %v, want exactly username alice, revision 17, exp %v", claims, wantExp)
			}
			// Revision comes from the token, not the argument.
			info, ok := p.Info(ctx, tok, 1000)
			if !ok || info != (AuthInfo{Username: "alice", Revision: 17}) {
				t.Fatalf("Info = %+v, %v; want alice at 17", info, ok)
			}
			// JWTs are not remembered: Disable and InvalidateUser change nothing.
			p.InvalidateUser("alice")
			p.Disable()
			if _, ok := p.Info(ctx, tok, 1000); !ok {
				t.Fatal("JWT refused after Disable/InvalidateUser")
			}
			// A member with the public key only verifies the same token,
			// and cannot sign.
			if tc.verify != "" {
				v, err := New(tc.verify, 0, discard(), WithClock(clk.Now))
				if err != nil {
					t.Fatal(err)
				}
				if info, ok := v.Info(ctx, tok, 0); !ok || info.Username != "alice" {
					t.Fatalf("verify-only Info = %+v, %v", info, ok)
				}
				if _, err := v.Assign("alice", 1, "", 1); !errors.Is(err, ErrVerifyOnly) {
					t.Fatalf("verify-only Assign error = %v, want %v", err, ErrVerifyOnly)
				}
			}
			// exp is checked against the injected clock, not refreshed on use.
			clk.Advance(89 * time.Second)
			if _, ok := p.Info(ctx, tok, 0); !ok {
				t.Fatal("token refused before exp")
			}
			clk.Advance(2 * time.Second)
			if _, ok := p.Info(ctx, tok, 0); ok {
				t.Fatal("token accepted after exp")
			}
			// Tampered signature or payload.
			clk.Advance(-10 * time.Second)
			parts := strings.Split(tok, ".")
			_, forged := claimsOf(t, tok)
			forged["username"] = "root"
			b, _ := json.Marshal(forged)
			for name, bad := range map[string]string{
				"payload":   parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2],
				"signature": parts[0] + "." + parts[1] + "." + flip(parts[2]),
				"truncated": parts[0] + "." + parts[1],
				"simple":    "abcdefghijklmnop.1",
				"empty":     "",
			} {
				if info, ok := p.Info(ctx, bad, 0); ok {
					t.Errorf("%s-tampered token accepted as %+v", name, info)
				}
			}
		})
	}
}

// flip changes the first character of a base64url string.
func flip(s string) string {
	if s == "" {
		return "A"
	}
	c := byte('A')
	if s[0] == 'A' {
		c = 'B'
	}
	return string(c) + s[1:]
}

// TestJWTForeign: tokens signed by another key, another method, or
// lacking etcd's claims are refused.
func TestJWTForeign(t *testing.T) {
	k := testKeys(t)
	ctx := t.Context()
	rs, err := New("jwt,sign-method=RS256,priv-key="+k.rsaPriv, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := os.ReadFile(k.hmac)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(k.rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := jwt.MapClaims{"username": "alice", "revision": 1, "exp": exp}
	hs, _ := New("jwt,sign-method=HS256,priv-key="+k.hmac, 0, nil)
	ps, _ := New("jwt,sign-method=PS256,priv-key="+k.rsaPriv, 0, nil)
	psTok, _ := ps.Assign("alice", 1, "", 0)
	tests := []struct {
		name string
		p    Provider
		tok  string
		ok   bool
	}{
		{"good HS256", hs, sign(jwt.SigningMethodHS256, secret, good), true},
		{"other secret", hs, sign(jwt.SigningMethodHS256, []byte("other"), good), false},
		{"HS384 to an HS256 member", hs, sign(jwt.SigningMethodHS384, secret, good), false},
		// Algorithm confusion: an HMAC token keyed with the RSA public key.
		{"HS256 keyed with the RS256 public key", rs, sign(jwt.SigningMethodHS256, pubPEM, good), false},
		{"PS256 to an RS256 member (same key)", rs, psTok, false},
		{"alg none", rs, sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), false},
		{"no username", hs, sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"revision": 1, "exp": exp}), false},
		{"username not a string", hs, sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"username": 5, "revision": 1, "exp": exp}), false},
		{"no revision", hs, sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"username": "alice", "exp": exp}), false},
		{"revision a string", hs, sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"username": "alice", "revision": "1", "exp": exp}), false},
		// etcd's tokens always carry exp, but like etcd a token without one
		// does not expire.
		{"no exp", hs, sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"username": "alice", "revision": 1}), true},
		{"nbf in the future", hs, sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"username": "alice", "revision": 1, "nbf": exp}), false},
	}
	for _, tt := range tests {
		if _, ok := tt.p.Info(ctx, tt.tok, 0); ok != tt.ok {
			t.Errorf("%s: Info ok = %v, want %v", tt.name, ok, tt.ok)
		}
	}
}

// TestJWTZeroTTL: "ttl=0s" is kept as zero, as etcd: the token expires
// the second it is issued.
func TestJWTZeroTTL(t *testing.T) {
	clk := newFakeClock()
	p, err := New("jwt,sign-method=HS256,ttl=0s,priv-key="+testKeys(t).hmac, 0, nil, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Assign("alice", 1, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, claims := claimsOf(t, tok); claims["exp"] != float64(clk.Now().Unix()) {
		t.Fatalf("exp = %v, want now (%d)", claims["exp"], clk.Now().Unix())
	}
	clk.Advance(time.Second)
	if _, ok := p.Info(t.Context(), tok, 0); ok {
		t.Fatal("token with ttl=0s accepted a second later")
	}
}
