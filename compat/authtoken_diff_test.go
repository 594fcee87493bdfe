package compat

// --auth-token parsing differential test.
//
// What it proves: Cairn's pkg/authtoken.New accepts and refuses the same
// --auth-token values as etcd 3.7.4's auth.NewTokenProvider, with the
// same error message, for a table of specs over real key files (RSA,
// ECDSA P-256/384/521, Ed25519, HMAC secrets, mismatched pairs, garbage)
// and for fuzzed specs. (etcd's providers have unexported methods only,
// so the tokens themselves are compared by the auth scenarios, through
// the servers.)

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	etcdauth "go.etcd.io/etcd/server/v3/auth"
	"go.uber.org/zap"

	"github.com/cairn-kv/cairn/pkg/authtoken"
)

// tokenKeyFiles writes one key of every kind to dir and returns their
// paths by name.
func tokenKeyFiles(t testing.TB) map[string]string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	pemOf := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	pub := func(name string, k any) {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(name, pemOf("PUBLIC KEY", der))
	}
	pkcs8 := func(name string, k any) {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(name, pemOf("PRIVATE KEY", der))
	}
	rsa1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	write("rsa.key", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1)))
	pkcs8("rsa8.key", rsa1)
	pub("rsa.pub", &rsa1.PublicKey)
	pub("rsa2.pub", &rsa2.PublicKey)
	for _, c := range []struct {
		name  string
		curve elliptic.Curve
	}{{"ec256", elliptic.P256()}, {"ec384", elliptic.P384()}, {"ec521", elliptic.P521()}} {
		k, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(c.name+".key", pemOf("EC PRIVATE KEY", der))
		pub(c.name+".pub", &k.PublicKey)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub2, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8("ed.key", edPriv)
	pub("ed.pub", edPub)
	pub("ed2.pub", edPub2)
	write("hmac", []byte("some shared secret"))
	write("empty", nil)
	write("garbage", []byte("garbage\n"))
	return files
}

// tokenSpecs are --auth-token values over the key files in f.
func tokenSpecs(f map[string]string) []string {
	specs := []string{
		"", "simple", "Simple", " simple", "simple,", "simple,a=b", "simple,a=b,a=c", "simple,a", "simple,a=b=c",
		"jwt", "jwt,", "jwt,sign-method", "jwt,sign-method=", "jwt,sign-method=none", "jwt,sign-method=XS256",
		"jwt,sign-method=rs256", "bogus", ",", ",a=b", "jwt,ttl=abc", "jwt,ttl=5m",
	}
	methods := map[string][]string{
		"rsa":   {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
		"ec256": {"ES256"}, "ec384": {"ES384"}, "ec521": {"ES512"},
		"ed":   {"EdDSA"},
		"hmac": {"HS256", "HS384", "HS512"},
	}
	all := []string{"RS256", "PS384", "ES256", "ES512", "EdDSA", "HS256"}
	for fam, ms := range methods {
		for _, m := range ms {
			priv, pub := f[fam+".key"], f[fam+".pub"]
			if fam == "hmac" {
				priv, pub = f["hmac"], ""
			}
			base := "jwt,sign-method=" + m
			specs = append(specs,
				base,
				base+",priv-key="+priv,
				base+",priv-key="+priv+",ttl=1h",
				base+",priv-key="+priv+",ttl=0s",
				base+",priv-key="+priv+",ttl=-1m",
				base+",priv-key="+priv+",ttl=",
				base+",priv-key="+priv+",ttl=10",
				base+",priv-key="+priv+",color=blue",
				base+",priv-key="+priv+",priv-key="+priv,
				base+",priv-key=/nonexistent",
				base+",priv-key="+f["empty"],
				base+",priv-key="+f["garbage"],
				base+",pub-key="+f["garbage"],
				base+",pub-key="+f["rsa.pub"],
				base+",pub-key="+f["ec256.pub"],
				base+",pub-key="+f["ed.pub"],
				base+",priv-key="+f["rsa8.key"],
				base+",priv-key="+f["ec384.key"],
				base+",priv-key="+f["ed.key"],
				base+",priv-key="+f["rsa.key"]+",pub-key="+f["rsa2.pub"],
				base+",priv-key="+f["ed.key"]+",pub-key="+f["ed2.pub"],
				base+",priv-key="+f["ec256.key"]+",pub-key="+f["ec384.pub"],
			)
			if pub != "" {
				specs = append(specs, base+",pub-key="+pub, base+",pub-key="+pub+",priv-key="+priv)
			}
		}
	}
	for _, m := range all {
		specs = append(specs, "jwt,sign-method="+m+",priv-key="+f["hmac"])
	}
	return specs
}

// tokenVerdict is what a --auth-token value gives: "ok" or the error.
func etcdTokenVerdict(spec string) string {
	_, err := etcdauth.NewTokenProvider(zap.NewNop(), spec, nil, 300*time.Second)
	if err != nil {
		return err.Error()
	}
	return "ok"
}

func cairnTokenVerdict(spec string) string {
	_, err := authtoken.New(spec, 300*time.Second, nil)
	if err != nil {
		return err.Error()
	}
	return "ok"
}

func TestAuthTokenSpecDiff(t *testing.T) {
	f := tokenKeyFiles(t)
	for _, spec := range tokenSpecs(f) {
		e, c := etcdTokenVerdict(spec), cairnTokenVerdict(spec)
		if e != c {
			t.Errorf("--auth-token %q:\n  etcd:  %s\n  cairn: %s", strings.ReplaceAll(spec, filepath.Dir(f["hmac"])+"/", ""), e, c)
		}
	}
}

// FuzzAuthTokenSpecDiff compares the verdicts on fuzzed specs. Run with
// -fuzz=FuzzAuthTokenSpecDiff; without it the seeds (tokenSpecs) run.
func FuzzAuthTokenSpecDiff(f *testing.F) {
	files := tokenKeyFiles(f)
	for _, s := range tokenSpecs(files) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		for _, dev := range []string{"/dev", "/proc", "/sys"} {
			if strings.Contains(spec, dev) {
				t.Skip("key files that never end")
			}
		}
		if e, c := etcdTokenVerdict(spec), cairnTokenVerdict(spec); e != c {
			t.Errorf("--auth-token %q:\n  etcd:  %s\n  cairn: %s", spec, e, c)
		}
	})
}
