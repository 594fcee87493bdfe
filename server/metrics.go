package server

import "net/http"

// MetricsHandler serves the member's metrics in Prometheus text format at
// /metrics (etcd's metric names). Until metrics exist it answers 404.
func (m *Member) MetricsHandler() http.Handler { return http.NotFoundHandler() }
