package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// etcd 3.7's gates reach the Config; gates Cairn does not act on are
// listed as ignored; names etcd does not know are refused.
func TestFeatureGatesFlag(t *testing.T) {
	inv := mustParse(t, []string{"--feature-gates=FastLeaseKeepAlive=false,PriorityRequest=true,LeaseCheckpoint=true"}, nil)
	want := map[string]bool{"FastLeaseKeepAlive": false, "PriorityRequest": true, "LeaseCheckpoint": true}
	if !maps.Equal(inv.cfg.FeatureGates, want) {
		t.Errorf("FeatureGates: got %v, want %v", inv.cfg.FeatureGates, want)
	}
	if got := inv.cfg.IgnoredFlags; !slices.Equal(got, []string{"feature-gates=LeaseCheckpoint"}) {
		t.Errorf("IgnoredFlags: got %q, want [feature-gates=LeaseCheckpoint]", got)
	}
	inv = mustParse(t, nil, []string{"ETCD_FEATURE_GATES=AllAlpha=true"})
	if !maps.Equal(inv.cfg.FeatureGates, map[string]bool{"AllAlpha": true}) || len(inv.cfg.IgnoredFlags) != 0 {
		t.Errorf("from ETCD_FEATURE_GATES: FeatureGates %v, IgnoredFlags %q; want AllAlpha=true, none ignored",
			inv.cfg.FeatureGates, inv.cfg.IgnoredFlags)
	}
	if _, err := parseConfig([]string{"--feature-gates=FastLeaseKeepalive=true"}, nil); err == nil ||
		!strings.Contains(err.Error(), "unrecognized feature gate: FastLeaseKeepalive") {
		t.Errorf("misspelt gate: got %v, want unrecognized feature gate", err)
	}
}

// The experimental-* flags that etcd 3.7 removed still start Cairn, with
// the warning 3.7 would print; flags 3.7 merely deprecates keep etcd's text.
func TestDeprecationWarnings(t *testing.T) {
	for _, tc := range []struct {
		arg, want string
	}{
		{"--experimental-memory-mlock=true",
			"--experimental-memory-mlock is deprecated in etcd 3.6 and decommissioned in etcd 3.7, which refuses it; use '--memory-mlock' instead"},
		{"--experimental-stop-grpc-service-on-defrag=true",
			"--experimental-stop-grpc-service-on-defrag is deprecated in etcd 3.6 and decommissioned in etcd 3.7, which refuses it; use '--feature-gates=StopGRPCServiceOnDefrag=true' instead"},
		{"--max-snapshots=3", "--max-snapshots is deprecated in 3.6 and will be decommissioned in 3.8."},
	} {
		inv := mustParse(t, []string{tc.arg}, nil)
		if !slices.Equal(inv.notices, []string{tc.want}) {
			t.Errorf("%s: notices got %q, want [%q]", tc.arg, inv.notices, tc.want)
		}
	}
}

// etcd 3.5's experimental corruption-check switches set the gates and
// intervals that replaced them, alongside other gates, in either order.
func TestCorruptCheckFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--experimental-initial-corrupt-check", "--feature-gates=LeaseCheckpoint=true,CompactHashCheck=true",
			"--experimental-corrupt-check-time=3s", "--compact-hash-check-time=2s"},
		{"--feature-gates=CompactHashCheck=true,LeaseCheckpoint=true", "--experimental-initial-corrupt-check=true",
			"--corrupt-check-time=3s", "--experimental-compact-hash-check-time=2s"},
	} {
		inv := mustParse(t, args, nil)
		want := map[string]bool{"InitialCorruptCheck": true, "CompactHashCheck": true, "LeaseCheckpoint": true}
		if !maps.Equal(inv.cfg.FeatureGates, want) {
			t.Errorf("%q: FeatureGates got %v, want %v", args, inv.cfg.FeatureGates, want)
		}
		if inv.cfg.CorruptCheckTime != 3*time.Second || inv.cfg.CompactHashCheckTime != 2*time.Second {
			t.Errorf("%q: CorruptCheckTime %v, CompactHashCheckTime %v; want 3s, 2s", args, inv.cfg.CorruptCheckTime, inv.cfg.CompactHashCheckTime)
		}
		if got := inv.cfg.IgnoredFlags; !slices.Equal(got, []string{"feature-gates=LeaseCheckpoint"}) {
			t.Errorf("%q: IgnoredFlags got %q, want [feature-gates=LeaseCheckpoint]", args, got)
		}
	}
	if _, err := parseConfig([]string{"--compact-hash-check-time=-1s"}, nil); err == nil ||
		err.Error() != "--compact-hash-check-time must be >0 (set to -1s)" {
		t.Errorf("negative --compact-hash-check-time: got %v, want etcd's error", err)
	}
}
