package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
)

// Resolver returns the resolver DNS SRV discovery uses: the system's for
// "", or one that sends every query to the DNS server at addr
// ("host:port", UDP then TCP), such as a test's. Host names found in
// /etc/hosts resolve from it first either way, as Go's resolver does.
func Resolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// SRVService is the SRV service etcd queries for scheme ("https" or
// "http"): etcd-server-ssl or etcd-server, with "-<serviceName>" appended
// when --discovery-srv-name is set (etcd's embed GetDNSClusterNames).
func SRVService(scheme, serviceName string) string {
	s := "etcd-server"
	if scheme == "https" {
		s = "etcd-server-ssl"
	}
	if serviceName != "" {
		s += "-" + serviceName
	}
	return s
}

// SRVCluster finds the bootstrap members in the SRV records of domain, as
// etcd's --discovery-srv: it queries _etcd-server-ssl[-serviceName]._tcp.
// <domain> for https peers and _etcd-server[-serviceName]._tcp.<domain>
// for http peers and combines the two. The record whose target and port
// resolve to one of apurls (this member's advertised peer URLs) is this
// member, named name; the others are named "0", "1", ... in order. It
// returns "name=scheme://target:port" entries (as etcd's
// srv.GetCluster), or an error when neither query found a member, or
// "cannot find local etcd member" when none was this one.
func SRVCluster(ctx context.Context, lg *slog.Logger, r *net.Resolver, domain, serviceName, name string, apurls []url.URL) ([]string, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	var cluster []string
	tempName := 0
	var errs []error
	for _, scheme := range []string{"https", "http"} {
		service := SRVService(scheme, serviceName)
		parts, err := srvCluster(ctx, r, scheme, service, name, domain, apurls, &tempName)
		lg.Info("get cluster for "+strings.TrimSuffix(service, "-"+serviceName)+" SRV", "service-scheme", scheme,
			"service-name", service, "server-name", name, "discovery-srv", domain, "found-cluster", parts, "error", err)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cluster = append(cluster, parts...)
	}
	if len(cluster) == 0 {
		return nil, errors.Join(errs...)
	}
	found := false
	for _, p := range cluster {
		if n, _, _ := strings.Cut(p, "="); n == name {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("cannot find local etcd member %q in SRV records", name)
	}
	return cluster, nil
}

// srvCluster is etcd's client/pkg srv.GetCluster for one service, with the
// name counter shared between the two services.
func srvCluster(ctx context.Context, r *net.Resolver, scheme, service, name, domain string, apurls []url.URL, tempName *int) ([]string, error) {
	self := map[string]url.URL{}
	for _, u := range apurls {
		addr, err := resolveTCP(ctx, r, u.Host)
		if err != nil {
			return nil, fmt.Errorf("error querying DNS SRV records for _%s %w", service, err)
		}
		self[addr] = u
	}
	_, srvs, err := r.LookupSRV(ctx, service, "tcp", domain)
	if err != nil {
		return nil, fmt.Errorf("error querying DNS SRV records for _%s %w", service, err)
	}
	var parts []string
	for _, srv := range srvs {
		port := fmt.Sprintf("%d", srv.Port)
		addr, terr := resolveTCP(ctx, r, net.JoinHostPort(srv.Target, port))
		if terr != nil {
			err = terr
			continue
		}
		n := ""
		u, ok := self[addr]
		if ok {
			n = name
		}
		if n == "" {
			n = fmt.Sprintf("%d", *tempName)
			*tempName++
		}
		// SRV targets end with a dot; URLs do not.
		host := net.JoinHostPort(strings.TrimSuffix(srv.Target, "."), port)
		if ok && u.Scheme != scheme {
			err = fmt.Errorf("bootstrap at %s from DNS for %s has scheme mismatch with expected peer %s", scheme+"://"+host, service, u.String())
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%s://%s", n, scheme, host))
	}
	if len(parts) == 0 {
		if err == nil {
			err = fmt.Errorf("no SRV records")
		}
		return nil, fmt.Errorf("error querying DNS SRV records for _%s %w", service, err)
	}
	return parts, nil
}

// resolveTCP is net.ResolveTCPAddr("tcp", hostport) through r: the first
// address, IPv4 preferred, as "ip:port".
func resolveTCP(ctx context.Context, r *net.Resolver, hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip != nil {
		return net.JoinHostPort(ip.String(), port), nil
	}
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("no address for %s", host)
	}
	pick := ips[0].IP
	for _, ip := range ips {
		if ip.IP.To4() != nil {
			pick = ip.IP
			break
		}
	}
	return net.JoinHostPort(pick.String(), port), nil
}
