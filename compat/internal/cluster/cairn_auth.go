package cluster

import (
	"time"

	cairnembed "github.com/cairn-kv/cairn/embed"
)

// setCairnAuth sets Cairn's auth configuration from a: etcd's
// --auth-token, --auth-token-ttl (seconds) and --bcrypt-cost, under the
// same embed.Config names as etcd's. Zero values keep Cairn's defaults.
func setCairnAuth(cfg *cairnembed.Config, a *Auth) error {
	if a.Token != "" {
		cfg.AuthToken = a.Token
	}
	if a.TokenTTL != 0 {
		cfg.AuthTokenTTL = time.Duration(a.TokenTTL) * time.Second
	}
	if a.BcryptCost != 0 {
		cfg.BcryptCost = int(a.BcryptCost)
	}
	return nil
}
