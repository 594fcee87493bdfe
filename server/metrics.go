package server

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/apply"
	"github.com/cairn-kv/cairn/version"
)

// slowApplyThreshold is how long applying a batch of entries may take
// before it counts as slow (etcd's warnApplyDuration).
const slowApplyThreshold = 100 * time.Millisecond

// diskBuckets are etcd's buckets for disk latencies: 1 ms to 8.192 s.
var diskBuckets = prometheus.ExponentialBuckets(0.001, 2, 14)

// snapshotBuckets are etcd's buckets for snapshot transfers: 100 ms to 51.2 s.
var snapshotBuckets = prometheus.ExponentialBuckets(0.1, 2, 10)

// metrics are a member's Prometheus metrics, under etcd 3.7's names, help
// strings and labels, in a registry of the member's own (members in one
// process do not share series). Counters are updated where things happen;
// gauges of state are read when scraped.
type metrics struct {
	reg *prometheus.Registry

	leaderChanges    prometheus.Counter
	proposalsPending prometheus.Gauge
	proposalsFailed  prometheus.Counter
	slowApplies      prometheus.Counter
	healthSuccess    prometheus.Counter
	healthFailures   prometheus.Counter

	walFsync      prometheus.Histogram
	backendCommit prometheus.Histogram
	// requestDuration is etcd 3.7's etcd_server_request_duration_seconds,
	// by request type and success; see observeRequest.
	requestDuration *prometheus.HistogramVec

	ranges, puts, deletes, txns prometheus.Counter

	peerSent, peerReceived *prometheus.CounterVec
	// peers caches the per-peer series of peerSent and peerReceived, so a
	// message does not format a label.
	peers sync.Map // uint64 -> *peerMetrics

	snapSendSuccess, snapSendFailures *prometheus.CounterVec
	snapSendSeconds                   *prometheus.HistogramVec
	snapRecvSuccess, snapRecvFailures *prometheus.CounterVec
	snapRecvSeconds                   *prometheus.HistogramVec
}

type peerMetrics struct {
	sent, received prometheus.Counter
}

func newMetrics() *metrics {
	x := &metrics{
		reg: prometheus.NewRegistry(),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_leader_changes_seen_total", Help: "The number of leader changes seen.",
		}),
		proposalsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "etcd_server_proposals_pending", Help: "The current number of pending proposals to commit.",
		}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_proposals_failed_total", Help: "The total number of failed proposals seen.",
		}),
		slowApplies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_slow_apply_total", Help: "The total number of slow apply requests (likely overloaded from slow disk).",
		}),
		healthSuccess: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_health_success", Help: "The total number of successful health checks",
		}),
		healthFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_health_failures", Help: "The total number of failed health checks",
		}),
		walFsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "etcd_disk_wal_fsync_duration_seconds", Help: "The latency distributions of fsync called by WAL.",
			Buckets: diskBuckets,
		}),
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "etcd_disk_backend_commit_duration_seconds", Help: "The latency distributions of commit called by backend.",
			Buckets: diskBuckets,
		}),
		// etcd 3.7.4's etcdserver/metrics.go: 1 ms to 8.192 s.
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "etcd_server_request_duration_seconds", Help: "Response latency distribution in seconds for each type.",
			Buckets: diskBuckets,
		}, []string{"type", "success"}),
		ranges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_mvcc_range_total", Help: "Total number of ranges seen by this member.",
		}),
		puts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_mvcc_put_total", Help: "Total number of puts seen by this member.",
		}),
		deletes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_mvcc_delete_total", Help: "Total number of deletes seen by this member.",
		}),
		txns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_mvcc_txn_total", Help: "Total number of txns seen by this member.",
		}),
		peerSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_network_peer_sent_bytes_total", Help: "The total number of bytes sent to peers.",
		}, []string{"To"}),
		peerReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_network_peer_received_bytes_total", Help: "The total number of bytes received from peers.",
		}, []string{"From"}),
		snapSendSuccess: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_network_snapshot_send_success", Help: "Total number of successful snapshot sends",
		}, []string{"To"}),
		snapSendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_network_snapshot_send_failures", Help: "Total number of snapshot send failures",
		}, []string{"To"}),
		snapSendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "etcd_network_snapshot_send_total_duration_seconds", Help: "Total latency distributions of v3 snapshot sends",
			Buckets: snapshotBuckets,
		}, []string{"To"}),
		snapRecvSuccess: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_network_snapshot_receive_success", Help: "Total number of successful snapshot receives",
		}, []string{"From"}),
		snapRecvFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "etcd_network_snapshot_receive_failures", Help: "Total number of snapshot receive failures",
		}, []string{"From"}),
		snapRecvSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "etcd_network_snapshot_receive_total_duration_seconds", Help: "Total latency distributions of v3 snapshot receives",
			Buckets: snapshotBuckets,
		}, []string{"From"}),
	}
	x.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		x.leaderChanges, x.proposalsPending, x.proposalsFailed, x.slowApplies,
		x.healthSuccess, x.healthFailures, x.walFsync, x.backendCommit, x.requestDuration,
		x.ranges, x.puts, x.deletes, x.txns, x.peerSent, x.peerReceived,
		x.snapSendSuccess, x.snapSendFailures, x.snapSendSeconds,
		x.snapRecvSuccess, x.snapRecvFailures, x.snapRecvSeconds,
	)
	return x
}

