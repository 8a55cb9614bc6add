package caddymodule

import (
	"encoding/json"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
)

// rejection is one way a protected request can be refused: its status, RFC
// 6750 error code (empty: a bare challenge, §3.1), a fixed description and
// its metrics label. Descriptions never echo the request.
type rejection struct {
	status int
	code   string
	desc   string
	label  string
}

var (
	rejNoToken         = rejection{http.StatusUnauthorized, "", "", "no_token"}
	rejMalformed       = rejection{http.StatusBadRequest, "invalid_request", "the Authorization header is not a single Bearer token", "malformed_token"}
	rejInvalidToken    = rejection{http.StatusUnauthorized, "invalid_token", "the access token is invalid or expired", "invalid_token"}
	rejRevoked         = rejection{http.StatusUnauthorized, "invalid_token", "the access token was revoked", "revoked_token"}
	rejBadPath         = rejection{http.StatusBadRequest, "invalid_request", "the request path is not in canonical form", "bad_path"}
	rejNoRoute         = rejection{http.StatusForbidden, "access_denied", "no route policy allows this method and path", "no_route"}
	rejNoBusiness      = rejection{http.StatusBadRequest, "invalid_request", "the business header is required", "no_business"}
	rejBadBusiness     = rejection{http.StatusBadRequest, "invalid_request", "the business header is malformed", "bad_business"}
	rejForeignBusiness = rejection{http.StatusForbidden, "business_not_allowed", "the token may not act for this business", "foreign_business"}
	rejUnavailable     = rejection{http.StatusServiceUnavailable, "temporarily_unavailable", "token state cannot be checked right now", "unavailable"}
	rejScope           = rejection{http.StatusForbidden, "insufficient_scope", "the access token lacks a scope this route requires", "insufficient_scope"}
)

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
	if rej.status == http.StatusUnauthorized || rej.status == http.StatusForbidden || rej.code == "invalid_request" {
		challenge := `Bearer realm="` + p.Realm + `"`
		if rej.code != "" {
			challenge += `, error="` + rej.code + `", error_description="` + rej.desc + `"`
		}
		if scope != "" {
			challenge += `, scope="` + scope + `"`
		}
		h.Set("WWW-Authenticate", challenge)
	}
	if rej.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	h.Set("Cache-Control", "no-store")
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("oauth.error", rej.code)
	}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		return caddyhttp.Error(rej.status, protectError{rej.code, rej.desc})
	}
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
		Scope       string `json:"scope,omitempty"`
	}{rej.code, rej.desc, scope}
	if body.Error == "" {
		body.Error, body.Description = "invalid_request", "a bearer access token is required"
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(rej.status)
	return json.NewEncoder(w).Encode(body)
}

// decisionCounters are the gateway-decision counters of one handler,
// resolved once so the hot path does no label lookup.
type decisionCounters struct {
	allow, public prometheus.Counter
	rejected      map[string]prometheus.Counter
}
