package gateway

import (
	"strconv"
	"time"

	"github.com/dockgate/dockgate/internal/fairshare"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus series, on a registry of its own
// (never the global one, so tests and embedders can run several gateways).
type metrics struct {
	registry          *prometheus.Registry
	requests          *prometheus.CounterVec
	latency           *prometheus.HistogramVec
	activeConns       prometheus.Gauge
	hijackedStreams   prometheus.Gauge
	handshakeFailures *prometheus.CounterVec
	rejectedConns     prometheus.Counter
	revokedCuts       prometheus.Counter
	// refusedCertRequests counts requests of revoked or superseded
	// certificates, answered 403 (finalRefusal).
	refusedCertRequests *prometheus.CounterVec
	reloads             *prometheus.CounterVec
	clientLimited       *prometheus.CounterVec
}

func newMetrics(g *Gateway) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockgate_requests_total", Help: "Requests by operation and HTTP status.",
		}, []string{"operation", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dockgate_request_duration_seconds", Help: "Time to the end of the response (streams: their whole life).",
			// 100us..~100s: a ping through the gateway is ~100us, a build or pull can take minutes.
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 11),
		}, []string{"operation"}),
		activeConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockgate_active_connections", Help: "Open client connections.",
		}),
		hijackedStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dockgate_hijacked_streams", Help: "Live attach/exec/session streams.",
		}),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockgate_handshake_failures_total", Help: "Refused TLS handshakes by reason.",
		}, []string{"reason"}),
		rejectedConns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockgate_rejected_connections_total", Help: "Connections refused by limits.max_connections.",
		}),
		revokedCuts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dockgate_revoked_connections_closed_total", Help: "Live connections closed because their certificate was revoked.",
		}),
		refusedCertRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockgate_refused_certificate_requests_total", Help: "Requests refused because their certificate is revoked or superseded, by reason.",
		}, []string{"reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockgate_reloads_total", Help: "Reloads of certificates and config by result.",
		}, []string{"result"}),
		// Labelled by role, never by client, to bound the cardinality.
		clientLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dockgate_client_limited_total", Help: "Connections and requests refused (429) because their client was at a cap of its role, by role and limit.",
		}, []string{"role", "limit"}),
	}
	certExpiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dockgate_server_cert_expiry_seconds", Help: "Seconds until the server certificate expires.",
	}, func() float64 {
		return time.Until(g.material.Load().ServerCert.Leaf.NotAfter).Seconds()
	})
	idleUpstream := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dockgate_upstream_idle_connections", Help: "Idle connections to the Docker daemon in the pool.",
	}, func() float64 {
		if g.daemon == nil {
			return 0
		}
		return float64(g.daemon.pool.len())
	})
	reg.MustRegister(m.requests, m.latency, m.activeConns, m.hijackedStreams, m.handshakeFailures,
		m.rejectedConns, m.revokedCuts, m.refusedCertRequests, m.reloads, certExpiry, idleUpstream, m.clientLimited, shareCollector{g},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if g.opts.Audit != nil {
		reg.MustRegister(g.opts.Audit.Collector()) // dockgate_audit_records_total
	}
	for _, r := range []string{reasonNoCertificate, reasonUnknownAuthority, reasonExpired, reasonWrongKeyUsage, reasonRevoked, reasonInvalid, reasonProtocolVersion} {
		m.handshakeFailures.WithLabelValues(r)
	}
	for _, r := range []string{reasonRevoked, reasonSuperseded} {
		m.refusedCertRequests.WithLabelValues(r)
	}
	return m
}

// limited counts one refusal of a client at a cap of its role.
func (m *metrics) limited(role string, k fairshare.Kind) {
	m.clientLimited.WithLabelValues(role, k.String()).Inc()
}

// shareDesc is dockgate_client_in_use: what the clients of each role hold
// together, read from the fair share at each scrape, so that a role
// removed by a reload leaves the series once its clients let go.
var shareDesc = prometheus.NewDesc("dockgate_client_in_use",
	"Connections, requests in flight and hijacked streams held by the clients of each role.", []string{"role", "limit"}, nil)

type shareCollector struct{ g *Gateway }

func (shareCollector) Describe(ch chan<- *prometheus.Desc) { ch <- shareDesc }

func (c shareCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.g.share.ByRole() {
		for _, v := range []struct {
			k fairshare.Kind
			n int
		}{{fairshare.Connections, u.Connections}, {fairshare.Requests, u.Requests}, {fairshare.Streams, u.Streams}} {
			ch <- prometheus.MustNewConstMetric(shareDesc, prometheus.GaugeValue, float64(v.n), u.Role, v.k.String())
		}
	}
}

// observe counts one finished request.
func (m *metrics) observe(operation string, status int, start time.Time) {
	m.requests.WithLabelValues(operation, statusText(status)).Inc()
	m.latency.WithLabelValues(operation).Observe(time.Since(start).Seconds())
}

// statusText avoids an allocation for the common codes.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 101:
		return "101"
	case 201:
		return "201"
	case 204:
		return "204"
	case 304:
		return "304"
	case 403:
		return "403"
	case 404:
		return "404"
	case 500:
		return "500"
	case 502:
		return "502"
	}
	return strconv.Itoa(code)
}
