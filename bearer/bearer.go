// Package bearer is RFC 6750 on both sides of oauthgate: reading the bearer
// credential of a request (§2.1) and answering with the WWW-Authenticate
// challenge (§3). The gateway (oauth_protect) and the authorization server's
// UserInfo endpoint share it, so a client sees one behaviour. It depends on
// the standard library only, so any package may import it; the error codes
// are oautherr's.
package bearer

import (
	"net/http"
	"strings"
)

// RetryAfter is the Retry-After value, in seconds, of every 503 answer, at
// the gateway and at the authorization server's endpoints, so clients back
// off instead of hammering a node whose database is down.
const RetryAfter = "5"

// Token extracts the RFC 6750 §2.1 credential from the Authorization
// header. present is false when there is no Authorization header; malformed
// is true when there is one (or several) that is not exactly one
// "Bearer <token>", which RFC 6750 §3.1 answers with invalid_request.
//
// The token is not decoded here: its syntax is for the verifier to judge.
func Token(h http.Header) (token string, present, malformed bool) {
	vals := h["Authorization"]
	if len(vals) == 0 {
		return "", false, false
	}
	if len(vals) > 1 {
		return "", true, true
	}
	v := vals[0]
	const prefix = "Bearer "
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", true, true
	}
	token = strings.TrimLeft(v[len(prefix):], " ")
	// Two IndexByte scans, not ContainsAny: over a ~600-byte JWT,
	// ContainsAny's byte-at-a-time set lookup was the costliest step of an
	// allowed request (~0.4µs); IndexByte is vectorised (~30ns).
	if token == "" || strings.IndexByte(token, ' ') >= 0 || strings.IndexByte(token, '\t') >= 0 {
		return "", true, true
	}
	return token, true, false
}

// Challenge is one "Bearer" WWW-Authenticate challenge (RFC 6750 §3). An
// empty Error is the bare challenge of a request that sent no credential
// (§3.1: no error code then).
type Challenge struct {
	Realm       string
	Error       string
	Description string
	// Scope lists the scopes that would have sufficed (insufficient_scope).
	Scope string
	// ResourceMetadata is the RFC 9728 metadata URL of the resource, if any.
	ResourceMetadata string
	// DPoP makes it a "DPoP" challenge (RFC 9449 §7.1) instead of
	// "Bearer", with Algs as its algs parameter.
	DPoP bool
	Algs string
}

// String renders the challenge. Values are quoted as given: callers pass
// fixed descriptions and configured names, never request data, and
// ValidRealm checks configured realms.
func (c Challenge) String() string {
	var b strings.Builder
	b.Grow(64 + len(c.Realm) + len(c.Description) + len(c.Scope) + len(c.ResourceMetadata))
	if c.DPoP {
		b.WriteString(`DPoP realm="`)
	} else {
		b.WriteString(`Bearer realm="`)
	}
	b.WriteString(c.Realm)
	b.WriteByte('"')
	if c.Error != "" {
		param(&b, "error", c.Error)
		if c.Description != "" {
			param(&b, "error_description", c.Description)
		}
	}
	if c.Scope != "" {
		param(&b, "scope", c.Scope)
	}
	if c.ResourceMetadata != "" {
		param(&b, "resource_metadata", c.ResourceMetadata)
	}
	if c.DPoP && c.Algs != "" {
		param(&b, "algs", c.Algs)
	}
	return b.String()
}

// param appends `, name="value"` to a challenge.
func param(b *strings.Builder, name, value string) {
	b.WriteString(", ")
	b.WriteString(name)
	b.WriteString(`="`)
	b.WriteString(value)
	b.WriteByte('"')
}

// ValidRealm reports whether realm can be quoted in a challenge as is.
func ValidRealm(realm string) bool {
	return !strings.ContainsAny(realm, "\"\\\r\n")
}

// SetHeaders sets the response headers of a refused bearer request with
// the given status: the challenge on 400, 401 and 403 (RFC 6750 §3),
// Retry-After on 503, and Cache-Control: no-store always. The caller writes
// the status and body.
func SetHeaders(h http.Header, status int, c Challenge) {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		h.Set("WWW-Authenticate", c.String())
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", RetryAfter)
	}
	h.Set("Cache-Control", "no-store")
}
