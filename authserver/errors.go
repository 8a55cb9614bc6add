package authserver

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/internal/oautherr"
)

// Error is an OAuth 2.0 error response. Every code, with its status and
// default description, is in oautherr's table: take an entry and refine it,
// oautherr.InvalidRequest.WithDescription("…"), or use the helpers below.
type Error = oautherr.Error

func errInvalidRequest(desc string) *Error { return oautherr.InvalidRequest.WithDescription(desc) }

func errInvalidGrant(desc string) *Error { return oautherr.InvalidGrant.WithDescription(desc) }

func errInvalidScope(desc string) *Error { return oautherr.InvalidScope.WithDescription(desc) }

func errUnauthorizedClient(desc string) *Error {
	return oautherr.UnauthorizedClient.WithDescription(desc)
}

// basicChallenge answers invalid_client after the client tried HTTP Basic
// (RFC 6749 §5.2).
const basicChallenge = `Basic realm="oauthgate", charset="UTF-8"`

func errInvalidClient(basic bool) *Error {
	if basic {
		return oautherr.InvalidClient.WithChallenge(basicChallenge)
	}
	return oautherr.InvalidClient
}

func errServer() *Error { return oautherr.ServerError }

func errUnavailable() *Error { return oautherr.TemporarilyUnavailable }

// writeError writes e as the JSON body RFC 6749 §5.2 prescribes.
func writeError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	if e.Challenge != "" {
		h.Set("WWW-Authenticate", e.Challenge)
	}
	switch {
	case e.RetryAfter > 0:
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	case e.Status == http.StatusServiceUnavailable:
		h.Set("Retry-After", bearer.RetryAfter)
	}
	writeJSON(w, e.Status, e)
}

// writeJSON writes v with the no-store headers every token-endpoint response
// needs (RFC 6749 §5.1).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
