package authserver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/internal/promreg"
)

// Metrics are the authorization server's Prometheus collectors. Label values
// come from fixed sets (grant types, RFC error codes), never from requests.
type Metrics struct {
	TokensIssued   *prometheus.CounterVec // label grant_type
	TokenErrors    *prometheus.CounterVec // label error
	ClientAuthFail *prometheus.CounterVec // label reason
	Reuse          *prometheus.CounterVec // label kind: code, refresh_token
	Revocations    prometheus.Counter
	Introspections *prometheus.CounterVec // label active: true, false
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "oauthgate", "authserver"
	m := &Metrics{
		TokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "tokens_issued_total",
			Help: "Access tokens issued by the token endpoint, by grant type."}, []string{"grant_type"}),
		TokenErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "token_errors_total",
			Help: "Token endpoint error responses, by RFC 6749 error code."}, []string{"error"}),
		ClientAuthFail: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "client_auth_failures_total",
			Help: "Failed client authentications, by reason."}, []string{"reason"}),
		Reuse: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "replays_total",
			Help: "Replayed authorization codes and refresh tokens (each revokes its grant)."}, []string{"kind"}),
		Revocations: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "revocation_requests_total",
			Help: "Successful RFC 7009 revocation requests."}),
		Introspections: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "introspections_total",
			Help: "RFC 7662 introspection answers, by whether the token was active."}, []string{"active"}),
	}
	var err error
	m.TokensIssued, err = promreg.Register(reg, m.TokensIssued, err)
	m.TokenErrors, err = promreg.Register(reg, m.TokenErrors, err)
	m.ClientAuthFail, err = promreg.Register(reg, m.ClientAuthFail, err)
	m.Reuse, err = promreg.Register(reg, m.Reuse, err)
	m.Revocations, err = promreg.Register(reg, m.Revocations, err)
	m.Introspections, err = promreg.Register(reg, m.Introspections, err)
	return m, err
}

// knownErrors bounds the error label to RFC codes.
var knownErrors = oautherr.Codes(oautherr.InvalidRequest, oautherr.InvalidClient, oautherr.InvalidGrant,
	oautherr.UnauthorizedClient, oautherr.UnsupportedGrantType, oautherr.InvalidScope, oautherr.ServerError,
	oautherr.TemporarilyUnavailable, oautherr.InvalidTarget)

// knownGrants bounds the grant_type label.
var knownGrants = map[string]bool{"client_credentials": true, "authorization_code": true, "refresh_token": true}

func (s *Server) observeTokenIssued(grant string) {
	if s.m != nil && knownGrants[grant] {
		s.m.TokensIssued.WithLabelValues(grant).Inc()
	}
}

func (s *Server) observeTokenError(code string) {
	if s.m == nil {
		return
	}
	if !knownErrors[code] {
		code = "other"
	}
	s.m.TokenErrors.WithLabelValues(code).Inc()
}

func (s *Server) observeClientAuth(reason string) {
	if s.m != nil {
		s.m.ClientAuthFail.WithLabelValues(reason).Inc()
	}
}

func (s *Server) observeReuse(kind string) {
	if s.m != nil {
		s.m.Reuse.WithLabelValues(kind).Inc()
	}
}

func (s *Server) observeRevocation() {
	if s.m != nil {
		s.m.Revocations.Inc()
	}
}

func (s *Server) observeIntrospection(active bool) {
	if s.m != nil {
		if active {
			s.m.Introspections.WithLabelValues("true").Inc()
		} else {
			s.m.Introspections.WithLabelValues("false").Inc()
		}
	}
}
