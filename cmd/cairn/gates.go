package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairn-kv/cairn/embed"
	"github.com/cairn-kv/cairn/server"
)

// setFeatureGates stores --feature-gates in the Config, and lists each gate
// set that Cairn accepts without acting on it in IgnoredFlags, as
// "feature-gates=Name", so the server logs it.
func setFeatureGates(c *embed.Config, v parsed) {
	if c.FeatureGates == nil {
		c.FeatureGates = map[string]bool{}
	}
	maps.Copy(c.FeatureGates, v.gates) // with any experimental-* switch (setGate)
	for _, name := range slices.Sorted(maps.Keys(v.gates)) {
		if !server.FeatureGates[name].Implemented {
			c.IgnoredFlags = append(c.IgnoredFlags, "feature-gates="+name)
		}
	}
}

// setGate stores an etcd 3.5 experimental switch as the feature gate that
// replaced it (checkSettings refuses setting both).
func setGate(name string) func(*embed.Config, parsed) {
	return func(c *embed.Config, v parsed) {
		if c.FeatureGates == nil {
			c.FeatureGates = map[string]bool{}
		}
		c.FeatureGates[name] = v.b
	}
}

// gatesHelp lists etcd 3.7.4's feature gates for --help, in etcd's form
// (Name=true|false (STAGE - default=...)), marking those Cairn ignores.
func gatesHelp() string {
	var parts []string
	for _, name := range server.FeatureGateNames() {
		g := server.FeatureGates[name]
		p := fmt.Sprintf("%s=true|false (%s - default=%v)", name, strings.ToUpper(g.Stage), g.Default)
		if !g.Implemented {
			p += " (ignored)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ") + "."
}
