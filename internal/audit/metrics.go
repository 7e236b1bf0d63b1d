package audit

import "github.com/prometheus/client_golang/prometheus"

var recordsDesc = prometheus.NewDesc("dockgate_audit_records_total",
	"Audit records by what became of them: written, dropped (queue full, or the log closed) or failed (lost in a failed write).",
	[]string{"result"}, nil)

var queuedDesc = prometheus.NewDesc("dockgate_audit_queued_records",
	"Audit records waiting for the writer, beside the batch it is writing; at audit.queue the queue is full.",
	nil, nil)

// Collector exports Stats as the counter vector
// dockgate_audit_records_total{result="written|dropped|failed"}, and
// Queued as the gauge dockgate_audit_queued_records; register it where
// the gateway's metrics are served.
func (l *Log) Collector() prometheus.Collector {
	return recordsCollector{l}
}

type recordsCollector struct{ l *Log }

func (c recordsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- recordsDesc
	ch <- queuedDesc
}

func (c recordsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.l.Stats()
	for _, v := range []struct {
		result string
		n      uint64
	}{{"written", st.Written}, {"dropped", st.Dropped}, {"failed", st.Failed}} {
		ch <- prometheus.MustNewConstMetric(recordsDesc, prometheus.CounterValue, float64(v.n), v.result)
	}
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(c.l.Queued()))
}
