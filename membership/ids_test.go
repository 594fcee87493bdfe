package membership

import (
	"fmt"
	"testing"
)

// The IDs etcd gives its default member (peer URL http://localhost:2380,
// token etcd-cluster): 8e9e05c52164694d in cluster cdf818194e3a8c32, as
// every etcd user has seen in `etcdctl member list`.
func TestIDsMatchEtcd(t *testing.T) {
	id := MemberID([]string{"http://localhost:2380"}, "etcd-cluster")
	if got := fmt.Sprintf("%x", id); got != "8e9e05c52164694d" {
		t.Errorf("MemberID = %s, want 8e9e05c52164694d", got)
	}
	if got := fmt.Sprintf("%x", ClusterID([]uint64{id})); got != "cdf818194e3a8c32" {
		t.Errorf("ClusterID = %s, want cdf818194e3a8c32", got)
	}
}

func TestMemberIDIgnoresURLOrder(t *testing.T) {
	a := MemberID([]string{"http://a:2380", "http://b:2380"}, "t")
	b := MemberID([]string{"http://b:2380", "http://a:2380"}, "t")
	if a != b {
		t.Fatalf("MemberID depends on URL order: %x vs %x", a, b)
	}
	if a == MemberID([]string{"http://a:2380", "http://b:2380"}, "other") {
		t.Fatal("MemberID ignores the cluster token")
	}
}

func TestBootstrap(t *testing.T) {
	c, err := Bootstrap(map[string][]string{"n1": {"http://localhost:2380"}}, "etcd-cluster", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%x/%x", c.ID, c.LocalID) != "cdf818194e3a8c32/8e9e05c52164694d" {
		t.Fatalf("Bootstrap IDs = %x/%x", c.ID, c.LocalID)
	}
	if _, err := Bootstrap(map[string][]string{"n1": {"http://localhost:2380"}}, "t", "n2"); err == nil {
		t.Fatal("Bootstrap with a name missing from --initial-cluster: no error")
	}
}
