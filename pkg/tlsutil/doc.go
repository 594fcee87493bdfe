// Package tlsutil builds the crypto/tls configurations of Cairn's listeners
// and peer connections from etcd's TLS settings (etcd's transport.TLSInfo:
// --cert-file, --trusted-ca-file, --client-cert-auth, --client-crl-file, ...),
// with etcd's semantics and none of its code.
//
// Certificates, keys, CA bundles and CRLs are files that operators replace
// under a running member. A server configuration checks the files on every
// handshake (one stat each) and re-reads the ones that changed, as etcd
// re-reads them on every handshake; a file that no longer parses (a
// rotation caught half-written) leaves the last good contents in force and
// is logged. Start-up, by contrast, fails on any file that does not load.
//
// Usage:
//
//	info := tlsutil.Info{CertFile: "server.pem", KeyFile: "server-key.pem", TrustedCAFile: "ca.pem", ClientCertAuth: true}
//	srv, err := info.ServerConfig() // for tls.Server / tls.NewListener
//	cli, err := info.ClientConfig() // call cli() per connection
//
// Behaviour that differs from etcd, on purpose: a CRL may be PEM or DER
// (etcd reads DER only); the CRL is checked during the handshake, so a
// revoked client gets a TLS alert rather than a closed connection; CA
// bundles are re-read on change too (etcd reads them once).
package tlsutil
