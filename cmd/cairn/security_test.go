package main

import (
	"slices"
	"strings"
	"testing"
)

// A security flag Cairn does not implement stops start-up when it asks for
// anything (from the command line, the environment or a configuration
// file); its default value, which asks for nothing, is accepted and
// listed as ignored.
func TestUnimplementedSecurityFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		want      string // "" : accepted
	}{
		{args: []string{"--auth-token=jwt,pub-key=a.pub,priv-key=a.key,sign-method=RS256"}, want: "--auth-token=jwt,pub-key=a.pub,priv-key=a.key,sign-method=RS256: authentication is not implemented in Cairn"},
		{args: []string{"--auth-token-ttl=60"}, want: "--auth-token-ttl=60: authentication is not implemented"},
		{args: []string{"--bcrypt-cost=12"}, want: "--bcrypt-cost=12: authentication is not implemented"},
		{args: []string{"--host-whitelist=example.com"}, want: "--host-whitelist=example.com: Cairn does not check the Host header"},
		{env: []string{"ETCD_AUTH_TOKEN=jwt"}, want: "--auth-token=jwt: authentication is not implemented"},
		{args: []string{"--config-file=" + writeFile(t, "auth-token: jwt\n")}, want: "--auth-token=jwt: authentication is not implemented"},
		{args: []string{"--auth-token=simple", "--auth-token-ttl=300", "--bcrypt-cost=10", "--host-whitelist=*"}},
	} {
		inv, err := parseConfig(tc.args, tc.env)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q %q: %v, want accepted", tc.args, tc.env, err)
				continue
			}
			for _, f := range []string{"auth-token", "auth-token-ttl", "bcrypt-cost", "host-whitelist"} {
				if !slices.Contains(inv.cfg.IgnoredFlags, f) {
					t.Errorf("%q: --%s not listed as ignored", tc.args, f)
				}
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "never ignored") {
			t.Errorf("%q %q: got %v, want an error containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}
