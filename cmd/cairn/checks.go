package main

import (
	"errors"
	"fmt"
)

// checkSettings rejects the combinations etcd 3.6 rejects before starting.
// fromCmdline is false when the settings came from a config file.
func checkSettings(set []setting, fromCmdline bool) error {
	byName := map[string]parsed{}
	for _, s := range set {
		byName[s.sp.name] = s.val
	}
	for _, s := range set {
		if n := s.sp.newName; n != "" {
			if _, both := byName[n]; both {
				return fmt.Errorf("cannot set --%s and --%s at the same time, please use --%s only", s.sp.name, n, n)
			}
		}
		if g := s.sp.gate; g != "" {
			if _, both := byName["feature-gates"].gates[g]; both {
				return fmt.Errorf("cannot set both --%s and --feature-gates=%s=..., please use --feature-gates only", s.sp.name, g)
			}
		}
	}
	for _, name := range []string{"heartbeat-interval", "election-timeout"} {
		if v, ok := byName[name]; ok && v.u == 0 {
			return fmt.Errorf("--%s must be >0 (set to 0ms)", name)
		}
	}
	if !fromCmdline {
		return nil
	}
	if byName["discovery-fallback"].text == "proxy" {
		return errors.New(`v2 proxy is deprecated, and --discovery-fallback can't be configured as "proxy"`)
	}
	_, lc := byName["listen-client-urls"]
	_, ac := byName["advertise-client-urls"]
	if lc && !ac {
		return errors.New("--advertise-client-urls is required when --listen-client-urls is set explicitly")
	}
	return nil
}

// deprecations warns about each deprecated flag that was set. For the
// 23 experimental-* flags of etcd 3.6, which etcd 3.7 removed (3.7 refuses
// to start with one), Cairn still takes them, so 3.6-era deployment
// scripts start it, and says what 3.7 would say had it kept them.
func deprecations(set []setting) []string {
	var out []string
	for _, s := range set {
		switch sp := s.sp; {
		case sp.deprecated != "":
			out = append(out, sp.deprecated)
		case sp.newName != "":
			out = append(out, fmt.Sprintf("--%s is deprecated in etcd 3.6 and decommissioned in etcd 3.7, which refuses it; use '--%s' instead", sp.name, sp.newName))
		case sp.gate != "":
			out = append(out, fmt.Sprintf("--%s is deprecated in etcd 3.6 and decommissioned in etcd 3.7, which refuses it; use '--feature-gates=%s=true' instead", sp.name, sp.gate))
		}
	}
	return out
}
