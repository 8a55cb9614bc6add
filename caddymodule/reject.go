package caddymodule

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/dpop"
	"github.com/oauthgate/oauthgate/gateway"
	"github.com/oauthgate/oauthgate/internal/oautherr"
)

// protectError is the error value handle_errors sees.
type protectError struct{ code, desc string }

func (e protectError) Error() string {
	if e.code == "" {
		return "bearer token required"
	}
	return e.code + ": " + e.desc
}

// reject applies a refusal: the RFC 6750 challenge always, then either
// the JSON body (default) or a caddyhttp.Error for handle_errors.
func (p *Protect) reject(w http.ResponseWriter, r *http.Request, d gateway.Decision) error {
	rej := d.Reason
	if rej <= 0 || int(rej) >= len(p.decisions.rejected) {
		rej = 0 // counted as no_route, which is how gateway answers it
	}
	p.decisions.rejected[rej].Inc()
	rej = d.Reason
	if d.Err != nil {
		if c := p.logger.Check(zapcore.DebugLevel, "token rejected"); c != nil {
			c.Write(zap.Error(d.Err))
		}
	}
	status, code, desc := rej.Status(), rej.Code(), rej.Description()
	if f := (*dpop.Failure)(nil); rej == gateway.BadProof && errors.As(d.Err, &f) {
		desc = f.Reason // fixed text: which rule the proof broke
	}
	// A refusal about DPoP, or of a request that used the DPoP scheme, is
	// challenged with the DPoP scheme and its algs (RFC 9449 §7.1).
	ch := bearer.Challenge{Realm: p.Realm, Error: code, Description: desc, Scope: d.Scope, ResourceMetadata: p.resource.metadataURL,
		DPoP: d.DPoP || bearer.UsesDPoP(r.Header), Algs: p.dpopAlgs}
	bearer.SetHeaders(w.Header(), status, ch)
	if rej == gateway.NoToken {
		// No credential at all: both schemes are offered (§7.2).
		w.Header().Add("WWW-Authenticate", bearer.Challenge{Realm: p.Realm, ResourceMetadata: p.resource.metadataURL, DPoP: true, Algs: p.dpopAlgs}.String())
	}
	if d.Nonce != "" {
		w.Header().Set(dpop.NonceHeader, d.Nonce)
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("oauth.error", code)
	}
	if p.handleErrors {
		return caddyhttp.Error(status, protectError{code, desc})
	}
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
		Scope       string `json:"scope,omitempty"`
	}{code, desc, d.Scope}
	if body.Error == "" {
		body.Error, body.Description = oautherr.InvalidRequest.Code, "a bearer access token is required"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(body)
}

// decisionCounters are the gateway-decision counters of one handler,
// resolved once so the hot path does no label lookup.
type decisionCounters struct {
	allow, public prometheus.Counter
	// rejected is indexed by gateway.Reason.
	rejected []prometheus.Counter
}
