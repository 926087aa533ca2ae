package pegasus

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client's Prometheus collectors, registered on the caller's Registerer.
type metrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pegasus_client_operation_duration_seconds",
			Help:    "Latency of Pegasus client operations, retries included.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 18), // 100µs .. ~13s
		}, []string{"table", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pegasus_client_operation_errors_total",
			Help: "Pegasus client operations that returned an error.",
		}, []string{"table", "op"}),
	}
	var err error
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the identical collector another client registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// tableMetrics are one table's resolved observers, so recording allocates nothing.
type tableMetrics struct {
	latency [numOps]prometheus.Observer
	errors  [numOps]prometheus.Counter
}

func (m *metrics) forTable(name string) *tableMetrics {
	tm := &tableMetrics{}
	for op := OpType(0); op < numOps; op++ {
		tm.latency[op] = m.latency.WithLabelValues(name, op.String())
		tm.errors[op] = m.errors.WithLabelValues(name, op.String())
	}
	return tm
}

func (tm *tableMetrics) observe(op OpType, start time.Time, err error) {
	tm.latency[op].Observe(time.Since(start).Seconds())
	if err != nil {
		tm.errors[op].Inc()
	}
}
