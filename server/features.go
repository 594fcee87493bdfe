package server

import (
	"fmt"
	"slices"
)

// Feature gates of etcd 3.7.4's server (server/features/etcd_features.go),
// set with --feature-gates=Name=true|false,...
const (
	// FastLeaseKeepAlive (Beta, on): the leader answers a keep-alive for a
	// lease it knows without first waiting until it has applied everything
	// committed; only a keep-alive for a lease it does not know waits, since
	// that lease's grant may be committed and not yet applied.
	FastLeaseKeepAlive = "FastLeaseKeepAlive"
	// PriorityRequest (Alpha, off): lease revokes are still proposed while
	// the apply backlog is between maxGapBetweenApplyAndCommitIndex and
	// twice that, where other proposals already fail with "too many
	// requests", so expired leases keep going away under overload.
	PriorityRequest = "PriorityRequest"
	// InitialCorruptCheck (Alpha, off): a restarting member compares its
	// HashKV with the other members' before it serves, and refuses to
	// start on a mismatch (see Member.InitialCorruptCheck).
	InitialCorruptCheck = "InitialCorruptCheck"
	// CompactHashCheck (Alpha, off): the leader compares the hashes the
	// members computed at the same compactions, every CompactHashCheckTime.
	CompactHashCheck = "CompactHashCheck"

	// AllAlpha and AllBeta set every gate of their stage that is not named
	// itself (etcd's pkg/featuregate).
	AllAlpha = "AllAlpha"
	AllBeta  = "AllBeta"
)

// FeatureSpec is one feature gate as etcd 3.7.4 declares it, and whether
// Cairn acts on it.
type FeatureSpec struct {
	Default bool
	Stage   string // "Alpha" or "Beta"
	// Implemented is false for gates Cairn accepts but ignores: its
	// behaviour is fixed (lease checkpoints always persist), meaningless
	// in Cairn (bbolt's shared buffer, defragmentation) or not built yet.
	Implemented bool
}

// FeatureGates are etcd 3.7.4's server feature gates, AllAlpha and AllBeta
// included; a name not here is refused, as etcd refuses it.
var FeatureGates = map[string]FeatureSpec{
	AllAlpha:                       {Default: false, Stage: "Alpha", Implemented: true},
	AllBeta:                        {Default: false, Stage: "Beta", Implemented: true},
	CompactHashCheck:               {Default: false, Stage: "Alpha", Implemented: true},
	FastLeaseKeepAlive:             {Default: true, Stage: "Beta", Implemented: true},
	InitialCorruptCheck:            {Default: false, Stage: "Alpha", Implemented: true},
	"LeaseCheckpoint":              {Default: false, Stage: "Alpha"},
	"LeaseCheckpointPersist":       {Default: false, Stage: "Alpha"},
	PriorityRequest:                {Default: false, Stage: "Alpha", Implemented: true},
	"SetMemberLocalAddr":           {Default: false, Stage: "Alpha"},
	"StopGRPCServiceOnDefrag":      {Default: false, Stage: "Alpha"},
	"TxnModeWriteWithSharedBuffer": {Default: true, Stage: "Beta"},
}

// FeatureGateNames lists FeatureGates' names in order.
func FeatureGateNames() []string {
	names := make([]string, 0, len(FeatureGates))
	for n := range FeatureGates {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// featureEnabled resolves gate name from the settings in gates as etcd's
// featuregate does: a setting of the gate itself, else AllAlpha or AllBeta
// for its stage if set, else the gate's default.
func featureEnabled(gates map[string]bool, name string) bool {
	if v, ok := gates[name]; ok {
		return v
	}
	spec := FeatureGates[name]
	if v, ok := gates["All"+spec.Stage]; ok {
		return v
	}
	return spec.Default
}

// validateFeatureGates refuses a gate name etcd 3.7 does not know.
func validateFeatureGates(gates map[string]bool) error {
	for name := range gates {
		if _, ok := FeatureGates[name]; !ok {
			return fmt.Errorf("server: unrecognized feature gate: %s", name)
		}
	}
	return nil
}
