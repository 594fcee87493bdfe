package authtoken

import (
	"errors"
	"strings"
	"testing"
)

// FuzzNew checks that no --auth-token spec makes New panic, and that its
// verdict follows etcd's rules where they can be predicted without files:
// a malformed item or repeated name is ErrInvalidAuthOpts, the type
// decides the provider.
func FuzzNew(f *testing.F) {
	k := testKeys(f)
	for _, s := range []string{
		"", "simple", "jwt", "jwt,", "jwt,sign-method=HS256,priv-key=" + k.hmac,
		"jwt,sign-method=RS256,priv-key=" + k.rsaPriv + ",pub-key=" + k.rsaPub + ",ttl=10m",
		"jwt,sign-method=ES256,pub-key=" + k.ec256Pub,
		"jwt,sign-method=EdDSA,priv-key=" + k.edPriv,
		"jwt,sign-method=none", "simple,a=b,a=c", "jwt,a=b=c", "x,y",
		"jwt,sign-method=HS256,priv-key=" + k.hmac + ",ttl=1e9h",
	} {
		f.Add(s)
	}
	lg := discard()
	f.Fuzz(func(t *testing.T, spec string) {
		for _, dev := range []string{"/dev", "/proc", "/sys"} {
			if strings.Contains(spec, dev) {
				t.Skip("key files that never end") // e.g. /dev/zero
			}
		}
		p, err := New(spec, 0, lg)
		items := strings.Split(spec, ",")
		malformed := false
		seen := map[string]bool{}
		for _, it := range items[1:] {
			kv := strings.Split(it, "=")
			if len(kv) != 2 || seen[kv[0]] {
				malformed = true
				break
			}
			seen[kv[0]] = true
		}
		switch {
		case malformed:
			if !errors.Is(err, ErrInvalidAuthOpts) {
				t.Fatalf("New(%q) error = %v, want %v", spec, err, ErrInvalidAuthOpts)
			}
		case items[0] == TypeSimple || items[0] == TypeNone:
			if err != nil || p.Type() != items[0] {
				t.Fatalf("New(%q) = %v, %v; want a %q provider", spec, p, err, items[0])
			}
		case items[0] == TypeJWT:
			if err == nil && p.Type() != TypeJWT {
				t.Fatalf("New(%q).Type() = %q", spec, p.Type())
			}
		default:
			if !errors.Is(err, ErrInvalidAuthOpts) {
				t.Fatalf("New(%q) error = %v, want %v", spec, err, ErrInvalidAuthOpts)
			}
		}
		if err == nil && p.Type() != TypeNone {
			// A provider that was built must work.
			p.Enable()
			tok, aerr := p.Assign("u", 7, "abcdefghijklmnop", 9)
			if aerr == nil {
				if info, ok := p.Info(t.Context(), tok, 7); !ok && p.Type() == TypeSimple || ok && info.Username != "u" {
					t.Fatalf("Info(Assign(u)) = %+v, %v", info, ok)
				}
			}
			p.Disable()
		}
	})
}
