package throttle

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oauthgate/oauthgate/internal/promreg"
)

// Metrics counts what the throttle did. Labels come from fixed sets (the
// endpoint, the kind of key), never from requests: no account, client id or
// address is a label value.
type Metrics struct {
	// Refused counts attempts refused while locked; label endpoint.
	Refused *prometheus.CounterVec
	// Locks counts locks begun; labels endpoint and subject (account,
	// sign_in_address, client, client_address).
	Locks *prometheus.CounterVec
}

// Endpoints are the values of the endpoint label.
const (
	EndpointSignIn     = "sign_in"
	EndpointToken      = "token"
	EndpointRevoke     = "revoke"
	EndpointIntrospect = "introspect"
)

var endpoints = map[string]bool{EndpointSignIn: true, EndpointToken: true, EndpointRevoke: true, EndpointIntrospect: true}

// NewMetrics creates the collectors and registers them with reg (again
// after a config reload).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "oauthgate", "throttle"
	m := &Metrics{
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "refused_total",
			Help: "Authentication attempts refused with 429 while their account, client or address was locked, by endpoint."},
			[]string{"endpoint"}),
		Locks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "locks_total",
			Help: "Locks begun after repeated failed authentications, by endpoint and by what was locked."},
			[]string{"endpoint", "subject"}),
	}
	var err error
	m.Refused, err = promreg.Register(reg, m.Refused, err)
	m.Locks, err = promreg.Register(reg, m.Locks, err)
	return m, err
}

func (m *Metrics) refused(endpoint string) {
	if m != nil && endpoints[endpoint] {
		m.Refused.WithLabelValues(endpoint).Inc()
	}
}

func (m *Metrics) locked(endpoint string, k Kind) {
	if m != nil && endpoints[endpoint] && k < numKinds {
		m.Locks.WithLabelValues(endpoint, names[k]).Inc()
	}
}
