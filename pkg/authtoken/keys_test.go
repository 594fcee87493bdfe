package authtoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// keyFiles are paths of PEM files of freshly generated keys, shared by
// the tests of one run (RSA generation is slow).
type keyFiles struct {
	rsaPriv, rsaPKCS8Priv, rsaPub, rsaPub2 string
	ec256Priv, ec256Pub, ec256Pub2         string
	ec384Priv, ec384Pub                    string
	ec521Priv, ec521Pub                    string
	edPriv, edPub, edPub2                  string
	hmac                                   string
	empty                                  string
	garbage                                string
}

var (
	keysOnce sync.Once
	keys     keyFiles
	keysErr  error
	keysDir  string
)

func testKeys(t testing.TB) keyFiles {
	t.Helper()
	keysOnce.Do(func() { keys, keysErr = genKeys() })
	if keysErr != nil {
		t.Fatalf("generate keys: %v", keysErr)
	}
	return keys
}

func TestMain(m *testing.M) {
	code := m.Run()
	if keysDir != "" {
		os.RemoveAll(keysDir)
	}
	os.Exit(code)
}

// keyWriter writes PEM files into dir and remembers the first error.
type keyWriter struct {
	dir string
	err error
}

func (w *keyWriter) raw(name string, data []byte) string {
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil && w.err == nil {
		w.err = err
	}
	return p
}

func (w *keyWriter) pem(name, typ string, der []byte, err error) string {
	if err != nil && w.err == nil {
		w.err = err
	}
	return w.raw(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func (w *keyWriter) pub(name string, key crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(key)
	return w.pem(name, "PUBLIC KEY", der, err)
}

func (w *keyWriter) pkcs8(name string, key crypto.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	return w.pem(name, "PRIVATE KEY", der, err)
}

func (w *keyWriter) ec(name string, key *ecdsa.PrivateKey) string {
	der, err := x509.MarshalECPrivateKey(key)
	return w.pem(name, "EC PRIVATE KEY", der, err)
}

func genKeys() (keyFiles, error) {
	dir, err := os.MkdirTemp("", "authtoken-keys-")
	if err != nil {
		return keyFiles{}, err
	}
	keysDir = dir
	w := &keyWriter{dir: dir}
	var k keyFiles

	rsa1, err1 := rsa.GenerateKey(rand.Reader, 2048)
	rsa2, err2 := rsa.GenerateKey(rand.Reader, 2048)
	ec256, err3 := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec256b, err4 := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, err5 := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec521, err6 := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub, ed, err7 := ed25519.GenerateKey(rand.Reader)
	edPub2, _, err8 := ed25519.GenerateKey(rand.Reader)
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8); err != nil {
		return k, err
	}

	k.rsaPriv = w.pem("rsa.key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1), nil)
	k.rsaPKCS8Priv = w.pkcs8("rsa8.key", rsa1)
	k.rsaPub = w.pub("rsa.pub", &rsa1.PublicKey)
	k.rsaPub2 = w.pub("rsa2.pub", &rsa2.PublicKey)
	k.ec256Priv = w.ec("ec256.key", ec256)
	k.ec256Pub = w.pub("ec256.pub", &ec256.PublicKey)
	k.ec256Pub2 = w.pub("ec256b.pub", &ec256b.PublicKey)
	k.ec384Priv = w.ec("ec384.key", ec384)
	k.ec384Pub = w.pub("ec384.pub", &ec384.PublicKey)
	k.ec521Priv = w.ec("ec521.key", ec521)
	k.ec521Pub = w.pub("ec521.pub", &ec521.PublicKey)
	k.edPriv = w.pkcs8("ed.key", ed)
	k.edPub = w.pub("ed.pub", edPub)
	k.edPub2 = w.pub("ed2.pub", edPub2)
	k.hmac = w.raw("hmac.secret", []byte("a shared secret of some length, 32+ bytes"))
	k.empty = w.raw("empty", nil)
	k.garbage = w.raw("garbage.pem", []byte("not a key\n"))
	return k, w.err
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
