package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics, under the names servers and agents share. The namespace is
// CoreDNS's (plugin.Namespace), spelt out so that the agent, which has no
// CoreDNS inside, need not import it.
var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "coredns",
		Subsystem: "healthdns",
		Name:      "webhook_requests_total",
		Help:      "ExternalDNS webhook requests by owner, endpoint (negotiate, records, applychanges, adjustendpoints, other) and HTTP status code.",
	}, []string{"owner", "endpoint", "code"})

	recordCount = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "coredns",
		Subsystem: "healthdns",
		Name:      "webhook_records",
		Help:      "Records (endpoints) the webhook's owner publishes.",
	}, []string{"owner"})

	applyDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "coredns",
		Subsystem: "healthdns",
		Name:      "webhook_apply_duration_seconds",
		Help:      "Time to apply a batch of changes durably (write-ahead log append and fsync), by owner.",
		Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"owner"})
)
