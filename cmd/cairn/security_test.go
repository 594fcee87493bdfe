package main

import (
	"slices"
	"strings"
	"testing"
	"time"
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
		{args: []string{"--host-whitelist=example.com"}, want: "--host-whitelist=example.com: Cairn does not check the Host header"},
		{env: []string{"ETCD_HOST_WHITELIST=example.com"}, want: "--host-whitelist=example.com: Cairn does not check the Host header"},
		{args: []string{"--host-whitelist=*"}},
	} {
		inv, err := parseConfig(tc.args, tc.env)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q %q: %v, want accepted", tc.args, tc.env, err)
				continue
			}
			for _, f := range []string{"host-whitelist"} {
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

// The auth flags are implemented: they reach embed.Config.
func TestAuthFlags(t *testing.T) {
	inv, err := parseConfig([]string{"--auth-token=jwt,sign-method=HS256,priv-key=k", "--auth-token-ttl=60", "--bcrypt-cost=12"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := inv.cfg
	if c.AuthToken != "jwt,sign-method=HS256,priv-key=k" || c.AuthTokenTTL != time.Minute || c.BcryptCost != 12 {
		t.Errorf("got auth-token %q, ttl %v, bcrypt-cost %d", c.AuthToken, c.AuthTokenTTL, c.BcryptCost)
	}
	inv, err = parseConfig([]string{"--config-file=" + writeFile(t, "auth-token: jwt\nbcrypt-cost: 4\n")}, []string{"ETCD_AUTH_TOKEN_TTL=5"})
	if err != nil {
		t.Fatal(err)
	}
	if c := inv.cfg; c.AuthToken != "jwt" || c.BcryptCost != 4 {
		t.Errorf("config file: got auth-token %q, bcrypt-cost %d", c.AuthToken, c.BcryptCost)
	}
}
