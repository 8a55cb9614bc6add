package caddymodule

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oauthgate/oauthgate/gateway"
	"github.com/oauthgate/oauthgate/internal/promreg"
	"github.com/oauthgate/oauthgate/tokens"
)

// gatewayMetrics counts oauth_protect decisions by outcome.
type gatewayMetrics struct {
	decisions *prometheus.CounterVec
	links     *prometheus.CounterVec // creation routes (create.go)
}

func newGatewayMetrics(reg prometheus.Registerer) (*gatewayMetrics, error) {
	vec, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "oauthgate", Subsystem: "gateway", Name: "decisions_total",
		Help: "oauth_protect decisions: allow, public, or the reason for a rejection.",
	}, []string{"outcome"}), nil)
	if err != nil {
		return nil, err
	}
	links, err := newLinkMetrics(reg)
	return &gatewayMetrics{decisions: vec, links: links}, err
}

// decisionsFor resolves every label once, at provision time.
func (m *gatewayMetrics) decisionsFor() decisionCounters {
	d := decisionCounters{
		allow:  m.decisions.WithLabelValues("allow"),
		public: m.decisions.WithLabelValues("public"),
	}
	reasons := gateway.Reasons()
	d.rejected = make([]prometheus.Counter, len(reasons)+1)
	// An out-of-range reason counts as no_route, as gateway reports it.
	d.rejected[0] = m.decisions.WithLabelValues(gateway.NoRoute.String())
	for _, r := range reasons {
		d.rejected[r] = m.decisions.WithLabelValues(r.String())
	}
	return d
}

func newTokenMetrics(reg prometheus.Registerer) (*tokens.Metrics, error) {
	return tokens.NewMetrics(reg)
}

// registerStoreMetrics exports the connection pool's statistics, read
// through stats when scraped (the store opens in Start, after this runs).
func registerStoreMetrics(reg prometheus.Registerer, stats func() sql.DBStats) error {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "oauthgate", Subsystem: "store", Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "oauthgate", Subsystem: "store", Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		gauge("pool_max_open", "Maximum open connections of the store's pool.", func() float64 { return float64(stats().MaxOpenConnections) }),
		gauge("pool_open", "Open connections of the store's pool.", func() float64 { return float64(stats().OpenConnections) }),
		gauge("pool_in_use", "Connections in use.", func() float64 { return float64(stats().InUse) }),
		gauge("pool_idle", "Idle connections.", func() float64 { return float64(stats().Idle) }),
		counter("pool_wait_total", "Times a query waited for a free connection.", func() float64 { return float64(stats().WaitCount) }),
		counter("pool_wait_seconds_total", "Time spent waiting for a free connection.", func() float64 { return stats().WaitDuration.Seconds() }),
	}
	for _, c := range cs {
		// A reload registers functions over the new app: replace the old.
		reg.Unregister(c)
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
