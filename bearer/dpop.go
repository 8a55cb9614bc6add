package bearer

import (
	"net/http"
	"strings"
)

// Scheme is the authentication scheme an access token was sent with.
type Scheme uint8

// Schemes.
const (
	SchemeBearer Scheme = iota // RFC 6750 §2.1
	SchemeDPoP                 // RFC 9449 §7.1
)

// Credential extracts the access token of an Authorization header that is
// exactly one "Bearer <token>" or "DPoP <token>" (RFC 9449 §7.1; scheme
// names without regard to case), and says which. present and malformed
// are as for Token.
func Credential(h http.Header) (token string, scheme Scheme, present, malformed bool) {
	vals := h["Authorization"]
	if len(vals) != 1 {
		return "", SchemeBearer, len(vals) > 0, len(vals) > 0
	}
	v := vals[0]
	const dpopPrefix = "DPoP "
	if len(v) > len(dpopPrefix) && strings.EqualFold(v[:len(dpopPrefix)], dpopPrefix) {
		token = strings.TrimLeft(v[len(dpopPrefix):], " ")
		if token == "" || strings.IndexByte(token, ' ') >= 0 || strings.IndexByte(token, '\t') >= 0 {
			return "", SchemeDPoP, true, true
		}
		return token, SchemeDPoP, true, false
	}
	token, present, malformed = Token(h)
	return token, SchemeBearer, present, malformed
}

// UsesDPoP reports whether the request's Authorization header names the
// DPoP scheme, so that its refusal is challenged with that scheme.
func UsesDPoP(h http.Header) bool {
	vals := h["Authorization"]
	return len(vals) == 1 && len(vals[0]) >= 5 && strings.EqualFold(vals[0][:5], "DPoP ")
}
