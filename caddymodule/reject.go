package caddymodule

import (
	"encoding/json"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oauthgate/oauthgate/internal/oautherr"
)

// rejection is one way a protected request can be refused: an entry of
// oautherr's table with a fixed description (nil: a bare challenge, RFC
// 6750 §3.1) and its metrics label. Descriptions never echo the request.
type rejection struct {
	*oautherr.Error
	label string
}

var (
	rejNoToken         = rejection{nil, "no_token"}
	rejMalformed       = rejection{oautherr.InvalidRequest.WithDescription("the Authorization header is not a single Bearer token"), "malformed_token"}
	rejInvalidToken    = rejection{oautherr.InvalidToken, "invalid_token"}
	rejRevoked         = rejection{oautherr.InvalidToken.WithDescription("the access token was revoked"), "revoked_token"}
	rejBadPath         = rejection{oautherr.InvalidRequest.WithDescription("the request path is not in canonical form"), "bad_path"}
	rejNoRoute         = rejection{oautherr.AccessDenied.WithDescription("no route policy allows this method and path"), "no_route"}
	rejNoBusiness      = rejection{oautherr.InvalidRequest.WithDescription("the business header is required"), "no_business"}
	rejBadBusiness     = rejection{oautherr.InvalidRequest.WithDescription("the business header is malformed"), "bad_business"}
	rejForeignBusiness = rejection{oautherr.BusinessNotAllowed, "foreign_business"}
	rejUnavailable     = rejection{oautherr.TemporarilyUnavailable.WithDescription("token state cannot be checked right now"), "unavailable"}
	rejScope           = rejection{oautherr.InsufficientScope, "insufficient_scope"}
)

// status, code and desc read a rejection, the bare challenge included.
func (r rejection) status() int {
	if r.Error == nil {
		return http.StatusUnauthorized
	}
	return r.Status
}

func (r rejection) code() string {
	if r.Error == nil {
		return ""
	}
	return r.Code
}

func (r rejection) desc() string {
	if r.Error == nil {
		return ""
	}
	return r.Description
}

// rejectionLabels is every metrics label a decision can have.
var rejectionLabels = []rejection{rejNoToken, rejMalformed, rejInvalidToken, rejRevoked, rejBadPath, rejNoRoute,
	rejNoBusiness, rejBadBusiness, rejForeignBusiness, rejUnavailable, rejScope}

// protectError is the error value handle_errors sees.
type protectError struct{ code, desc string }

func (e protectError) Error() string {
	if e.code == "" {
		return "bearer token required"
	}
	return e.code + ": " + e.desc
}

func (p *Protect) reject(w http.ResponseWriter, r *http.Request, rej rejection) error {
	return p.writeRejection(w, r, rej, "")
}

func (p *Protect) rejectScope(w http.ResponseWriter, r *http.Request, scope string) error {
	return p.writeRejection(w, r, rejScope, scope)
}

// writeRejection sends the RFC 6750 challenge, then either returns a
// caddyhttp.Error (when the server has handle_errors routes) or writes the
// JSON body itself.
func (p *Protect) writeRejection(w http.ResponseWriter, r *http.Request, rej rejection, scope string) error {
	p.decisions.rejected[rej.label].Inc()
	h := w.Header()
	if rej.status() == http.StatusUnauthorized || rej.status() == http.StatusForbidden || rej.code() == oautherr.InvalidRequest.Code {
		challenge := `Bearer realm="` + p.Realm + `"`
		if rej.code() != "" {
			challenge += `, error="` + rej.code() + `", error_description="` + rej.desc() + `"`
		}
		if scope != "" {
			challenge += `, scope="` + scope + `"`
		}
		h.Set("WWW-Authenticate", challenge)
	}
	if rej.status() == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	h.Set("Cache-Control", "no-store")
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("oauth.error", rej.code())
	}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		return caddyhttp.Error(rej.status(), protectError{rej.code(), rej.desc()})
	}
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
		Scope       string `json:"scope,omitempty"`
	}{rej.code(), rej.desc(), scope}
	if body.Error == "" {
		body.Error, body.Description = oautherr.InvalidRequest.Code, "a bearer access token is required"
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(rej.status())
	return json.NewEncoder(w).Encode(body)
}

// decisionCounters are the gateway-decision counters of one handler,
// resolved once so the hot path does no label lookup.
type decisionCounters struct {
	allow, public prometheus.Counter
	rejected      map[string]prometheus.Counter
}
