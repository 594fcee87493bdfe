package discovery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// V2DiscoveryDir is the v2 keys directory NewV2Token creates tokens in, as
// etcd's self-hosted discovery guide does (/v2/keys/discovery/<token>).
const V2DiscoveryDir = "/v2/keys/discovery"

// NewToken is a fresh random token: 32 hexadecimal digits, as
// discovery.etcd.io handed out.
func NewToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// NewV2Token creates a new v2 discovery directory for a cluster of size
// members on the v2 keys API server at endpoint (http://host:port), by
// writing its _config/size, and returns the discovery URL to pass to each
// member's --discovery: <endpoint>/v2/keys/discovery/<token>.
func NewV2Token(ctx context.Context, endpoint, proxy string, size int) (string, error) {
	if size <= 0 {
		return "", fmt.Errorf("discovery: size must be positive, got %d", size)
	}
	c, err := NewV2Client(strings.TrimSuffix(endpoint, "/"), proxy)
	if err != nil {
		return "", err
	}
	durl := c.Endpoint + V2DiscoveryDir + "/" + NewToken()
	_, dir, err := SplitV2URL(durl)
	if err != nil {
		return "", err
	}
	if _, err := c.Create(ctx, dir+"/_config/size", strconv.Itoa(size)); err != nil {
		return "", fmt.Errorf("discovery: create %s/_config/size on %s: %w", dir, endpoint, err)
	}
	return durl, nil
}

// NewV3Token creates a new v3 discovery token for a cluster of size
// members on the etcd v3 API service cfg describes (cfg.Token is ignored),
// by writing /_etcd/registry/<token>/_config/size, and returns the token to
// pass to each member's --discovery-token.
func NewV3Token(ctx context.Context, cfg V3Config, size int) (string, error) {
	if size <= 0 {
		return "", fmt.Errorf("discovery: size must be positive, got %d", size)
	}
	ccfg, err := cfg.ClientConfig()
	if err != nil {
		return "", err
	}
	ccfg.Context = ctx
	c, err := clientv3.New(*ccfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	token := NewToken()
	key := V3SizeKey(token)
	rctx, cancel := context.WithTimeout(ctx, orDefault(cfg.RequestTimeout, DefaultRequestTimeout))
	defer cancel()
	resp, err := c.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, strconv.Itoa(size))).Commit()
	if err != nil {
		return "", fmt.Errorf("discovery: write %s: %w", key, err)
	}
	if !resp.Succeeded {
		return "", errors.New("discovery: " + key + " exists already")
	}
	return token, nil
}
