package transport

import (
	"context"
	"crypto/tls"
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// creds returns the transport credentials of a connection to a peer URL
// of the given scheme: TLS for https, with the configuration tlsCfg
// yields for each new connection (the current peer client certificate
// and CA bundle, which may be rotated under a running member); none for
// http. An https peer without a configuration is verified against the
// system's roots.
func creds(scheme string, tlsCfg func() *tls.Config) credentials.TransportCredentials {
	if scheme != "https" {
		return insecure.NewCredentials()
	}
	if tlsCfg == nil {
		tlsCfg = func() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
	}
	return &reloadingTLS{cfg: tlsCfg, TransportCredentials: credentials.NewTLS(tlsCfg())}
}

// reloadingTLS is gRPC's TLS credentials with a fresh configuration per
// handshake, so a reconnect after a certificate rotation presents the new
// certificate.
type reloadingTLS struct {
	cfg func() *tls.Config
	credentials.TransportCredentials
}

func (c *reloadingTLS) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(c.cfg()).ClientHandshake(ctx, authority, conn)
}

func (c *reloadingTLS) Clone() credentials.TransportCredentials {
	return &reloadingTLS{cfg: c.cfg, TransportCredentials: c.TransportCredentials.Clone()}
}
