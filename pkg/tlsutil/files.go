package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"time"
)

// stamp identifies one version of a file: a replaced file (rename) has a
// new inode, an overwritten one a new size or modification time.
type stamp struct {
	fi os.FileInfo
}

func (s stamp) same(fi os.FileInfo) bool {
	return s.fi != nil && os.SameFile(s.fi, fi) && s.fi.Size() == fi.Size() && s.fi.ModTime().Equal(fi.ModTime())
}

// watched holds the parsed contents of one or more files and re-parses
// them when any of them changes. The zero value is not usable: see newWatched.
type watched[T any] struct {
	paths []string
	parse func(data [][]byte) (T, error)
	what  string // for logs: "certificate", "CA bundle", "CRL"
	lg    *slog.Logger

	mu struct {
		sync.Mutex
		stamps []stamp
		val    T
		// bad is the stamps of a version that failed to parse, so it is
		// logged once, not on every handshake.
		bad []stamp
	}
}

// newWatched loads paths once; an error names the file that failed.
func newWatched[T any](what string, lg *slog.Logger, parse func([][]byte) (T, error), paths ...string) (*watched[T], error) {
	w := &watched[T]{paths: paths, parse: parse, what: what, lg: lg}
	stamps, val, err := w.load()
	if err != nil {
		return nil, err
	}
	w.mu.stamps, w.mu.val = stamps, val
	return w, nil
}

func (w *watched[T]) load() ([]stamp, T, error) {
	var zero T
	stamps := make([]stamp, len(w.paths))
	data := make([][]byte, len(w.paths))
	for i, p := range w.paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, zero, err
		}
		fi, err := f.Stat()
		if err == nil {
			data[i], err = readAll(f)
		}
		f.Close()
		if err != nil {
			return nil, zero, fmt.Errorf("read %s: %w", p, err)
		}
		stamps[i] = stamp{fi}
	}
	val, err := w.parse(data)
	return stamps, val, err
}

// maxFileBytes bounds what is read from a TLS file: CA bundles and CRLs of
// a large PKI are a few MiB at most.
const maxFileBytes = 64 << 20

func readAll(f *os.File) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err == nil && len(b) > maxFileBytes {
		err = fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	return b, err
}

// get returns the current contents, re-reading the files if one changed
// since the last load. A version that does not load keeps the previous
// one in force.
func (w *watched[T]) get() T {
	// Stat outside the lock: no I/O under it.
	fis := make([]os.FileInfo, len(w.paths))
	for i, p := range w.paths {
		fi, err := os.Stat(p)
		if err != nil {
			// Missing for a moment (a rotation by delete and create):
			// keep what we have.
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.mu.val
		}
		fis[i] = fi
	}
	w.mu.Lock()
	if sameAll(w.mu.stamps, fis) || (w.mu.bad != nil && sameAll(w.mu.bad, fis)) {
		val := w.mu.val
		w.mu.Unlock()
		return val
	}
	w.mu.Unlock()

	// Read outside the lock: handshakes meanwhile use the old version.
	stamps, val, err := w.load()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		bad := make([]stamp, len(fis))
		for i, fi := range fis {
			bad[i] = stamp{fi}
		}
		w.mu.bad = bad
		w.lg.Warn("cannot reload TLS file; keeping the previous version", "what", w.what, "files", w.paths, "error", err)
		return w.mu.val
	}
	w.mu.stamps, w.mu.val, w.mu.bad = stamps, val, nil
	w.lg.Info("reloaded TLS file", "what", w.what, "files", w.paths)
	return val
}

func sameAll(stamps []stamp, fis []os.FileInfo) bool {
	for i := range stamps {
		if !stamps[i].same(fis[i]) {
			return false
		}
	}
	return true
}

// LoadKeyPair reads a certificate (chain) and its private key, as
// tls.LoadX509KeyPair, and checks that the key matches the certificate.
func LoadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	w, err := newWatched("key pair", slog.Default(), parseKeyPair, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return w.get(), nil
}

func parseKeyPair(data [][]byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(data[0], data[1])
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadCertPool reads a PEM bundle of CA certificates. A file without any
// certificate is an error (etcd accepts it and then trusts nothing).
func LoadCertPool(file string) (*x509.CertPool, error) {
	w, err := newWatched("CA bundle", slog.Default(), parseCertPool, file)
	if err != nil {
		return nil, err
	}
	return w.get(), nil
}

func parseCertPool(data [][]byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest, n := data[0], 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}

// CRL is the set of revoked serial numbers of a certificate revocation list.
type CRL struct {
	revoked    map[string]struct{}
	NextUpdate time.Time
}

// LoadCRL reads a CRL file, PEM ("X509 CRL") or DER.
func LoadCRL(file string) (*CRL, error) {
	w, err := newWatched("CRL", slog.Default(), parseCRL, file)
	if err != nil {
		return nil, err
	}
	return w.get(), nil
}

func parseCRL(data [][]byte) (*CRL, error) {
	der := data[0]
	if block, _ := pem.Decode(der); block != nil {
		der = block.Bytes
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	c := &CRL{revoked: make(map[string]struct{}, len(rl.RevokedCertificateEntries)), NextUpdate: rl.NextUpdate}
	for _, e := range rl.RevokedCertificateEntries {
		c.revoked[string(e.SerialNumber.Bytes())] = struct{}{}
	}
	return c, nil
}

// Revoked reports whether serial is on the list.
func (c *CRL) Revoked(serial *big.Int) bool {
	_, ok := c.revoked[string(serial.Bytes())]
	return ok
}

// check fails if any certificate of a verified chain is revoked, as etcd
// checks every certificate the peer sent.
func (c *CRL) check(certs []*x509.Certificate) error {
	for _, cert := range certs {
		if c.Revoked(cert.SerialNumber) {
			return fmt.Errorf("tlsutil: certificate serial %x revoked", cert.SerialNumber.Bytes())
		}
	}
	return nil
}
