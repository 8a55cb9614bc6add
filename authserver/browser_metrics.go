package authserver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/internal/promreg"
)

// BrowserMetrics count what happens in the browser flow. Label values come
// from fixed sets.
type BrowserMetrics struct {
	// Authorizations counts authorization-endpoint outcomes (label
	// outcome): code, sign_in, consent, error_page, or the RFC 6749 /
	// OIDC error code sent to the client.
	Authorizations *prometheus.CounterVec
	// SignIns counts sign-in attempts at the built-in directory (label
	// result: success, failure), so that guessing shows.
	SignIns *prometheus.CounterVec
}

// NewBrowserMetrics creates the collectors and registers them with reg.
func NewBrowserMetrics(reg prometheus.Registerer) (*BrowserMetrics, error) {
	const ns, sub = "oauthgate", "authserver"
	m := &BrowserMetrics{
		Authorizations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "authorizations_total",
			Help: "Authorization endpoint outcomes: code, sign_in, consent, error_page, or the error code sent to the client."}, []string{"outcome"}),
		SignIns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sign_ins_total",
			Help: "Sign-in attempts at the built-in directory, by result."}, []string{"result"}),
	}
	var err error
	m.Authorizations, err = promreg.Register(reg, m.Authorizations, err)
	m.SignIns, err = promreg.Register(reg, m.SignIns, err)
	return m, err
}

// Outcomes of the authorization endpoint that are not error codes.
const (
	outcomeCode      = "code"
	outcomeSignIn    = "sign_in"
	outcomeConsent   = "consent"
	outcomeErrorPage = "error_page"
)

// authorizationErrors bounds the outcome label to known codes.
var authorizationErrors = oautherr.Codes(oautherr.InvalidRequest, oautherr.UnauthorizedClient, oautherr.AccessDenied,
	oautherr.UnsupportedResponseType, oautherr.InvalidScope, oautherr.ServerError, oautherr.TemporarilyUnavailable,
	oautherr.LoginRequired, oautherr.ConsentRequired, oautherr.RequestNotSupported, oautherr.RequestURINotSupported,
	oautherr.InvalidTarget)

func outcomeFor(code string) string {
	if authorizationErrors[code] {
		return code
	}
	return "other"
}

func (s *Server) observeAuthorization(outcome string) {
	if m := s.cfg.BrowserMetrics; m != nil {
		m.Authorizations.WithLabelValues(outcome).Inc()
	}
}

func (s *Server) observeSignIn(ok bool) {
	if m := s.cfg.BrowserMetrics; m != nil {
		if ok {
			m.SignIns.WithLabelValues("success").Inc()
		} else {
			m.SignIns.WithLabelValues("failure").Inc()
		}
	}
}
