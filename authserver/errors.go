package authserver

import (
	"encoding/json"
	"net/http"
)

// Error is an OAuth 2.0 error response: the RFC 6749 code, a description for
// the developer, and the HTTP status it is sent with, kept in one value so a
// handler cannot pair a code with the wrong status.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Status      int    `json:"-"`
	// basicChallenge asks for a WWW-Authenticate: Basic challenge (RFC 6749
	// §5.2: invalid_client after the client tried HTTP Basic).
	basicChallenge bool
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 6749 §4.1.2.1 and OIDC Core §3.1.2.6 codes.
const (
	codeInvalidRequest          = "invalid_request"
	codeInvalidClient           = "invalid_client"
	codeInvalidGrant            = "invalid_grant"
	codeUnauthorizedClient      = "unauthorized_client"
	codeUnsupportedGrantType    = "unsupported_grant_type"
	codeInvalidScope            = "invalid_scope"
	codeServerError             = "server_error"
	codeTemporarilyUnavailable  = "temporarily_unavailable"
	codeAccessDenied            = "access_denied"
	codeUnsupportedResponseType = "unsupported_response_type"
	codeLoginRequired           = "login_required"
	codeConsentRequired         = "consent_required"
)

func errInvalidRequest(desc string) *Error {
	return &Error{Code: codeInvalidRequest, Description: desc, Status: http.StatusBadRequest}
}

func errInvalidGrant(desc string) *Error {
	return &Error{Code: codeInvalidGrant, Description: desc, Status: http.StatusBadRequest}
}

func errInvalidScope(desc string) *Error {
	return &Error{Code: codeInvalidScope, Description: desc, Status: http.StatusBadRequest}
}

func errUnauthorizedClient(desc string) *Error {
	return &Error{Code: codeUnauthorizedClient, Description: desc, Status: http.StatusBadRequest}
}

func errInvalidClient(basic bool) *Error {
	return &Error{Code: codeInvalidClient, Description: "client authentication failed", Status: http.StatusUnauthorized, basicChallenge: basic}
}

func errServer() *Error {
	return &Error{Code: codeServerError, Description: "internal error", Status: http.StatusInternalServerError}
}

func errUnavailable() *Error {
	return &Error{Code: codeTemporarilyUnavailable, Description: "the authorization server is temporarily unavailable", Status: http.StatusServiceUnavailable}
}

// retryAfterSeconds is sent with every 503 so clients back off instead of
// hammering a node whose database is down.
const retryAfterSeconds = "5"

// writeError writes e as the JSON body RFC 6749 §5.2 prescribes.
func writeError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	if e.basicChallenge {
		h.Set("WWW-Authenticate", `Basic realm="oauthgate", charset="UTF-8"`)
	}
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", retryAfterSeconds)
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
