// Package oautherr is the one table of OAuth error codes oauthgate sends:
// each code with its HTTP status and a default description, as values in
// the style of fosite's RFC6749Error. Handlers take an entry and refine it:
//
//	return oautherr.InvalidRequest.WithDescription("grant_type is required")
//	return oautherr.InvalidRequest.WithDescription("method must be POST").WithStatus(http.StatusMethodNotAllowed)
//	if errors.Is(err, oautherr.InvalidGrant) { … }
//
// The entries are shared: never modify one, derive a copy with the With
// methods. A new code is added here, not spelled out at its call site.
package oautherr

// Error is an OAuth error response: the code, a description for the
// developer (never an echo of a token or secret), the HTTP status it is sent
// with and, when the response needs one, its WWW-Authenticate challenge.
// It marshals as RFC 6749 §5.2's JSON body.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Status      int    `json:"-"`
	// Challenge is the WWW-Authenticate value sent with the error, or
	// empty (RFC 6749 §5.2 for invalid_client after HTTP Basic, RFC 6750
	// §3 for bearer-token errors).
	Challenge string `json:"-"`
	// RetryAfter, in seconds, is sent as Retry-After when positive (RFC
	// 9110 §10.2.3), as with 429 while a client is throttled.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// Is makes errors.Is match any error with the same code, so a refined copy
// is still oautherr.InvalidGrant.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// WithDescription returns a copy of e with desc as its description.
func (e *Error) WithDescription(desc string) *Error {
	c := *e
	c.Description = desc
	return &c
}

// WithStatus returns a copy of e sent with another HTTP status (405 for a
// wrong method, 413 for a body too large: the code stays the RFC's).
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.Status = status
	return &c
}

// WithRetryAfter returns a copy of e sent with Retry-After: seconds.
func (e *Error) WithRetryAfter(seconds int) *Error {
	c := *e
	c.RetryAfter = seconds
	return &c
}

// WithChallenge returns a copy of e sent with the WWW-Authenticate value ch.
func (e *Error) WithChallenge(ch string) *Error {
	c := *e
	c.Challenge = ch
	return &c
}

// The table. Defaults are what oauthgate says when the call site has
// nothing more precise to say.
var (
	// RFC 6749 §5.2 (token endpoint) and §4.1.2.1 (authorization endpoint).
	InvalidRequest          = &Error{Code: "invalid_request", Status: 400, Description: "the request is missing a parameter, repeats one or is otherwise malformed"}
	InvalidClient           = &Error{Code: "invalid_client", Status: 401, Description: "client authentication failed"}
	InvalidGrant            = &Error{Code: "invalid_grant", Status: 400, Description: "the grant is invalid, expired, revoked or was issued to another client"}
	UnauthorizedClient      = &Error{Code: "unauthorized_client", Status: 400, Description: "the client is not allowed to use this grant type"}
	UnsupportedGrantType    = &Error{Code: "unsupported_grant_type", Status: 400, Description: "grant_type is not supported"}
	InvalidScope            = &Error{Code: "invalid_scope", Status: 400, Description: "the requested scope is invalid or exceeds what the client may ask for"}
	AccessDenied            = &Error{Code: "access_denied", Status: 403, Description: "the request was denied"}
	UnsupportedResponseType = &Error{Code: "unsupported_response_type", Status: 400, Description: "only response_type=code is supported"}
	ServerError             = &Error{Code: "server_error", Status: 500, Description: "internal error"}
	TemporarilyUnavailable  = &Error{Code: "temporarily_unavailable", Status: 503, Description: "the authorization server is temporarily unavailable"}

	// OIDC Core §3.1.2.6.
	LoginRequired          = &Error{Code: "login_required", Status: 400, Description: "the user is not signed in"}
	ConsentRequired        = &Error{Code: "consent_required", Status: 400, Description: "the user has not consented to this request"}
	RequestNotSupported    = &Error{Code: "request_not_supported", Status: 400, Description: "request objects are not supported"}
	RequestURINotSupported = &Error{Code: "request_uri_not_supported", Status: 400, Description: "request_uri is not supported"}

	// RFC 6750 §3.1 (protected resources and userinfo).
	InvalidToken      = &Error{Code: "invalid_token", Status: 401, Description: "the access token is invalid or expired"}
	InsufficientScope = &Error{Code: "insufficient_scope", Status: 403, Description: "the access token lacks a scope this route requires"}

	// RFC 9449 §5, §7.1, §8, §9 (DPoP): 400 at the token endpoint; the
	// gateway sends them with 401 and a DPoP challenge.
	InvalidDPoPProof = &Error{Code: "invalid_dpop_proof", Status: 400, Description: "the DPoP proof is invalid"}
	UseDPoPNonce     = &Error{Code: "use_dpop_nonce", Status: 400, Description: "the DPoP proof must carry the server's nonce"}

	// RFC 8707 §2: a resource parameter is malformed, unknown, or more
	// than the grant allows.
	InvalidTarget = &Error{Code: "invalid_target", Status: 400, Description: "the requested resource is invalid, unknown, or not allowed"}

	// RFC 7591 §3.2.2 (dynamic client registration).
	InvalidRedirectURI    = &Error{Code: "invalid_redirect_uri", Status: 400, Description: "a redirect URI is invalid"}
	InvalidClientMetadata = &Error{Code: "invalid_client_metadata", Status: 400, Description: "a client metadata value is invalid"}

	// oauthgate's own: the token may not act for the business the request
	// names (tenancy).
	BusinessNotAllowed = &Error{Code: "business_not_allowed", Status: 403, Description: "the token may not act for this business"}
	// oauthgate's own, on routes that create businesses: the upstream
	// created one the calling client cannot own (it exists already or is
	// another client's), or its answer names no valid id.
	BusinessNotLinked       = &Error{Code: "business_not_linked", Status: 409, Description: "the upstream created a business that was not linked to this client"}
	InvalidUpstreamResponse = &Error{Code: "invalid_upstream_response", Status: 502, Description: "the upstream's answer does not name the business it created"}
)

// All is every entry of the table, for code sets (metric labels) and tests.
var All = []*Error{
	InvalidRequest, InvalidClient, InvalidGrant, UnauthorizedClient, UnsupportedGrantType, InvalidScope,
	AccessDenied, UnsupportedResponseType, ServerError, TemporarilyUnavailable,
	LoginRequired, ConsentRequired, RequestNotSupported, RequestURINotSupported,
	InvalidToken, InsufficientScope, InvalidRedirectURI, InvalidClientMetadata, BusinessNotAllowed,
	InvalidDPoPProof, UseDPoPNonce,
	InvalidTarget, BusinessNotLinked, InvalidUpstreamResponse,
}

// Codes returns the set of the given entries' codes.
func Codes(es ...*Error) map[string]bool {
	m := make(map[string]bool, len(es))
	for _, e := range es {
		m[e.Code] = true
	}
	return m
}
