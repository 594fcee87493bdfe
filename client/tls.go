package client

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// tlsFiles builds the TLS configuration that CACert, Cert, Key and
// ServerName describe, or returns c.TLS (nil when none is set). The files
// are read once, when the client is created.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if c.CACert == "" && c.Cert == "" && c.Key == "" && c.ServerName == "" {
		return c.TLS, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS != nil {
		cfg = c.TLS.Clone()
	}
	if c.ServerName != "" {
		cfg.ServerName = c.ServerName
	}
	if c.CACert != "" {
		b, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, &FieldError{Source: "config", Field: "CACert", Reason: err.Error()}
		}
		pool := x509.NewCertPool()
		n := 0
		for rest := b; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, &FieldError{Source: "config", Field: "CACert", Reason: fmt.Sprintf("%s: %v", c.CACert, err)}
			}
			pool.AddCert(cert)
			n++
		}
		if n == 0 {
			return nil, &FieldError{Source: "config", Field: "CACert", Reason: c.CACert + ": no PEM certificate found"}
		}
		cfg.RootCAs = pool
	}
	if c.Cert != "" {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, &FieldError{Source: "config", Field: "Cert", Reason: fmt.Sprintf("%s and Key %s: %v", c.Cert, c.Key, err)}
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
