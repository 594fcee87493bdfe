package embed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/cairn-kv/cairn/discovery"
	"github.com/cairn-kv/cairn/membership"
	"github.com/cairn-kv/cairn/storage"
)

// DiscoveryConfig says how a new member finds the cluster's initial
// members when InitialCluster is not given: by a v2 discovery URL, a v3
// discovery token, or DNS SRV records (at most one; see package
// discovery). Discovery runs on a member's first start only, before it
// creates its data dir; a member with data restarts with the members it
// stored. The zero value turns discovery off.
type DiscoveryConfig struct {
	// URL is a v2 discovery URL (etcd --discovery), a directory of a v2
	// keys API server such as http://host:2379/v2/keys/discovery/<token>.
	// It also seeds the member and cluster IDs, in place of
	// InitialClusterToken, as in etcd 3.5.
	URL string
	// Proxy is the HTTP proxy to reach URL through (etcd --discovery-proxy).
	Proxy string
	// V3 is the v3 discovery service and token (etcd --discovery-token,
	// --discovery-endpoints, --discovery-*); on when V3.Endpoints is set.
	// The token also seeds the IDs, in place of InitialClusterToken.
	V3 discovery.V3Config
	// SRV is the DNS domain whose SRV records list the initial members
	// (etcd --discovery-srv); SRVName is appended to the service names
	// queried, _etcd-server-ssl-<SRVName>._tcp and _etcd-server-<SRVName>._tcp
	// (etcd --discovery-srv-name).
	SRV, SRVName string
	// SRVResolver is the DNS server ("host:port") SRV queries go to ("":
	// the system's resolver). Cairn's own, for tests and split-horizon DNS.
	SRVResolver string
}

// ErrConflictBootstrapFlags is etcd 3.7's error for more than one of
// --initial-cluster, --discovery-endpoints and --discovery-srv.
var ErrConflictBootstrapFlags = errors.New(`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery-endpoints" or "discovery-srv"`)

// errConflictBootstrapFlagsV2 is etcd 3.5's, when --discovery is one of them.
var errConflictBootstrapFlagsV2 = errors.New(`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"`)

// enabled reports whether a discovery method is set.
func (d *DiscoveryConfig) enabled() bool {
	return d.URL != "" || len(d.V3.Endpoints) > 0 || d.SRV != ""
}

// validateDiscovery checks the bootstrap settings as etcd's Config.Validate:
// one of InitialCluster (as given, before defaults), SRV, V3 and URL.
func (c *Config) validateDiscovery() error {
	d := &c.Discovery
	n := 0
	for _, set := range []bool{c.InitialCluster != "", d.SRV != "", len(d.V3.Endpoints) > 0, d.URL != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		if d.URL != "" {
			return errConflictBootstrapFlagsV2
		}
		return ErrConflictBootstrapFlags
	}
	if (d.V3.Token != "") != (len(d.V3.Endpoints) > 0) {
		return errors.New("both --discovery-token and --discovery-endpoints must be set")
	}
	for _, ep := range d.V3.Endpoints {
		if strings.TrimSpace(ep) == "" {
			return errors.New("--discovery-endpoints must not contain empty endpoints")
		}
	}
	return nil
}

