package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// registryPrefix is where v3 discovery keeps its tokens (etcd's
// v3discovery discoveryPrefix).
const registryPrefix = "/_etcd/registry"

// V3SizeKey is the key that holds a token's cluster size:
// "/_etcd/registry/<token>/_config/size".
func V3SizeKey(token string) string { return path.Join(registryPrefix, token, "_config/size") }

// v3MembersPrefix is "/_etcd/registry/<token>/members"; a member registers
// under it as members/<member ID in hex>.
func v3MembersPrefix(token string) string { return path.Join(registryPrefix, token, "members") }

// V3Config is the v3 discovery service and token (etcd's
// --discovery-token, --discovery-endpoints and the other --discovery-*
// client flags). Zero durations take etcd's defaults.
type V3Config struct {
	// Token names the cluster to bootstrap; it also seeds the member and
	// cluster IDs, as --initial-cluster-token does.
	Token string
	// Endpoints are the discovery service's gRPC endpoints (host:port or
	// URLs), of an etcd or a Cairn.
	Endpoints []string
	// DialTimeout (default 2 s) bounds connecting; RequestTimeout (5 s)
	// each request; KeepAliveTime (2 s) and KeepAliveTimeout (6 s) are the
	// gRPC client keepalive.
	DialTimeout, RequestTimeout     time.Duration
	KeepAliveTime, KeepAliveTimeout time.Duration
	// SecureTransport connects with TLS even without a certificate or CA
	// file (etcd's --discovery-insecure-transport=false; its default, true,
	// connects without TLS unless a TLS file is given);
	// InsecureSkipVerify accepts any server certificate.
	SecureTransport, InsecureSkipVerify bool
	// CertFile, KeyFile: a client certificate; CACertFile: the CA bundle
	// that verifies the service.
	CertFile, KeyFile, CACertFile string
	// Username ("user" or "user:password") and Password authenticate to
	// the service.
	Username, Password string
}

// Defaults of the --discovery-* client flags, as etcd's embed.
const (
	DefaultDialTimeout      = 2 * time.Second
	DefaultRequestTimeout   = 5 * time.Second
	DefaultKeepAliveTime    = 2 * time.Second
	DefaultKeepAliveTimeout = 6 * time.Second
)

// ClientConfig is the clientv3 configuration c describes.
func (c V3Config) ClientConfig() (*clientv3.Config, error) {
	user, pass := c.Username, c.Password
	if u, p, ok := strings.Cut(user, ":"); ok && pass == "" {
		user, pass = u, p
	}
	spec := clientv3.ConfigSpec{
		Endpoints:        c.Endpoints,
		DialTimeout:      orDefault(c.DialTimeout, DefaultDialTimeout),
		KeepAliveTime:    orDefault(c.KeepAliveTime, DefaultKeepAliveTime),
		KeepAliveTimeout: orDefault(c.KeepAliveTimeout, DefaultKeepAliveTimeout),
		Secure: &clientv3.SecureConfig{Cert: c.CertFile, Key: c.KeyFile, Cacert: c.CACertFile,
			InsecureTransport: !c.SecureTransport, InsecureSkipVerify: c.InsecureSkipVerify},
		Auth: &clientv3.AuthConfig{Username: user, Password: pass},
	}
	cfg, err := clientv3.NewClientConfig(&spec, zap.NewNop())
	if err != nil {
		return nil, err
	}
	cfg.Logger = zap.NewNop()
	return cfg, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// JoinV3 registers this member (memberID, and self as SelfValue gives it)
// under cfg.Token and waits until the token's _config/size members have
// registered, as etcd 3.7's v3discovery.JoinCluster: it fails at once with
// ErrFullCluster when size members registered first, with ErrSizeNotFound
// or ErrBadSizeKey for a token without a valid size; it retries an
// unreachable service with etcd's backoff (2 s doubling to 256 s) until
// ctx ends. The members are the first size to register (by create
// revision). It returns them in --initial-cluster form. Unlike etcd 3.7,
// which builds a broken cluster then, a name registered twice fails with
// ErrDuplicateName, as etcd's v2 discovery does.
func JoinV3(ctx context.Context, lg *slog.Logger, cfg V3Config, memberID uint64, self string) (string, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
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
	d := &v3discovery{lg: lg.With("discovery-token", cfg.Token, "discovery-endpoints", strings.Join(cfg.Endpoints, ",")),
		c: c, token: cfg.Token, selfKey: path.Join(v3MembersPrefix(cfg.Token), strconv.FormatUint(memberID, 16)),
		timeout: orDefault(cfg.RequestTimeout, DefaultRequestTimeout)}
	return d.join(ctx, self)
}

type v3discovery struct {
	lg      *slog.Logger
	c       *clientv3.Client
	token   string
	selfKey string
	timeout time.Duration
	retries uint
}

// v3member is one registered member.
type v3member struct {
	key, value string
	createRev  int64
}

func (d *v3discovery) join(ctx context.Context, self string) (string, error) {
	// Fast path: a full cluster fails before registering.
	if _, _, _, err := d.check(ctx); err != nil {
		return "", err
	}
	if err := d.register(ctx, self); err != nil {
		return "", err
	}
	members, size, rev, err := d.check(ctx)
	if err != nil {
		return "", err
	}
	for len(members) < size {
		if members, err = d.wait(ctx, members, size, rev); err != nil {
			return "", err
		}
		// The watch ended early (the service lost its leader, or
		// compacted past rev): read the members again, at a fresh
		// revision, rather than watch from the old one as etcd does.
		if len(members) < size {
			if members, size, rev, err = d.check(ctx); err != nil {
				return "", err
			}
		}
	}
	if len(members) > size {
		members = members[:size]
	}
	values := make([]string, len(members))
	for i, m := range members {
		values[i] = m.value
	}
	cluster := strings.Join(values, ",")
	if err := checkNames(cluster, size, ErrInvalidPeerURL); err != nil {
		return cluster, err
	}
	d.lg.Info("discovery joined cluster successfully", "cluster", cluster)
	return cluster, nil
}

// size reads _config/size.
func (d *v3discovery) size(ctx context.Context) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	resp, err := d.c.Get(rctx, V3SizeKey(d.token))
	if err != nil {
		d.lg.Warn("failed to get cluster size from discovery service", "clusterSizeKey", V3SizeKey(d.token), "error", err)
		return 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, ErrSizeNotFound
	}
	n, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 0)
	if err != nil || n <= 0 {
		return 0, ErrBadSizeKey
	}
	return int(n), nil
}

