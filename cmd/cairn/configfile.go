package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// nestedKeys are config-file keys whose value is a mapping of settings that
// have flags of their own (TLS, v3 discovery, socket options). The TLS ones
// are read through securityKeys, discovery-config through discoveryKeys; of
// the others Cairn checks only that each is a mapping, and ignores it.
var nestedKeys = []string{"client-transport-security", "peer-transport-security", "discovery-config", "socket-options"}

// securityKeys maps the keys of etcd's client-transport-security and
// peer-transport-security mappings to the flags they set (etcd's
// securityConfig); a key without a flag on that side is ignored, as etcd
// ignores what its flags cannot set.
var securityKeys = map[string]map[string]string{
	"client-transport-security": {
		"cert-file": "cert-file", "key-file": "key-file", "client-cert-file": "client-cert-file",
		"client-key-file": "client-key-file", "client-cert-auth": "client-cert-auth",
		"trusted-ca-file": "trusted-ca-file", "auto-tls": "auto-tls", "allowed-hostname": "client-cert-allowed-hostname",
	},
	"peer-transport-security": {
		"cert-file": "peer-cert-file", "key-file": "peer-key-file", "client-cert-file": "peer-client-cert-file",
		"client-key-file": "peer-client-key-file", "client-cert-auth": "peer-client-cert-auth",
		"trusted-ca-file": "peer-trusted-ca-file", "auto-tls": "peer-auto-tls", "allowed-cn": "peer-cert-allowed-cn",
		"allowed-hostname": "peer-cert-allowed-hostname", "skip-client-san-verification": "peer-skip-client-san-verification",
	},
}

// yamlAliases maps config-file keys that differ from their flag's name.
var yamlAliases = map[string]string{
	"experimental-snapshot-catch-up-entries": "experimental-snapshot-catchup-entries",
}

// readConfigFile reads an etcd 3.6 YAML configuration file, as etcd's
// embed.ConfigFromFile does: keys are flag names, matched regardless of
// case; a key that names no setting is ignored; URL lists are one
// comma-separated string; log-outputs and cipher-suites are YAML lists;
// durations are integers of nanoseconds. A null value counts as unset.
func readConfigFile(path string) ([]setting, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	var out []setting
	for _, key := range keys {
		v := doc[key]
		name := strings.ToLower(key)
		if alias, ok := yamlAliases[name]; ok {
			name = alias
		}
		if v == nil {
			continue
		}
		if slices.Contains(nestedKeys, name) {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("config file %s: %s: want a mapping, got %s", path, key, describe(v))
			}
			if name == "discovery-config" {
				nested, err := discoverySettings(m)
				if err != nil {
					return nil, fmt.Errorf("config file %s: %s: %w", path, key, err)
				}
				out = append(out, nested...)
				continue
			}
			flags, ok := securityKeys[name]
			if !ok {
				out = append(out, setting{sp: &spec{name: name}})
				continue
			}
			nested, err := securitySettings(flags, m)
			if err != nil {
				return nil, fmt.Errorf("config file %s: %s: %w", path, key, err)
			}
			out = append(out, nested...)
			continue
		}
		sp := specsByName[name]
		if sp == nil || sp.yaml == yamlNone {
			continue
		}
		p, err := fromYAML(sp, v)
		if err != nil {
			return nil, fmt.Errorf("config file %s: invalid value for %s: %w", path, key, err)
		}
		out = append(out, setting{sp, p})
	}
	return out, nil
}

// fromYAML checks a decoded YAML value against what etcd's JSON decoding
// of that key accepts, and converts it.
func fromYAML(sp *spec, v any) (parsed, error) {
	if sp.yaml == yamlList {
		seq, ok := v.([]any)
		if !ok {
			return parsed{}, fmt.Errorf("want a list of strings, got %s", describe(v))
		}
		p := parsed{}
		for _, e := range seq {
			s, ok := scalarText(e)
			if !ok {
				return parsed{}, fmt.Errorf("want a list of strings, got an element %s", describe(e))
			}
			p.list = append(p.list, s)
		}
		p.text = strings.Join(p.list, ",")
		return p, nil
	}
	switch sp.kind {
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			return parsed{}, fmt.Errorf("want true or false, got %s", describe(v))
		}
		return parsed{text: strconv.FormatBool(b), b: b}, nil
	case kindInt, kindInt64, kindUint, kindUint32, kindUint64, kindDuration:
		return yamlInteger(sp, v)
	case kindChoice, kindChoices:
		// etcd checks these after decoding, if at all: initial-cluster-state
		// in Config.Validate, and v2-deprecation not at all.
		s, ok := scalarText(v)
		if !ok {
			return parsed{}, fmt.Errorf("want a string, got %s", describe(v))
		}
		return parsed{text: s, list: strings.Split(s, ",")}, nil
	}
	s, ok := scalarText(v)
	if !ok {
		return parsed{}, fmt.Errorf("want a string, got %s", describe(v))
	}
	return parseText(sp, s)
}

