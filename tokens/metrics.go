package tokens

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oauthgate/oauthgate/internal/promreg"
)

// Metrics are the Prometheus collectors the Service updates. Any nil field
// is skipped. Labels take values from fixed sets only, never from tokens.
type Metrics struct {
	// CacheHits and CacheMisses count lookups of the verified-token cache.
	CacheHits, CacheMisses prometheus.Counter
	// VerifyFailures counts rejected tokens by "reason"; the values are
	// listed by FailureReasons.
	VerifyFailures *prometheus.CounterVec
	// Minted counts signed tokens by "type": "access" or "id_token".
	Minted *prometheus.CounterVec
	// KeyRotations counts signing keys created by this node.
	KeyRotations prometheus.Counter
	// FeedErrors counts failed reads of the change feed.
	FeedErrors prometheus.Counter
	// Revocations is the size of the in-memory deny list.
	Revocations prometheus.Gauge
}

// FailureReasons lists the values of the VerifyFailures "reason" label.
func FailureReasons() []string {
	out := make([]string, numReasons)
	for i, e := range reasonErrors {
		out[i] = e.label
	}
	return out
}

// NewMetrics creates the collectors under the oauthgate_tokens_ prefix and
// registers them with reg, if not nil. A collector already registered (by
// a previous configuration) is reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "oauthgate", "tokens"
	m := &Metrics{
		CacheHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "cache_hits_total", Help: "Access tokens served from the verified-token cache."}),
		CacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "cache_misses_total", Help: "Access tokens that needed full verification."}),
		VerifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "verify_failures_total", Help: "Rejected tokens by reason."}, []string{"reason"}),
		Minted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "minted_total", Help: "Signed tokens by type."}, []string{"type"}),
		KeyRotations: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "key_rotations_total", Help: "Signing keys created by this node."}),
		FeedErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "feed_errors_total", Help: "Failed reads of the store's change feed."}),
		Revocations: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "revocations", Help: "Entries in the in-memory revocation deny list."}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.CacheHits, err = promreg.Register(reg, m.CacheHits, err)
	m.CacheMisses, err = promreg.Register(reg, m.CacheMisses, err)
	m.VerifyFailures, err = promreg.Register(reg, m.VerifyFailures, err)
	m.Minted, err = promreg.Register(reg, m.Minted, err)
	m.KeyRotations, err = promreg.Register(reg, m.KeyRotations, err)
	m.FeedErrors, err = promreg.Register(reg, m.FeedErrors, err)
	m.Revocations, err = promreg.Register(reg, m.Revocations, err)
	if err != nil {
		return nil, fmt.Errorf("registering tokens metrics: %w", err)
	}
	return m, nil
}

type counter interface{ Inc() }

type gauge interface{ Set(float64) }

type nopMetric struct{}

func (nopMetric) Inc()        {}
func (nopMetric) Set(float64) {}

// metrics is Metrics resolved once: nil fields become no-ops and label
// values are bound up front, so the hot path neither branches on nil nor
// looks labels up.
type metrics struct {
	hits, misses           counter
	failures               [numReasons]counter
	mintedAccess, mintedID counter
	rotations              counter
	feedErrors             counter
	denied                 gauge
}

func newMetrics(m *Metrics) metrics {
	var r metrics
	if m == nil {
		m = &Metrics{}
	}
	r.hits = orNop(m.CacheHits)
	r.misses = orNop(m.CacheMisses)
	for i, e := range reasonErrors {
		r.failures[i] = nopMetric{}
		if m.VerifyFailures != nil {
			r.failures[i] = m.VerifyFailures.WithLabelValues(e.label)
		}
	}
	r.mintedAccess, r.mintedID = nopMetric{}, nopMetric{}
	if m.Minted != nil {
		r.mintedAccess = m.Minted.WithLabelValues("access")
		r.mintedID = m.Minted.WithLabelValues("id_token")
	}
	r.rotations = orNop(m.KeyRotations)
	r.feedErrors = orNop(m.FeedErrors)
	r.denied = nopMetric{}
	if m.Revocations != nil {
		r.denied = m.Revocations
	}
	return r
}

func orNop(c prometheus.Counter) counter {
	if c == nil {
		return nopMetric{}
	}
	return c
}
