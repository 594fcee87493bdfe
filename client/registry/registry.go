package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cairn-kv/cairn/client"
)

// DefaultPrefix is the key prefix under which services are registered.
const DefaultPrefix = "/cairn/services/"

// ErrInvalidService is returned by Register for a Service without a name,
// ID or address, or whose name or ID contains '/'.
var ErrInvalidService = errors.New("registry: invalid service")

// Service is one instance of a service, as stored (in JSON) at
// <prefix><Name>/<ID>.
type Service struct {
	// Name is the service's name, shared by its instances: "greeter".
	Name string `json:"name"`
	// ID tells this instance from the others: a host name, a pod name.
	ID string `json:"id"`
	// Addr is where clients reach the instance: "10.0.0.1:8080".
	Addr string `json:"addr"`
	// Metadata is free-form: version, zone, weight...
	Metadata map[string]string `json:"metadata,omitempty"`
}

func (s Service) validate() error {
	switch {
	case s.Name == "" || strings.Contains(s.Name, "/"):
		return fmt.Errorf("%w: name %q must be non-empty and without '/'", ErrInvalidService, s.Name)
	case s.ID == "" || strings.Contains(s.ID, "/"):
		return fmt.Errorf("%w: id %q must be non-empty and without '/'", ErrInvalidService, s.ID)
	case s.Addr == "":
		return fmt.Errorf("%w: %s/%s has no address", ErrInvalidService, s.Name, s.ID)
	}
	return nil
}

// Options configure a Registry. The zero value is valid.
type Options struct {
	// Prefix is the key prefix of every service. Default DefaultPrefix; a
	// missing trailing '/' is added.
	Prefix string
	// MinBackoff is the first wait between failed re-registration
	// attempts. Default 100 ms.
	MinBackoff time.Duration
	// MaxBackoff caps the wait between failed re-registration attempts,
	// which doubles after each failure. Default 5 s.
	MaxBackoff time.Duration
	// DeregisterTimeout bounds the lease revocation a Registration makes
	// when its context ends. Default 5 s.
	DeregisterTimeout time.Duration
	// OnStatus, if set, hears every change of every Registration's state,
	// on that Registration's goroutine. It must not block for long.
	OnStatus func(Status)
}

// EnsureDefaults fills in the zero fields that have a default.
func (o *Options) EnsureDefaults() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.DeregisterTimeout <= 0 {
		o.DeregisterTimeout = 5 * time.Second
	}
}

// Registry registers and discovers services through one client.
type Registry struct {
	c    *client.Client
	opts Options
	lg   *slog.Logger
}

// New returns a Registry that uses c, with opts after EnsureDefaults.
func New(c *client.Client, opts Options) *Registry {
	opts.EnsureDefaults()
	return &Registry{c: c, opts: opts, lg: c.Logger().With("component", "registry")}
}

// Key is where the instance id of service name is stored.
func (r *Registry) Key(name, id string) string { return r.opts.Prefix + name + "/" + id }

// Prefix is the prefix of every instance of service name.
func (r *Registry) Prefix(name string) string { return r.opts.Prefix + name + "/" }

// decode reads a stored instance; the key's name and ID win over the
// value's.
func (r *Registry) decode(name string, kv client.KeyValue) (Service, bool) {
	var s Service
	if err := json.Unmarshal([]byte(kv.Value), &s); err != nil {
		r.lg.Warn("ignoring a malformed instance", "key", kv.Key, "error", err)
		return Service{}, false
	}
	s.Name, s.ID = name, strings.TrimPrefix(kv.Key, r.Prefix(name))
	return s, true
}
