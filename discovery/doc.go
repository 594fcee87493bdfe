// Package discovery finds the initial members of a new cluster, as etcd's
// bootstrap by discovery does: through a v3 discovery service (etcd 3.6+:
// keys under /_etcd/registry/<token> on any etcd v3 API server, JoinV3),
// a v2 discovery URL (etcd ≤ 3.5: a directory of the v2 keys API, JoinV2),
// or DNS SRV records (SRVCluster). Each returns the cluster in
// --initial-cluster form, "name=peerURL,name=peerURL,...".
//
// A member runs discovery only on its first start, before it creates its
// data directory, so a failed discovery leaves nothing behind. Errors are
// etcd's (ErrFullCluster, ErrSizeNotFound, ...), wrapped in *Error as
// etcd's DiscoveryError wraps them.
//
// NewV2Token and NewV3Token create a fresh token on a discovery service
// the caller runs, as discovery.etcd.io did (cairn discovery new).
package discovery