// registerState adds the gauges read from the running member when
// scraped; m must be started.
func (x *metrics) registerState(m *Member) {
	gauge := func(name, help string, fn func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn)
	}
	labeled := func(name, help, label, value string) prometheus.Collector {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{label})
		g.WithLabelValues(value).Set(1)
		return g
	}
	quota := prometheus.NewGauge(prometheus.GaugeOpts{Name: "etcd_server_quota_backend_bytes", Help: "Current backend storage quota size in bytes."})
	quota.Set(float64(m.cfg.QuotaBackendBytes))
	x.reg.MustRegister(
		gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
			func() float64 { return bool01(m.node.Status().Lead != 0) }),
		gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
			func() float64 { st := m.node.Status(); return bool01(st.Lead != 0 && st.Lead == st.ID) }),
		gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.",
			func() float64 { return bool01(m.IsLearner()) }),
		// Gauges, not counters, in etcd too: they are Raft indexes.
		gauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.",
			func() float64 { return float64(m.node.Status().Commit) }),
		gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.",
			func() float64 { return float64(m.applied.Get()) }),
		// Status's dbSize and dbSizeInUse (storage.Engine.Sizes).
		gauge("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.",
			func() float64 { size, _ := m.eng.Sizes(); return float64(size) }),
		gauge("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.",
			func() float64 { _, inUse := m.eng.Sizes(); return float64(inUse) }),
		quota,
		gauge("etcd_debugging_auth_revision", "The current revision of auth store.",
			func() float64 { return float64(m.auth.Revision()) }),
		gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.",
			func() float64 { return float64(m.hub.Watchers()) }),
		gauge("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.",
			func() float64 { return float64(m.hub.Streams()) }),
		labeled("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
			"server_id", strconv.FormatUint(m.cluster.LocalID, 16)),
		labeled("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.",
			"server_version", version.APIVersion),
		labeled("etcd_server_go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.",
			"server_go_version", runtime.Version()),
	)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observeLeader counts leader changes as etcd does: each time a new,
// known leader is seen. It runs on the Raft loop.
func (x *metrics) observeLeader() func(lead uint64) {
	var last uint64
	return func(lead uint64) {
		if lead != 0 && lead != last {
			x.leaderChanges.Inc()
		}
		last = lead
	}
}

func (x *metrics) observeFsync(d time.Duration) { x.walFsync.Observe(d.Seconds()) }

// timeCommit runs an apply batch's commit and times it.
func (x *metrics) timeCommit(commit func() error) error {
	start := time.Now()
	err := commit()
	x.backendCommit.Observe(time.Since(start).Seconds())
	return err
}

// observeRequest records a request that started at start and ended with
// err in etcd_server_request_duration_seconds, as etcd 3.7 does: typ is
// "Range" (timed with its read index wait), "ReadonlyTxn" (timed after
// it) or, for a proposal, requestType's name (timed once admitted, until
// applied or failed).
func (x *metrics) observeRequest(typ string, start time.Time, err error) {
	x.requestDuration.WithLabelValues(typ, strconv.FormatBool(err == nil)).Observe(time.Since(start).Seconds())
}

// requestType names a proposal as etcd's getRequestType
// (etcdserver/v3_server.go).
func requestType(r *pb.InternalRaftRequest) string {
	switch {
	case r.Range != nil:
		return "Range"
	case r.Put != nil:
		return "Put"
	case r.DeleteRange != nil:
		return "DeleteRange"
	case r.Txn != nil:
		return "Txn"
	case r.Compaction != nil:
		return "Compaction"
	case r.LeaseGrant != nil:
		return "LeaseGrant"
	case r.LeaseRevoke != nil:
		return "LeaseRevoke"
	case r.LeaseCheckpoint != nil:
		return "LeaseCheckpoint"
	case r.Alarm != nil:
		return "Alarm"
	case r.Authenticate != nil:
		return "Authenticate"
	case r.AuthEnable != nil:
		return "AuthEnable"
	case r.AuthDisable != nil:
		return "AuthDisable"
	case r.AuthStatus != nil:
		return "AuthStatus"
	case r.AuthUserAdd != nil:
		return "AuthUserAdd"
	case r.AuthUserDelete != nil:
		return "AuthUserDelete"
	case r.AuthUserChangePassword != nil:
		return "AuthUserChangePassword"
	case r.AuthUserGrantRole != nil:
		return "AuthUserGrantRole"
	case r.AuthUserGet != nil:
		return "AuthUserGet"
	case r.AuthUserRevokeRole != nil:
		return "AuthUserRevokeRole"
	case r.AuthRoleAdd != nil:
		return "AuthRoleAdd"
	case r.AuthRoleGrantPermission != nil:
		return "AuthRoleGrantPermission"
	case r.AuthRoleGet != nil:
		return "AuthRoleGet"
	case r.AuthRoleRevokePermission != nil:
		return "AuthRoleRevokePermission"
	case r.AuthRoleDelete != nil:
		return "AuthRoleDelete"
	case r.AuthUserList != nil:
		return "AuthUserList"
	case r.AuthRoleList != nil:
		return "AuthRoleList"
	case r.ClusterVersionSet != nil:
		return "ClusterVersionSet"
	case r.ClusterMemberAttrSet != nil:
		return "ClusterMemberAttrSet"
	case r.DowngradeInfoSet != nil:
		return "DowngradeInfoSet"
	case r.DowngradeVersionTest != nil:
		return "DowngradeVersionTest"
	default:
		return "Unknown"
	}
}

