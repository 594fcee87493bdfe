package main

import (
	"fmt"
	"slices"
	"strings"
)

// unimplementedSecurity lists the security flags, other than TLS's, that
// Cairn accepts for etcd compatibility but does not implement: given a
// value that asks for more than Cairn does, each stops start-up (a
// security setting must never be silently ignored; DESIGN.md, Security).
// The value returned is empty when the setting asks for nothing Cairn
// lacks (the flag's default, which only tunes what is off). TLS flags are
// the TLS implementation's.
var unimplementedSecurity = map[string]func(parsed) string{
	// etcd refuses HTTP requests whose Host header is not listed (a guard
	// against DNS rebinding); Cairn would accept every host.
	"host-whitelist": func(v parsed) string {
		if len(v.list) == 0 || slices.Contains(v.list, "*") {
			return ""
		}
		return "Cairn does not check the Host header of HTTP requests"
	},
}

// refuseUnimplementedSecurity fails for the first security flag set that
// Cairn would ignore (see unimplementedSecurity).
func refuseUnimplementedSecurity(set []setting) error {
	for _, s := range set {
		check, ok := unimplementedSecurity[s.sp.name]
		if !ok {
			continue
		}
		if why := check(s.val); why != "" {
			return fmt.Errorf("--%s=%s: %s, and a security setting is never ignored; remove the flag (or its ETCD_%s variable or configuration key) to start",
				s.sp.name, s.val.text, why, strings.ToUpper(strings.ReplaceAll(s.sp.name, "-", "_")))
		}
	}
	return nil
}
