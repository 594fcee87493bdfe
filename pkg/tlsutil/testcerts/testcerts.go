// Package testcerts writes a small PKI into a directory for tests: a CA,
// a server certificate with IP and DNS SANs, client certificates, one of
// them revoked in a CRL, and a certificate from a CA nobody trusts.
//
//	pki, err := testcerts.New(t.TempDir())
//	// pki.CA, pki.Server.Cert, pki.Server.Key, pki.Client..., pki.CRL
//
// Keys are ECDSA P-256; certificates are valid from an hour ago for a day.
// It is for tests only.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Pair names a certificate file and its key file.
type Pair struct {
	Cert, Key string
	Serial    *big.Int
}

// PKI is the set of files New writes.
type PKI struct {
	Dir string
	// CA is the PEM certificate of the CA that signed everything below
	// except Untrusted.
	CA string
	// Server is valid for 127.0.0.1, ::1 and localhost, for server and
	// client authentication (as etcd's peer certificates need).
	Server Pair
	// Client has CN "client"; Root has CN "root" (etcd's user name when
	// --client-cert-auth and auth are on); Revoked has CN "revoked" and is
	// listed in CRL.
	Client, Root, Revoked Pair
	// Untrusted is signed by another CA, with the same SANs as Server.
	Untrusted Pair
	// CRL is the revocation list, PEM; CRLDER the same list, DER (the
	// form etcd reads).
	CRL, CRLDER string

	mu      sync.Mutex
	caCert  *x509.Certificate
	caKey   *ecdsa.PrivateKey
	revoked []*big.Int
	serial  int64
}

// New writes a fresh PKI into dir.
func New(dir string) (*PKI, error) {
	p := &PKI{Dir: dir, CA: filepath.Join(dir, "ca.pem"), CRL: filepath.Join(dir, "crl.pem"), CRLDER: filepath.Join(dir, "crl.der"), serial: 100}
	var err error
	p.caCert, p.caKey, err = selfSigned("cairn test CA")
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.CA, "CERTIFICATE", p.caCert.Raw); err != nil {
		return nil, err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	dns := []string{"localhost"}
	if p.Server, err = p.Issue("server", "cairn-server", ips, dns); err != nil {
		return nil, err
	}
	if p.Client, err = p.Issue("client", "client", nil, nil); err != nil {
		return nil, err
	}
	if p.Root, err = p.Issue("root", "root", nil, nil); err != nil {
		return nil, err
	}
	if p.Revoked, err = p.Issue("revoked", "revoked", nil, nil); err != nil {
		return nil, err
	}
	if err := p.Revoke(p.Revoked.Serial); err != nil {
		return nil, err
	}
	otherCert, otherKey, err := selfSigned("untrusted CA")
	if err != nil {
		return nil, err
	}
	if p.Untrusted, err = p.issue(otherCert, otherKey, "untrusted", "cairn-server", ips, dns); err != nil {
		return nil, err
	}
	return p, nil
}

// Issue signs a new certificate named name (files name.pem and
// name-key.pem, replaced if they exist) with common name cn and the given
// SANs, for server and client authentication.
func (p *PKI) Issue(name, cn string, ips []net.IP, dns []string) (Pair, error) {
	return p.issue(p.caCert, p.caKey, name, cn, ips, dns)
}

func (p *PKI) issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name, cn string, ips []net.IP, dns []string) (Pair, error) {
	p.mu.Lock()
	p.serial++
	serial := big.NewInt(p.serial)
	p.mu.Unlock()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"cairn tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
		DNSNames:     dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return Pair{}, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Pair{}, err
	}
	pair := Pair{Cert: filepath.Join(p.Dir, name+".pem"), Key: filepath.Join(p.Dir, name+"-key.pem"), Serial: serial}
	if err := writePEM(pair.Key, "EC PRIVATE KEY", kb); err != nil {
		return Pair{}, err
	}
	if err := writePEM(pair.Cert, "CERTIFICATE", der); err != nil {
		return Pair{}, err
	}
	return pair, nil
}

// Revoke adds serial to the CRL and rewrites CRL and CRLDER.
func (p *PKI) Revoke(serial *big.Int) error {
	p.mu.Lock()
	p.revoked = append(p.revoked, serial)
	p.serial++
	number := big.NewInt(p.serial)
	var entries []x509.RevocationListEntry
	for _, s := range p.revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	p.mu.Unlock()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                time.Now().Add(-time.Hour),
		NextUpdate:                time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, p.caCert, p.caKey)
	if err != nil {
		return err
	}
	if err := writeFile(p.CRLDER, der); err != nil {
		return err
	}
	return writePEM(p.CRL, "X509 CRL", der)
}

func selfSigned(cn string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func writePEM(path, typ string, der []byte) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// writeFile replaces path atomically, as an operator rotating files should.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("testcerts: %w", err)
	}
	return os.Rename(tmp, path)
}
