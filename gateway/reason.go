package gateway

import (
	"net/http"

	"github.com/oauthgate/oauthgate/internal/oautherr"
)

// Reason says why a request was refused. The zero value is not a valid
// reason; Allowed decisions carry it.
type Reason int

// Reasons for refusing a request, each with a fixed status, RFC 6750 error
// code and description (see Status, Code, Description).
const (
	NoToken Reason = iota + 1
	Malformed
	InvalidToken
	Revoked
	BadPath
	NoRoute
	NoBusiness
	BadBusiness
	ForeignBusiness
	Unavailable
	InsufficientScope
	BadOverride
	BadProof
	UseNonce
	WrongKey
	BoundAsBearer
	NotBound
	WrongAudience
	UserCreates
	numReasons
)

// reasonInfo is one row of the rejection table: an entry of oautherr's
// table with a fixed description (nil: the bare challenge of RFC 6750
// §3.1, status 401) and its metrics label. Descriptions never echo the
// request.
type reasonInfo struct {
	*oautherr.Error
	label string
}

// The gateway's rejections, in one table. The codes and statuses are
// oautherr's.
var reasons = [numReasons]reasonInfo{
	NoToken:           {nil, "no_token"},
	Malformed:         {oautherr.InvalidRequest.WithDescription("the Authorization header is not a single Bearer token"), "malformed_token"},
	InvalidToken:      {oautherr.InvalidToken, "invalid_token"},
	Revoked:           {oautherr.InvalidToken.WithDescription("the access token was revoked"), "revoked_token"},
	BadPath:           {oautherr.InvalidRequest.WithDescription("the request path is not in canonical form"), "bad_path"},
	NoRoute:           {oautherr.AccessDenied.WithDescription("no route policy allows this method and path"), "no_route"},
	NoBusiness:        {oautherr.InvalidRequest.WithDescription("the business header is required"), "no_business"},
	BadBusiness:       {oautherr.InvalidRequest.WithDescription("the business header is malformed"), "bad_business"},
	ForeignBusiness:   {oautherr.BusinessNotAllowed, "foreign_business"},
	Unavailable:       {oautherr.TemporarilyUnavailable.WithDescription("token state cannot be checked right now"), "unavailable"},
	InsufficientScope: {oautherr.InsufficientScope, "insufficient_scope"},
	BadOverride:       {oautherr.InvalidRequest.WithDescription("the method-override headers are repeated or disagree"), "bad_override"},
	// RFC 9449 §7.1: proof errors are 401 with a DPoP challenge.
	BadProof:      {oautherr.InvalidDPoPProof.WithDescription("the DPoP proof is missing or invalid for this request").WithStatus(http.StatusUnauthorized), "bad_dpop_proof"},
	UseNonce:      {oautherr.UseDPoPNonce.WithDescription("the DPoP proof must carry the nonce in DPoP-Nonce").WithStatus(http.StatusUnauthorized), "use_dpop_nonce"},
	WrongKey:      {oautherr.InvalidToken.WithDescription("invalid DPoP key binding"), "dpop_wrong_key"},
	BoundAsBearer: {oautherr.InvalidToken.WithDescription("the access token is DPoP-bound: send it with the DPoP scheme and a proof"), "dpop_bound_as_bearer"},
	NotBound:      {oautherr.InvalidToken.WithDescription("the DPoP scheme needs a DPoP-bound access token"), "dpop_not_bound"},
	WrongAudience: {oautherr.InvalidToken.WithDescription("the access token was issued for another resource"), "wrong_audience"},
	UserCreates:   {oautherr.AccessDenied.WithDescription("only client-credentials tokens may create businesses on this route"), "user_creates"},
}

func (r Reason) info() reasonInfo {
	if r > 0 && r < numReasons {
		return reasons[r]
	}
	// An unknown reason still refuses.
	return reasons[NoRoute]
}

// Status is the HTTP status of the rejection.
func (r Reason) Status() int {
	if e := r.info().Error; e != nil {
		return e.Status
	}
	return http.StatusUnauthorized
}

// Code is the OAuth error code, "" for the bare challenge of a request
// without a token.
func (r Reason) Code() string {
	if e := r.info().Error; e != nil {
		return e.Code
	}
	return ""
}

// Description is a fixed, human-readable explanation ("" for NoToken).
func (r Reason) Description() string {
	if e := r.info().Error; e != nil {
		return e.Description
	}
	return ""
}

// String is a fixed lower_snake name, suitable as a metrics label.
func (r Reason) String() string { return r.info().label }

// Reasons lists every reason, for registering metrics up front.
func Reasons() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := NoToken; r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}
