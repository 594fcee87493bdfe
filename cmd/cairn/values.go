package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-kv/cairn/server"
)

// kind says how a flag's text is checked and what it converts to. Each kind
// accepts exactly what etcd 3.6's flag of that type accepts.
type kind int

const (
	kindString   kind = iota
	kindBool          // strconv.ParseBool; "--flag" alone means true
	kindInt           // int, decimal or 0x/0o/0b prefixed, as Go's flag.Int
	kindInt64         // int64, as Go's flag.Int64
	kindUint          // uint, as Go's flag.Uint
	kindUint32        // decimal uint32, as etcd's flags.Uint32Value
	kindUint64        // uint64, as Go's flag.Uint64
	kindDuration      // time.ParseDuration, e.g. "1m30s"
	kindURLs          // comma-separated URLs, as etcd's types.NewURLs; deduplicated and sorted
	kindList          // comma-separated strings
	kindChoice        // one of spec.choices
	kindChoices       // comma-separated, each one of spec.choices
	kindGates         // feature gates: "Name=bool,Name=bool"
	kindLegacy        // a flag etcd removed but still accepts and ignores; a switch that takes any value
)

// parsed is a flag's value after checking, in the form its kind converts to.
type parsed struct {
	text string        // as given
	b    bool          // kindBool
	i    int64         // kindInt, kindInt64
	u    uint64        // kindUint, kindUint32, kindUint64
	d    time.Duration // kindDuration
	urls []url.URL     // kindURLs
	list []string      // kindList, kindChoices
	// gates holds kindGates settings by feature name.
	gates map[string]bool
}

// errParse and errRange are what Go's flag package reports for malformed numbers.
var (
	errParse = errors.New("parse error")
	errRange = errors.New("value out of range")
)

// parseText checks s as a value of sp's kind and converts it.
func parseText(sp *spec, s string) (parsed, error) {
	p := parsed{text: s}
	var err error
	switch sp.kind {
	case kindString, kindLegacy:
	case kindBool:
		p.b, err = strconv.ParseBool(s)
		if err != nil {
			err = errors.New("want true or false")
		}
	case kindInt:
		p.i, err = strconv.ParseInt(s, 0, strconv.IntSize)
	case kindInt64:
		p.i, err = strconv.ParseInt(s, 0, 64)
	case kindUint:
		p.u, err = strconv.ParseUint(s, 0, strconv.IntSize)
	case kindUint32:
		p.u, err = strconv.ParseUint(s, 10, 32)
	case kindUint64:
		p.u, err = strconv.ParseUint(s, 0, 64)
	case kindDuration:
		p.d, err = time.ParseDuration(s)
		if err != nil {
			err = errParse
		}
	case kindURLs:
		p.urls, err = parseURLs(s, sp.choices)
	case kindList:
		p.list = strings.Split(s, ",")
	case kindChoice:
		if !slices.Contains(sp.choices, s) {
			err = fmt.Errorf("valid values are %s", quoteAll(sp.choices))
		}
	case kindChoices:
		p.list = strings.Split(s, ",")
		for _, v := range p.list {
			if !slices.Contains(sp.choices, v) {
				err = fmt.Errorf("%q is not one of %s", v, quoteAll(sp.choices))
				break
			}
		}
	case kindGates:
		p.gates, err = parseGates(s)
	default:
		panic(fmt.Sprintf("flag --%s: unknown kind %d", sp.name, sp.kind))
	}
	var numErr *strconv.NumError
	if errors.As(err, &numErr) {
		if errors.Is(numErr.Err, strconv.ErrRange) {
			err = errRange
		} else {
			err = errParse
		}
	}
	return p, err
}

// parseURLs parses a comma-separated URL list as etcd does: each URL is
// http(s)://host:port without a path, or unix(s)://anything. A value equal
// to one of exceptions (e.g. "*" for --cors) is kept as the only entry.
func parseURLs(s string, exceptions []string) ([]url.URL, error) {
	if slices.Contains(exceptions, s) {
		return []url.URL{{Host: s}}, nil
	}
	var out []url.URL
	for _, in := range strings.Split(s, ",") {
		in = strings.TrimSpace(in)
		u, err := url.Parse(in)
		if err != nil {
			return nil, err
		}
		switch u.Scheme {
		case "http", "https":
			if _, _, err := net.SplitHostPort(u.Host); err != nil {
				return nil, fmt.Errorf("URL address does not have the form \"host:port\": %s", in)
			}
			if u.Path != "" {
				return nil, fmt.Errorf("URL must not contain a path: %s", in)
			}
		case "unix", "unixs":
		default:
			return nil, fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", in)
		}
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b url.URL) int { return strings.Compare(a.String(), b.String()) })
	return slices.CompactFunc(out, func(a, b url.URL) bool { return a.String() == b.String() }), nil
}

// parseGates parses "Name=bool,Name=bool", rejecting names etcd 3.7 does
// not know (server.FeatureGates).
func parseGates(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Errorf("missing bool value for %s", name)
		}
		b, err := strconv.ParseBool(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("invalid value of %s=%s: want true or false", name, strings.TrimSpace(val))
		}
		if _, known := server.FeatureGates[name]; !known {
			return nil, fmt.Errorf("unrecognized feature gate: %s", name)
		}
		out[name] = b
	}
	return out, nil
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
