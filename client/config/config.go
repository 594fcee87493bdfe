package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"gopkg.in/yaml.v3"

	"github.com/cairn-kv/cairn/client"
)

// ErrInvalid wraps every reason a value is rejected: it does not decode,
// or fails validation, or is absent without a Default.
var ErrInvalid = errors.New("config: invalid value")

// Format is how values are encoded.
type Format int

const (
	// FormatAuto picks YAML for keys ending in .yaml or .yml and JSON for
	// all others.
	FormatAuto Format = iota
	// FormatJSON decodes every value as JSON.
	FormatJSON
	// FormatYAML decodes every value as YAML.
	FormatYAML
)

// Options configure a Binding of a T. The zero value is valid.
type Options[T any] struct {
	// Format is how values are encoded. Default FormatAuto.
	Format Format
	// Strict rejects values with fields T does not have.
	Strict bool
	// Default, if set, is the value when the key (every key, for a prefix)
	// is absent, and the base each value is decoded onto: fields a value
	// leaves out keep their default.
	Default *T
	// Validate, if set, vets each candidate value after T's own Validate
	// method (if any); an error rejects the value.
	Validate func(T) error
	// OnChange, if set, is called after each accepted update with the old
	// and new values and the new Revision, on the binding's goroutine.
	OnChange func(old, new T, rev int64)
	// OnReject, if set, is called with each rejected update (an error
	// wrapping ErrInvalid) and the revision of the write that caused it,
	// on the binding's goroutine.
	OnReject func(err error, rev int64)
}

// Binding is a configuration value kept in step with the store. Its
// methods are safe for concurrent use.
type Binding[T any] struct {
	c       *client.Client
	key     string
	prefix  bool
	opts    Options[T]
	lg      *slog.Logger
	base    []byte            // Default as JSON, decoded under each value
	raw     map[string]string // the store's current values (binding goroutine only)
	w       *client.Watcher
	current atomic.Pointer[snapshot[T]]

	mu struct {
		sync.Mutex
		rejected error
	}
}

type snapshot[T any] struct {
	v   T
	rev int64
}

// Bind reads key, decodes and validates it, and keeps the value current
// until ctx ends or Close is called. It fails if the first read fails, or
// with an error wrapping ErrInvalid (and client.ErrNotFound for a missing
// key without Default) if the first value is rejected.
func Bind[T any](ctx context.Context, c *client.Client, key string, opts Options[T]) (*Binding[T], error) {
	return bind(ctx, c, key, false, opts)
}

// BindPrefix is Bind for every key under prefix, merged as the package
// documentation describes.
func BindPrefix[T any](ctx context.Context, c *client.Client, prefix string, opts Options[T]) (*Binding[T], error) {
	return bind(ctx, c, prefix, true, opts)
}

func bind[T any](ctx context.Context, c *client.Client, key string, prefix bool, opts Options[T]) (*Binding[T], error) {
	b := &Binding[T]{c: c, key: key, prefix: prefix, opts: opts, raw: map[string]string{},
		lg: c.Logger().With("component", "config", "key", key)}
	if opts.Default != nil {
		var err error
		if b.base, err = json.Marshal(opts.Default); err != nil {
			return nil, fmt.Errorf("config: %s: encode Default: %w", key, err)
		}
	}
	var state []client.KeyValue
	var readRev int64
	if prefix {
		r, err := c.GetPrefix(ctx, key)
		if err != nil {
			return nil, err
		}
		state, readRev = r.KVs, r.Revision
	} else {
		resp, err := c.Etcd().Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("config: read %s: %w", key, err)
		}
		for _, kv := range resp.Kvs {
			state = append(state, client.KeyValue{Key: string(kv.Key), Value: string(kv.Value), ModRevision: kv.ModRevision})
		}
		readRev = resp.Header.Revision
	}
	rev := b.reset(state)
	v, err := b.build()
	if err != nil {
		return nil, err
	}
	b.current.Store(&snapshot[T]{v: v, rev: rev})
	watch := c.Watch
	if prefix {
		watch = c.WatchPrefix
	}
	if b.w, err = watch(ctx, key, b.apply, client.WithStartRevision(readRev+1)); err != nil {
		return nil, err
	}
	return b, nil
}

// Current returns the last accepted value. Treat maps and slices in it as
// read-only: they are shared with later calls.
func (b *Binding[T]) Current() T { return b.current.Load().v }

// Revision says which write the current value reflects. For Bind it is the
// key's ModRevision, or 0 when the key is absent and Default stands in, so
// it can be passed to client.CompareAndSwap to update the key safely. For
// BindPrefix it is the revision of the last change applied (after a fresh
// read: the newest ModRevision under the prefix).
func (b *Binding[T]) Revision() int64 { return b.current.Load().rev }

