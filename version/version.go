// Package version holds Cairn's release and the etcd API release it implements.
package version

const (
	// Version is Cairn's own release.
	Version = "0.1.0"
	// APIVersion is the etcd release whose v3 API Cairn implements; it is
	// what Maintenance.Status reports and what `cairn --version` prints as
	// "etcd Version:", so etcd tooling that parses that line works.
	APIVersion = "3.7.4"
	// ClusterVersion is the etcd cluster version (major.minor.0) reported by /version.
	ClusterVersion = "3.7.0"
)