// yamlInteger accepts a YAML integer in the range of sp's kind. A duration
// is an integer of nanoseconds, as time.Duration decodes from JSON.
func yamlInteger(sp *spec, v any) (parsed, error) {
	var text string
	switch n := v.(type) {
	case int:
		text = strconv.Itoa(n)
	case int64:
		text = strconv.FormatInt(n, 10)
	case uint64:
		text = strconv.FormatUint(n, 10)
	default:
		return parsed{}, fmt.Errorf("want an integer, got %s", describe(v))
	}
	switch sp.kind {
	case kindDuration:
		ns, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return parsed{}, errRange
		}
		return parsed{text: time.Duration(ns).String(), d: time.Duration(ns)}, nil
	case kindUint, kindUint32, kindUint64:
		if strings.HasPrefix(text, "-") {
			return parsed{}, errRange
		}
	}
	return parseText(sp, text)
}

// scalarText renders a YAML scalar as the string etcd would decode it to.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case map[string]any, []any, nil:
		return "", false
	default:
		return fmt.Sprint(v), true
	}
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("the string %q", v)
	}
	return fmt.Sprintf("%v", v)
}

// securitySettings reads one client- or peer-transport-security mapping.
func securitySettings(flags map[string]string, m map[string]any) ([]setting, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []setting
	for _, k := range keys {
		flag, ok := flags[strings.ToLower(k)]
		if !ok || m[k] == nil {
			continue
		}
		sp := specsByName[flag]
		v := m[k]
		var p parsed
		var err error
		switch {
		case sp.kind == kindBool:
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("invalid value for %s: want true or false, got %s", k, describe(v))
			}
			p = parsed{text: strconv.FormatBool(b), b: b}
		case sp.kind == kindList:
			seq, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("invalid value for %s: want a list of strings, got %s", k, describe(v))
			}
			for _, e := range seq {
				s, ok := scalarText(e)
				if !ok {
					return nil, fmt.Errorf("invalid value for %s: want a list of strings, got an element %s", k, describe(e))
				}
				p.list = append(p.list, s)
			}
			p.text = strings.Join(p.list, ",")
		default:
			s, ok := scalarText(v)
			if !ok {
				return nil, fmt.Errorf("invalid value for %s: want a string, got %s", k, describe(v))
			}
			if p, err = parseText(sp, s); err != nil {
				return nil, fmt.Errorf("invalid value for %s: %w", k, err)
			}
		}
		out = append(out, setting{sp, p})
	}
	return out, nil
}

// discoveryKeys maps the settings of etcd 3.7's discovery-config mapping
// (its v3discovery.DiscoveryConfig as JSON: the token, and the client's
// clientv3.ConfigSpec under "client"), as dotted lower-case paths, to the
// flags they set. Durations are integers of nanoseconds.
var discoveryKeys = map[string]string{
	"token":                                  "discovery-token",
	"client.endpoints":                       "discovery-endpoints",
	"client.dial-timeout":                    "discovery-dial-timeout",
	"client.request-timeout":                 "discovery-request-timeout",
	"client.keepalive-time":                  "discovery-keepalive-time",
	"client.keepalive-timeout":               "discovery-keepalive-timeout",
	"client.secure.cert":                     "discovery-cert",
	"client.secure.key":                      "discovery-key",
	"client.secure.cacert":                   "discovery-cacert",
	"client.secure.insecure-transport":       "discovery-insecure-transport",
	"client.secure.insecure-skip-tls-verify": "discovery-insecure-skip-tls-verify",
	"client.auth.username":                   "discovery-user",
	"client.auth.password":                   "discovery-password",
}

// discoverySettings reads a discovery-config mapping; keys it does not
// know are ignored, as etcd's JSON decoding ignores them.
func discoverySettings(m map[string]any) ([]setting, error) {
	flat := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			p := prefix + strings.ToLower(k)
			if sub, ok := v.(map[string]any); ok {
				walk(p+".", sub)
				continue
			}
			flat[p] = v
		}
	}
	walk("", m)
	paths := make([]string, 0, len(flat))
	for p := range flat {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	var out []setting
	for _, p := range paths {
		flag, ok := discoveryKeys[p]
		if !ok || flat[p] == nil {
			continue
		}
		sp := specsByName[flag]
		if sp.kind != kindDuration {
			s, err := securitySettings(map[string]string{p: flag}, map[string]any{p: flat[p]})
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
			continue
		}
		v, err := yamlInteger(sp, flat[p])
		if err != nil {
			return nil, fmt.Errorf("invalid value for %s: %w", p, err)
		}
		out = append(out, setting{sp, v})
	}
	return out, nil
}
