package server

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// The gates resolve as etcd's featuregate resolves them: the gate's own
// setting, else AllAlpha/AllBeta for its stage, else its default.
func TestFeatureEnabled(t *testing.T) {
	for _, tc := range []struct {
		gates map[string]bool
		name  string
		want  bool
	}{
		{nil, FastLeaseKeepAlive, true},
		{nil, PriorityRequest, false},
		{map[string]bool{FastLeaseKeepAlive: false}, FastLeaseKeepAlive, false},
		{map[string]bool{PriorityRequest: true}, PriorityRequest, true},
		{map[string]bool{AllAlpha: true}, PriorityRequest, true},
		{map[string]bool{AllAlpha: true}, FastLeaseKeepAlive, true},
		{map[string]bool{AllAlpha: true, PriorityRequest: false}, PriorityRequest, false},
		{map[string]bool{AllBeta: false}, FastLeaseKeepAlive, false},
		{map[string]bool{AllBeta: false, FastLeaseKeepAlive: true}, FastLeaseKeepAlive, true},
		{map[string]bool{AllBeta: false}, PriorityRequest, false},
	} {
		if got := featureEnabled(tc.gates, tc.name); got != tc.want {
			t.Errorf("featureEnabled(%v, %s): got %v, want %v", tc.gates, tc.name, got, tc.want)
		}
	}
	if err := validateFeatureGates(map[string]bool{"FastLeaseKeepAlve": true}); err == nil {
		t.Error("validateFeatureGates accepted a misspelt gate")
	}
	if err := validateFeatureGates(map[string]bool{FastLeaseKeepAlive: false, "LeaseCheckpoint": true}); err != nil {
		t.Errorf("validateFeatureGates: %v", err)
	}
}

// etcd 3.7.4's cases for exceedsRequestLimit (etcdserver/util_test.go):
// with PriorityRequest, a lease revoke is admitted up to twice the gap.
func TestExceedsRequestLimit(t *testing.T) {
	const gap = maxGapBetweenApplyAndCommitIndex
	put := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k")}}
	revoke := &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 1}}
	for _, tc := range []struct {
		name               string
		applied, committed uint64
		req                *pb.InternalRaftRequest
		priority           bool
		want               bool
	}{
		{"put at the gap", 1, 1 + gap, put, true, false},
		{"revoke at the gap", 1, 1 + gap, revoke, false, false},
		{"put past the gap", 1, 2 + gap, put, true, true},
		{"revoke past the gap, gate off", 1, 2 + gap, revoke, false, true},
		{"revoke past the gap, gate on", 1, 2 + gap, revoke, true, false},
		{"revoke at twice the gap, gate on", 1, 1 + 2*gap, revoke, true, false},
		{"revoke past twice the gap, gate on", 1, 2 + 2*gap, revoke, true, true},
		{"no backlog", 10, 10, put, false, false},
	} {
		if got := exceedsRequestLimit(tc.applied, tc.committed, tc.req, tc.priority); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