// Rejected returns why the store's newest value was rejected, or nil when
// Current reflects the store.
func (b *Binding[T]) Rejected() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.rejected
}

// Close stops reloading and waits for the last callback to return.
func (b *Binding[T]) Close() { b.w.Stop() }

// Done is closed when the Binding stops reloading: its context ended,
// Close was called, or the Client was closed.
func (b *Binding[T]) Done() <-chan struct{} { return b.w.Done() }

// reset replaces the raw state and returns its newest ModRevision.
func (b *Binding[T]) reset(state []client.KeyValue) int64 {
	clear(b.raw)
	var rev int64
	for _, kv := range state {
		b.raw[kv.Key] = kv.Value
		rev = max(rev, kv.ModRevision)
	}
	return rev
}

// apply folds a watch event into the raw state and, at the end of each
// revision, tries the new value.
func (b *Binding[T]) apply(ev client.Event) {
	rev := ev.Revision // the Revision the new value will have
	switch ev.Type {
	case client.EventReset:
		rev = b.reset(ev.State)
	case client.EventDelete:
		delete(b.raw, ev.KV.Key)
		if !b.prefix {
			rev = 0
		}
	default:
		b.raw[ev.KV.Key] = ev.KV.Value
	}
	if !ev.LastInRevision {
		return
	}
	old := b.current.Load()
	v, err := b.build()
	b.mu.Lock()
	b.mu.rejected = err
	b.mu.Unlock()
	if err != nil {
		b.lg.Warn("rejected a configuration update; keeping the last good value",
			"revision", ev.Revision, "current-revision", old.rev, "error", err)
		if b.opts.OnReject != nil {
			b.opts.OnReject(err, ev.Revision)
		}
		return
	}
	b.current.Store(&snapshot[T]{v: v, rev: rev})
	if b.opts.OnChange != nil {
		b.opts.OnChange(old.v, v, rev)
	}
}

// build decodes and validates the raw state.
func (b *Binding[T]) build() (T, error) {
	var v T
	if len(b.raw) == 0 {
		if b.opts.Default == nil {
			return v, fmt.Errorf("%w: %w: %s", ErrInvalid, client.ErrNotFound, b.key)
		}
		return b.validate(*b.opts.Default)
	}
	var doc []byte
	if b.prefix {
		merged, err := b.merge()
		if err != nil {
			return v, err
		}
		doc, _ = json.Marshal(merged)
	} else {
		var err error
		if doc, err = b.toJSON(b.key, b.raw[b.key]); err != nil {
			return v, err
		}
	}
	if b.base != nil {
		_ = json.Unmarshal(b.base, &v)
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	if b.opts.Strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("%w: %s: %w", ErrInvalid, b.key, err)
	}
	if dec.More() {
		return v, fmt.Errorf("%w: %s: data after the value", ErrInvalid, b.key)
	}
	return b.validate(v)
}

func (b *Binding[T]) validate(v T) (T, error) {
	if val, ok := any(&v).(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return v, fmt.Errorf("%w: %s: %w", ErrInvalid, b.key, err)
		}
	}
	if b.opts.Validate != nil {
		if err := b.opts.Validate(v); err != nil {
			return v, fmt.Errorf("%w: %s: %w", ErrInvalid, b.key, err)
		}
	}
	return v, nil
}

// format is the encoding of the value at key.
func (b *Binding[T]) format(key string) Format {
	if b.opts.Format != FormatAuto {
		return b.opts.Format
	}
	if strings.HasSuffix(key, ".yaml") || strings.HasSuffix(key, ".yml") {
		return FormatYAML
	}
	return FormatJSON
}

// toJSON returns the value at key as JSON, converting YAML.
func (b *Binding[T]) toJSON(key, value string) ([]byte, error) {
	if b.format(key) == FormatJSON {
		return []byte(value), nil
	}
	var doc any
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, key, err)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, key, err)
	}
	return out, nil
}

// merge decodes every key under the prefix into an object and merges them
// in key order.
func (b *Binding[T]) merge() (map[string]any, error) {
	keys := make([]string, 0, len(b.raw))
	for k := range b.raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	merged := map[string]any{}
	for _, k := range keys {
		doc, err := b.toJSON(k, b.raw[k])
		if err != nil {
			return nil, err
		}
		var obj map[string]any
		if err := json.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("%w: %s: want an object: %w", ErrInvalid, k, err)
		}
		mergeInto(merged, obj)
	}
	return merged, nil
}

// mergeInto copies src over dst, merging nested objects.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeInto(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}
