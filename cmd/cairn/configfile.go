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
// are read through securityKeys; of the others Cairn checks only that each
// is a mapping, and ignores it.
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