// observeApplied counts the operations of an applied group of entries
// (etcd counts them in its mvcc layer) and a slow apply.
func (x *metrics) observeApplied(res *apply.Applied, took time.Duration) {
	if took > slowApplyThreshold {
		x.slowApplies.Inc()
	}
	var c opCount
	for i := range res.Results {
		switch r := res.Results[i].Resp.(type) {
		case *pb.PutResponse:
			c.puts++
		case *pb.DeleteRangeResponse:
			c.deletes++
		case *pb.TxnResponse:
			c.txn(r)
		}
	}
	x.add(c)
}

// observeReadTxn counts a read-only txn served locally.
func (x *metrics) observeReadTxn(r *pb.TxnResponse) {
	var c opCount
	c.txn(r)
	x.add(c)
}

func (x *metrics) add(c opCount) {
	if c.puts > 0 {
		x.puts.Add(float64(c.puts))
	}
	if c.deletes > 0 {
		x.deletes.Add(float64(c.deletes))
	}
	if c.ranges > 0 {
		x.ranges.Add(float64(c.ranges))
	}
	if c.txns > 0 {
		x.txns.Add(float64(c.txns))
	}
}

// opCount counts operations the way etcd's mvcc metrics do: every range,
// put and delete, and a txn when it ran more than one of them.
type opCount struct {
	ranges, puts, deletes, txns int
}

func (c *opCount) txn(r *pb.TxnResponse) {
	before := c.ranges + c.puts + c.deletes
	for _, op := range r.Responses {
		switch v := op.Response.(type) {
		case *pb.ResponseOp_ResponseRange:
			c.ranges++
		case *pb.ResponseOp_ResponsePut:
			c.puts++
		case *pb.ResponseOp_ResponseDeleteRange:
			c.deletes++
		case *pb.ResponseOp_ResponseTxn:
			if v.ResponseTxn != nil {
				c.txn(v.ResponseTxn)
			}
		}
	}
	if c.ranges+c.puts+c.deletes-before > 1 {
		c.txns++
	}
}

// peer returns the byte counters of peer id.
func (x *metrics) peer(id uint64) *peerMetrics {
	if p, ok := x.peers.Load(id); ok {
		return p.(*peerMetrics)
	}
	hex := strconv.FormatUint(id, 16)
	p, _ := x.peers.LoadOrStore(id, &peerMetrics{sent: x.peerSent.WithLabelValues(hex), received: x.peerReceived.WithLabelValues(hex)})
	return p.(*peerMetrics)
}

func (x *metrics) sentBytes(id uint64, n int)     { x.peer(id).sent.Add(float64(n)) }
func (x *metrics) receivedBytes(id uint64, n int) { x.peer(id).received.Add(float64(n)) }

// snapshotSent records a snapshot transfer to member to.
func (x *metrics) snapshotSent(to uint64, ok bool, took time.Duration) {
	hex := strconv.FormatUint(to, 16)
	if !ok {
		x.snapSendFailures.WithLabelValues(hex).Inc()
		return
	}
	x.snapSendSuccess.WithLabelValues(hex).Inc()
	x.snapSendSeconds.WithLabelValues(hex).Observe(took.Seconds())
}

// snapshotReceived records a snapshot transfer from member from.
func (x *metrics) snapshotReceived(from uint64, ok bool, took time.Duration) {
	hex := strconv.FormatUint(from, 16)
	if !ok {
		x.snapRecvFailures.WithLabelValues(hex).Inc()
		return
	}
	x.snapRecvSuccess.WithLabelValues(hex).Inc()
	x.snapRecvSeconds.WithLabelValues(hex).Observe(took.Seconds())
}

// MetricsHandler serves the member's metrics in Prometheus text format at
// /metrics, under etcd 3.7's names.
func (m *Member) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{})
}

// MetricsRegisterer is the member's metrics registry, for the layers above
// it (the gRPC server's metrics).
func (m *Member) MetricsRegisterer() prometheus.Registerer { return m.metrics.reg }

// ReportHealth counts a health check's outcome (etcd_server_health_success
// and etcd_server_health_failures); the /health handler calls it.
func (m *Member) ReportHealth(ok bool) {
	if ok {
		m.metrics.healthSuccess.Inc()
	} else {
		m.metrics.healthFailures.Inc()
	}
}