// discover sets InitialCluster (and, for v2 and v3 discovery,
// InitialClusterToken) from the discovery service, when discovery is on
// and the data dir holds no member yet. It runs before anything writes to
// the data dir, so a failure leaves it as it was; once it succeeds it keeps
// the cluster found in the data dir (storage.SaveDiscovered), and a start
// that stops before the member is stored bootstraps that cluster when run
// again.
func (s *Server) discover() error {
	d := &s.cfg.Discovery
	if !d.enabled() {
		return nil
	}
	self := selfCluster(s.cfg.Name, s.cfg.InitialAdvertisePeerURLs)
	if storage.HasData(s.cfg.Dir) {
		s.lg.Warn("discovery is ignored since the member has data; restarting with the members it stored", "data-dir", s.cfg.Dir)
		s.cfg.InitialCluster = self
		s.noBootstrap = true
		return nil
	}
	// A first start that stopped after discovery and before its member
	// was stored: bootstrap the cluster discovery found then. Discovering
	// again would find this member registered already (a duplicate ID).
	if cluster, token, ok, err := storage.Discovered(s.cfg.Dir); err != nil {
		return err
	} else if ok {
		s.lg.Warn("resuming a first start that stopped after discovery, with the initial cluster discovered then", "data-dir", s.cfg.Dir, "initial-cluster", cluster)
		s.cfg.InitialCluster, s.cfg.InitialClusterToken = cluster, token
		return nil
	}
	if s.cfg.InitialClusterState == ClusterStateExisting && (d.URL != "" || len(d.V3.Endpoints) > 0) {
		// etcd never registers a member joining a running cluster; with
		// no --initial-cluster it finds no peer to ask, and says so.
		return errors.New("cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs")
	}
	ctx := context.Background()
	peerURLs := urlStrings(s.cfg.InitialAdvertisePeerURLs)
	value := discovery.SelfValue(s.cfg.Name, s.cfg.InitialAdvertisePeerURLs)
	var cluster, token string
	var err error
	switch {
	case len(d.V3.Endpoints) > 0:
		s.lg.Info("bootstrapping cluster using v3 discovery", "discovery-token", d.V3.Token, "discovery-endpoints", strings.Join(d.V3.Endpoints, ","))
		token = d.V3.Token
		cluster, err = discovery.JoinV3(ctx, s.lg, d.V3, membership.MemberID(peerURLs, token), value)
	case d.URL != "":
		s.lg.Info("bootstrapping cluster using v2 discovery", "discovery-url", d.URL, "discovery-proxy", d.Proxy)
		token = d.URL
		cluster, err = discovery.JoinV2(ctx, s.lg, d.URL, d.Proxy, membership.MemberID(peerURLs, token), value)
	default:
		token = s.cfg.InitialClusterToken
		var parts []string
		parts, err = discovery.SRVCluster(ctx, s.lg, discovery.Resolver(d.SRVResolver), d.SRV, d.SRVName, s.cfg.Name, s.cfg.InitialAdvertisePeerURLs)
		if err != nil {
			s.lg.Warn("failed to resolve during SRV discovery", "error", err)
			return err
		}
		cluster = strings.Join(parts, ",")
		for _, p := range parts {
			s.lg.Info("got bootstrap from DNS for etcd-server", "node", p)
		}
		// As etcd: https peers found by SRV, verified against the system's
		// roots, present a certificate for the domain.
		if dial := s.tls.peerDial; dial != nil && strings.Contains(cluster, "https://") && s.cfg.PeerTLS.TrustedCAFile == "" {
			s.tls.peerDial = func() *tls.Config {
				c := dial().Clone()
				c.ServerName = d.SRV
				return c
			}
		}
	}
	if err != nil {
		derr := &discovery.Error{Op: "join", Err: err}
		switch {
		case errors.Is(err, discovery.ErrDuplicateID):
			s.lg.Warn("member has been registered with discovery service", "name", s.cfg.Name, "error", err)
			s.lg.Warn("but could not find valid cluster configuration", "data-dir", s.cfg.Dir)
			s.lg.Warn("check data dir if previous bootstrap succeeded")
			s.lg.Warn("or use a new discovery token if previous bootstrap failed")
		case errors.Is(err, discovery.ErrDuplicateName):
			s.lg.Warn("member with duplicated name has already been registered", "error", err)
			s.lg.Warn("cURL the discovery token URL for details")
			s.lg.Warn("do not reuse discovery token; generate a new one to bootstrap a cluster")
		default:
			s.lg.Warn("failed to bootstrap; discovery token was already used", "error", derr)
			s.lg.Warn("do not reuse discovery token; generate a new one to bootstrap a cluster")
		}
		return derr
	}
	if d.URL != "" || len(d.V3.Endpoints) > 0 {
		if err := discovery.CheckDuplicateURL(cluster); err != nil {
			return err
		}
	}
	if _, err := ParseInitialCluster(cluster); err != nil {
		return fmt.Errorf("discovered cluster %q: %w", cluster, err)
	}
	// Kept before anything else goes into the data dir (see Discovered).
	if err := storage.SaveDiscovered(s.cfg.Dir, cluster, token); err != nil {
		return err
	}
	s.cfg.InitialCluster, s.cfg.InitialClusterToken = cluster, token
	s.lg.Info("discovered the initial cluster", "initial-cluster", cluster)
	return nil
}

// selfCluster is the one-member --initial-cluster of name.
func selfCluster(name string, peerURLs []url.URL) string {
	parts := make([]string, len(peerURLs))
	for i, u := range peerURLs {
		parts[i] = name + "=" + u.String()
	}
	return strings.Join(parts, ",")
}
