package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// v2RequestTimeout bounds each request but a watch, as etcd's
// client.DefaultRequestTimeout.
const v2RequestTimeout = 5 * time.Second

// v2MaxBody bounds a v2 keys response read into memory: a discovery
// directory holds a handful of members.
const v2MaxBody = 4 << 20

// v2Node is a node of the v2 keys API's JSON.
type v2Node struct {
	Key           string    `json:"key"`
	Value         string    `json:"value"`
	Dir           bool      `json:"dir"`
	Nodes         []*v2Node `json:"nodes"`
	CreatedIndex  uint64    `json:"createdIndex"`
	ModifiedIndex uint64    `json:"modifiedIndex"`
}

// v2Response is a successful v2 keys response; Index is its X-Etcd-Index.
type v2Response struct {
	Action string  `json:"action"`
	Node   *v2Node `json:"node"`
	Index  uint64  `json:"-"`
}

// V2Error is an error response of the v2 keys API; its message is the one
// etcd's client/v2 Error gives, which etcd's v2 discovery passes on.
type V2Error struct {
	Code    int    `json:"errorCode"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Index   uint64 `json:"index"`
}

func (e V2Error) Error() string {
	return fmt.Sprintf("%v: %v (%v) [%v]", e.Code, e.Message, e.Cause, e.Index)
}

// v2 error codes discovery tells apart (etcd's v2error).
const (
	v2KeyNotFound = 100
	v2NodeExist   = 105
)

// errV2Unavailable marks a request that failed for want of the server
// (connection refused, 5xx): retried, as etcd's ClusterError.
var errV2Unavailable = errors.New("discovery: service unavailable")

// errV2InvalidJSON is an answer that is not the v2 keys API's JSON
// (etcd's client.ErrInvalidJSON).
var errV2InvalidJSON = errors.New("client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint")

// V2Client speaks the part of the v2 keys API discovery uses, over plain
// HTTP(S), to Endpoint (scheme://host[:port], no path).
type V2Client struct {
	Endpoint string
	HTTP     *http.Client
}

// NewV2Client is a client of endpoint through proxy (etcd
// --discovery-proxy; "" for none, as HTTP_PROXY is not consulted either).
func NewV2Client(endpoint, proxy string) (*V2Client, error) {
	pf, err := proxyFunc(proxy)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               pf,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
	}
	return &V2Client{Endpoint: strings.TrimSuffix(endpoint, "/"), HTTP: &http.Client{Transport: tr}}, nil
}

// proxyFunc parses --discovery-proxy as etcd's v2discovery newProxyFunc
// does: a URL without an http(s) scheme is read as "http://" + it.
func proxyFunc(proxy string) (func(*http.Request) (*url.URL, error), error) {
	if proxy == "" {
		return nil, nil
	}
	u, err := url.Parse(proxy)
	if err != nil || !strings.HasPrefix(u.Scheme, "http") {
		var err2 error
		if u, err2 = url.Parse("http://" + proxy); err2 == nil {
			err = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid proxy address %q: %v", proxy, err)
	}
	return http.ProxyURL(u), nil
}

// do sends one request for key (a path such as /v2/keys/discovery/<t>/x)
// with query q and form body (nil for none).
func (c *V2Client) do(ctx context.Context, method, key string, q url.Values, form url.Values) (*v2Response, error) {
	u := c.Endpoint + (&url.URL{Path: path.Join("/", key)}).EscapedPath()
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", errV2Unavailable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, v2MaxBody))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errV2Unavailable, err)
	}
	switch {
	case resp.StatusCode/100 == 5:
		return nil, fmt.Errorf("%w: %s %s: %s", errV2Unavailable, method, u, resp.Status)
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		var r v2Response
		if len(b) == 0 || json.Unmarshal(b, &r) != nil || r.Node == nil {
			return nil, errV2InvalidJSON
		}
		if h := resp.Header.Get("X-Etcd-Index"); h != "" {
			if r.Index, err = strconv.ParseUint(h, 10, 64); err != nil {
				return nil, err
			}
		}
		return &r, nil
	default:
		var e V2Error
		if json.Unmarshal(b, &e) != nil || e.Code == 0 {
			return nil, errV2InvalidJSON
		}
		return nil, e
	}
}

// Get reads key; Create writes it only if it does not exist
// (prevExist=false); Watch waits for the first change of key (or below it,
// with recursive) at or after waitIndex.
func (c *V2Client) Get(ctx context.Context, key string) (*v2Response, error) {
	ctx, cancel := context.WithTimeout(ctx, v2RequestTimeout)
	defer cancel()
	return c.do(ctx, http.MethodGet, key, nil, nil)
}

func (c *V2Client) Create(ctx context.Context, key, value string) (*v2Response, error) {
	ctx, cancel := context.WithTimeout(ctx, v2RequestTimeout)
	defer cancel()
	return c.do(ctx, http.MethodPut, key, url.Values{"prevExist": {"false"}}, url.Values{"value": {value}})
}

func (c *V2Client) Watch(ctx context.Context, key string, waitIndex uint64, recursive bool) (*v2Response, error) {
	q := url.Values{"wait": {"true"}, "waitIndex": {strconv.FormatUint(waitIndex, 10)}}
	if recursive {
		q.Set("recursive", "true")
	}
	return c.do(ctx, http.MethodGet, key, q, nil)
}

// SplitV2URL splits a discovery URL (http://host:port/v2/keys/discovery/<token>)
// into the endpoint (http://host:port) and the directory's key path
// (/v2/keys/discovery/<token>), as etcd's v2discovery does.
func SplitV2URL(durl string) (endpoint, dir string, err error) {
	u, err := url.Parse(durl)
	if err != nil {
		return "", "", err
	}
	dir = u.Path
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "", "", "", ""
	return u.String(), dir, nil
}

// JoinV2 registers this member (memberID, and self as SelfValue gives it)
// in the v2 discovery directory durl, through proxy if set, and waits for
// the directory's _config/size members, as etcd 3.5's
// v2discovery.JoinCluster; it returns them in --initial-cluster form. It
// fails with ErrFullCluster, ErrDuplicateID (this ID registered already),
// ErrDuplicateName, ErrBadSizeKey, ErrBadDiscoveryEndpoint, or the v2
// error of a missing size key as etcd 3.5 reports it ("100: Key not found
// (...)"); an unreachable service is retried with etcd's backoff until ctx
// ends.
func JoinV2(ctx context.Context, lg *slog.Logger, durl, proxy string, memberID uint64, self string) (string, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	endpoint, dir, err := SplitV2URL(durl)
	if err != nil {
		return "", err
	}
	c, err := NewV2Client(endpoint, proxy)
	if err != nil {
		return "", err
	}
	if proxy != "" {
		lg.Info("running proxy with discovery", "proxy-url", proxy)
	}
	d := &v2discovery{lg: lg.With("discovery-url", durl), c: c, dir: dir, selfKey: path.Join("/", dir, strconv.FormatUint(memberID, 16))}
	return d.join(ctx, self)
}

type v2discovery struct {
	lg      *slog.Logger
	c       *V2Client
	dir     string
	selfKey string
	retries uint
}

func (d *v2discovery) join(ctx context.Context, self string) (string, error) {
	// Fast path: a full cluster fails before registering.
	if _, _, _, err := d.check(ctx); err != nil {
		return "", err
	}
	if err := d.createSelf(ctx, self); err != nil {
		return "", err
	}
	nodes, size, index, err := d.check(ctx)
	if err != nil {
		return "", err
	}
	all, err := d.waitNodes(ctx, nodes, size, index)
	if err != nil {
		return "", err
	}
	values := make([]string, len(all))
	for i, n := range all {
		values[i] = n.Value
	}
	cluster := strings.Join(values, ",")
	if err := checkNames(cluster, int(size), ErrInvalidURL); err != nil {
		return cluster, err
	}
	d.lg.Info("discovery joined cluster successfully", "cluster", cluster)
	return cluster, nil
}

func (d *v2discovery) createSelf(ctx context.Context, self string) error {
	resp, err := d.c.Create(ctx, d.selfKey, self)
	if err != nil {
		var e V2Error
		if errors.As(err, &e) && e.Code == v2NodeExist {
			return ErrDuplicateID
		}
		return err
	}
	// Make sure the registration is visible on the server we talk to.
	_, err = d.c.Watch(ctx, d.selfKey, resp.Node.CreatedIndex, false)
	return err
}

// check reads the size and the registered members, sorted by created
// index, and reports ErrFullCluster when size members registered before
// this one, as etcd's checkCluster.
func (d *v2discovery) check(ctx context.Context) ([]*v2Node, uint64, uint64, error) {
	for {
		nodes, size, index, err := d.checkOnce(ctx)
		if !errors.Is(err, errV2Unavailable) {
			if err == nil {
				d.retries = 0
			}
			return nodes, size, index, err
		}
		d.lg.Warn("failed to get from discovery server", "error", err)
		if err := d.backoff(ctx, "cluster status check"); err != nil {
			return nil, 0, 0, err
		}
	}
}

func (d *v2discovery) checkOnce(ctx context.Context) ([]*v2Node, uint64, uint64, error) {
	configKey := path.Join("/", d.dir, "_config")
	resp, err := d.c.Get(ctx, path.Join(configKey, "size"))
	if errors.Is(err, errV2InvalidJSON) {
		return nil, 0, 0, ErrBadDiscoveryEndpoint
	}
	if err != nil {
		return nil, 0, 0, err
	}
	size, err := strconv.ParseUint(resp.Node.Value, 10, 0)
	if err != nil {
		return nil, 0, 0, ErrBadSizeKey
	}
	resp, err = d.c.Get(ctx, d.dir)
	if err != nil {
		return nil, 0, 0, err
	}
	var nodes []*v2Node
	for _, n := range resp.Node.Nodes {
		if path.Base(n.Key) != path.Base(configKey) {
			nodes = append(nodes, n)
		}
	}
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].CreatedIndex < nodes[j].CreatedIndex })
	for i := range nodes {
		if path.Base(nodes[i].Key) == path.Base(d.selfKey) {
			break
		}
		if uint64(i) >= size-1 {
			return nodes[:size], size, resp.Index, ErrFullCluster
		}
	}
	return nodes, size, resp.Index, nil
}

// waitNodes watches the directory after index until size members are
// known.
func (d *v2discovery) waitNodes(ctx context.Context, nodes []*v2Node, size, index uint64) ([]*v2Node, error) {
	if uint64(len(nodes)) > size {
		nodes = nodes[:size]
	}
	all := append([]*v2Node(nil), nodes...)
	for _, n := range all {
		d.lg.Info("found peer from discovery server", "peer", path.Base(n.Key))
	}
	next := index + 1
	for uint64(len(all)) < size {
		d.lg.Info("found peers from discovery server; waiting for more", "found-peers", len(all), "needed-peers", int(size)-len(all))
		resp, err := d.c.Watch(ctx, d.dir, next, true)
		if errors.Is(err, errV2Unavailable) {
			d.lg.Warn("error while waiting for peers", "error", err)
			if err := d.backoff(ctx, "waiting for other nodes"); err != nil {
				return nil, err
			}
			nodes, size, index, err := d.check(ctx)
			if err != nil {
				return nil, err
			}
			return d.waitNodes(ctx, nodes, size, index)
		}
		if err != nil {
			return nil, err
		}
		next = resp.Node.ModifiedIndex + 1
		if resp.Action == "delete" || resp.Action == "expire" || resp.Action == "compareAndDelete" ||
			path.Base(path.Dir(resp.Node.Key)) == "_config" || path.Base(resp.Node.Key) == "_config" {
			continue
		}
		d.lg.Info("found peer from discovery server", "peer", path.Base(resp.Node.Key))
		all = append(all, resp.Node)
	}
	d.lg.Info("found all needed peers from discovery server", "found-peers", len(all))
	return all, nil
}

func (d *v2discovery) backoff(ctx context.Context, step string) error {
	d.retries++
	shift := min(d.retries, 8)
	wait := time.Duration(1<<shift) * time.Second
	d.lg.Info("retry connecting to discovery service", "reason", step, "backoff", wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("discovery: %w", ctx.Err())
	}
}