// check reads the size and the registered members (sorted by create
// revision) and reports ErrFullCluster when size members registered before
// this one, as etcd's checkCluster.
func (d *v3discovery) check(ctx context.Context) ([]v3member, int, int64, error) {
	for {
		members, size, rev, err := d.checkOnce(ctx)
		if err == nil || errors.Is(err, ErrSizeNotFound) || errors.Is(err, ErrBadSizeKey) || errors.Is(err, ErrFullCluster) {
			return members, size, rev, err
		}
		if err := d.backoff(ctx, "cluster status check"); err != nil {
			return nil, 0, 0, err
		}
	}
}

func (d *v3discovery) checkOnce(ctx context.Context) ([]v3member, int, int64, error) {
	size, err := d.size(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	prefix := v3MembersPrefix(d.token)
	resp, err := d.c.Get(rctx, prefix, clientv3.WithPrefix())
	if err != nil {
		d.lg.Warn("failed to get cluster members from discovery service", "membersKeyPrefix", prefix, "error", err)
		return nil, 0, 0, err
	}
	d.retries = 0
	var members []v3member
	for _, kv := range resp.Kvs {
		members = d.add(members, string(kv.Key), string(kv.Value), kv.CreateRevision)
	}
	for i, m := range members {
		if m.key == d.selfKey {
			break
		}
		if i >= size-1 {
			return members, size, resp.Header.Revision, ErrFullCluster
		}
	}
	return members, size, resp.Header.Revision, nil
}

// add appends a registered member, skipping malformed and repeated ones
// with a warning as etcd does, and keeps members sorted by create revision.
func (d *v3discovery) add(members []v3member, key, value string, rev int64) []v3member {
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	switch {
	case !strings.HasPrefix(key, v3MembersPrefix(d.token)):
		d.lg.Warn("invalid peer registry key", "memberKey", key, "memberInfo", value)
		return members
	case !strings.ContainsRune(value, '='):
		d.lg.Warn("invalid peer info returned from discovery service", "memberKey", key, "memberInfo", value)
		return members
	}
	for _, m := range members {
		if m.key == key {
			d.lg.Warn("found duplicate peer from discovery service", "memberKey", key, "memberInfo", value)
			return members
		}
	}
	d.lg.Info("found peer from discovery service", "memberKey", key, "memberInfo", value)
	members = append(members, v3member{key: key, value: value, createRev: rev})
	sort.SliceStable(members, func(i, j int) bool { return members[i].createRev < members[j].createRev })
	return members
}

func (d *v3discovery) register(ctx context.Context, self string) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, d.timeout)
		_, err := d.c.Put(rctx, d.selfKey, self)
		cancel()
		if err == nil {
			d.retries = 0
			d.lg.Info("register member itself successfully", "memberKey", d.selfKey, "memberInfo", self)
			return nil
		}
		d.lg.Warn("failed to register members itself to the discovery service", "memberKey", d.selfKey, "error", err)
		if err := d.backoff(ctx, "register member itself"); err != nil {
			return err
		}
	}
}

// wait watches the members prefix after rev until size members are known
// or the watch ends (then the caller watches again).
func (d *v3discovery) wait(ctx context.Context, members []v3member, size int, rev int64) ([]v3member, error) {
	d.lg.Info("waiting for peers from discovery service", "clusterSize", size, "found-peers", len(members))
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wresp := range d.c.Watch(wctx, v3MembersPrefix(d.token), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		for _, ev := range wresp.Events {
			if ev.Type == clientv3.EventTypePut {
				members = d.add(members, string(ev.Kv.Key), string(ev.Kv.Value), ev.Kv.CreateRevision)
			}
		}
		if len(members) >= size {
			d.lg.Info("found all needed peers from discovery service", "clusterSize", size, "found-peers", len(members))
			return members, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return members, d.backoff(ctx, "watch peers")
}

// backoff sleeps 2^retries seconds (at most 256), as etcd's
// logAndBackoffForRetry, or returns ctx's error.
func (d *v3discovery) backoff(ctx context.Context, step string) error {
	d.retries++
	shift := min(d.retries, 8)
	wait := time.Duration(1<<shift) * time.Second
	d.lg.Warn("retry connecting to discovery service", "reason", step, "backoff", wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("discovery: %w", ctx.Err())
	}
}
