// Package gateway is the verdict of oauth_protect on one request, in one
// function: Guard.Decide canonicalises the path, finds the route, verifies
// the bearer token, checks its scopes and the tenancy (looking up business
// ownership only when the answer depends on it) and returns a Decision. It
// reads the request and changes nothing: applying the decision (identity
// headers, placeholders, the challenge) is the Caddy handler's job.
//
// The data flows one way: gateway calls bearer (extraction), policies
// (route, scope, tenancy rule) and the token verifier; none of them calls
// back.
package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/dpop"
	"github.com/oauthgate/oauthgate/policies"
	"github.com/oauthgate/oauthgate/tokens"
)

// Verifier is what a decision needs from the token service.
type Verifier interface {
	// Verify checks an access token and returns its claims.
	Verify(raw string) (*tokens.Claims, error)
	// ClientOwns reports whether a client may act for a business.
	ClientOwns(ctx context.Context, clientID, business string) (bool, error)
}

// OverrideHeaders are the method-override headers some frameworks honour
// (Rails, Express's method-override, ASP.NET, Google APIs): with one, a
// request checked as a GET could act as a DELETE upstream.
var OverrideHeaders = []string{"X-Http-Method-Override", "X-Method-Override", "X-Http-Method"}

// Config is what a Guard decides with.
type Config struct {
	// Policy is the compiled route map; nil matches nothing.
	Policy *policies.Policy
	// Tenancy is the tenancy rule; its Header must be in canonical form.
	Tenancy policies.Tenancy
	// Audiences are the token audiences this guard accepts: its resource
	// (RFC 8707) and the audience of tokens requested without one. A token
	// whose aud names none of them is refused (WrongAudience). Empty:
	// any audience the verifier accepted.
	Audiences []string
	// CheckOverride judges a request carrying a method-override header by
	// both its method and the overriding one (each must be allowed). When
	// false, the caller deletes those headers before proxying and Decide
	// ignores them.
	CheckOverride bool
	// DPoP checks the proofs of DPoP-bound tokens (RFC 9449 §7); nil
	// refuses every bound token.
	DPoP *dpop.Checker
	// DPoPOrigin is the resource's public origin ("https://api.example.com"):
	// a proof's htu may name it as well as the URL the request arrived at,
	// for a gateway behind a proxy that terminates TLS or rewrites Host.
	// Empty: only the request's own URL.
	DPoPOrigin string
	// DPoPOriginOnly: a proof's htu must name DPoPOrigin, not the origin
	// the request arrived with (set when the operator named the resource,
	// whose origin is the one clients call).
	DPoPOriginOnly bool
	// ProofPath returns the path the client requested, before any rewrite
	// or stripped prefix (Caddy's handle_path, uri strip_prefix): the path
	// a proof's htu names. nil: r.URL.Path.
	ProofPath func(r *http.Request) string
	// Creating marks the routes that create businesses, indexed by the
	// route's rule index (policies.Route.Index); shorter than the rules, or
	// nil, means the rest create nothing.
	Creating []Creating
}

// Guard decides requests. It is immutable and safe for concurrent use.
type Guard struct {
	cfg Config
	// originScheme and originHost are DPoPOrigin's.
	originScheme, originHost string
}

// New returns a Guard for cfg.
func New(cfg Config) *Guard {
	g := &Guard{cfg: cfg}
	if u, err := url.Parse(cfg.DPoPOrigin); err == nil && u.Host != "" {
		g.originScheme, g.originHost = u.Scheme, u.Host
	}
	return g
}

// Verdict is the kind of a Decision. The zero value refuses.
type Verdict int

// Verdicts.
const (
	Refuse Verdict = iota // Reason says why
	Allow                 // a valid token passed every check
	Public                // the route needs no token
)

// Decision is the verdict on one request.
type Decision struct {
	Verdict Verdict
	// Reason says why a request is refused.
	Reason Reason
	// Scope is the missing scope of an InsufficientScope refusal.
	Scope string
	// Err is the verifier's error behind a token refusal, for a debug log.
	Err error
	// Claims are the verified token's (Allow only). Shared: read-only.
	Claims *tokens.Claims
	// Business is the business the request acts for ("" with tenancy off
	// and no header). When it differs from the request's header, the
	// handler sets the header to it (tenancy inject).
	Business string
	// SetBusiness is true when the tenant header must be set to Business.
	SetBusiness bool
	// DPoP is true when the refusal is about DPoP (challenge with the DPoP
	// scheme); Nonce, when set, is sent as DPoP-Nonce (RFC 9449 §8, §9),
	// on a refusal or an allowed request alike.
	DPoP  bool
	Nonce string
	// Creates is true when the route creates a business: Business is then
	// empty, and the handler deletes the tenant header.
	Creates bool
	// Link is true when the business the upstream creates is to be linked
	// to Claims.ClientID (a client-credentials token on a creation route).
	Link bool
	// Rule is the index of the route's rule when Creates is true.
	Rule int
}

func refuse(r Reason) Decision { return Decision{Reason: r} }

// Decide judges r. v verifies tokens and answers ownership questions; it
// is passed per request because the token service may start after the
// Guard is built.
func (g *Guard) Decide(r *http.Request, v Verifier) Decision {
	// An encoded slash would be matched as "/" here but reach the upstream
	// as %2F: refuse rather than guess how the upstream reads it.
	if !policies.CleanPath(r.URL.Path) || hasEncodedSlash(r.URL.RawPath) {
		return refuse(BadPath)
	}
	route := g.cfg.Policy.Match(r.Method, r.URL.Path)
	if route == nil {
		return refuse(NoRoute)
	}
	var other *policies.Route // the route of an overriding method
	if g.cfg.CheckOverride {
		m, bad := overrideMethod(r.Header)
		if bad {
			return refuse(BadOverride)
		}
		if m != "" && m != r.Method {
			if other = g.cfg.Policy.Match(m, r.URL.Path); other == nil {
				return refuse(NoRoute)
			}
		}
	}
	if route.Public() && (other == nil || other.Public()) {
		return Decision{Verdict: Public}
	}

	raw, scheme, present, malformed := bearer.Credential(r.Header)
	switch {
	case !present:
		return refuse(NoToken)
	case malformed:
		return refuse(Malformed)
	}
	claims, err := v.Verify(raw)
	if err != nil {
		d := refuse(InvalidToken)
		switch {
		case errors.Is(err, tokens.ErrUnavailable):
			d.Reason = Unavailable
		case errors.Is(err, tokens.ErrRevoked):
			d.Reason = Revoked
		}
		d.Err = err
		return d
	}
	if len(g.cfg.Audiences) > 0 && !claims.HasAudience(g.cfg.Audiences) {
		return refuse(WrongAudience)
	}
	var nonce string
	if claims.JKT != "" || scheme == bearer.SchemeDPoP {
		d, n, ok := g.checkProof(r, raw, scheme, claims)
		if !ok {
			return d
		}
		nonce = n
	}
	if scope, missing := route.Missing(claims.Scopes); missing {
		return Decision{Reason: InsufficientScope, Scope: scope}
	}
	if other != nil && !other.Public() {
		if scope, missing := other.Missing(claims.Scopes); missing {
			return Decision{Reason: InsufficientScope, Scope: scope}
		}
	}

	if d, ok := g.decideCreation(route, other, claims); ok {
		d.Nonce = nonce
		return d
	}

	header := ""
	if vals := r.Header[g.cfg.Tenancy.Header]; len(vals) == 1 {
		header = vals[0]
	} else if len(vals) > 1 {
		return refuse(BadBusiness)
	}
	// The ownership lookup runs only if Resolve asks, which it does only
	// for a client token naming a well-formed business under a tenancy
	// that checks it: never with tenancy off.
	own := owner{ctx: r.Context(), v: v, client: claims.ClientID}
	business, out := g.cfg.Tenancy.Resolve(header, claims.BusinessID, own.owns)
	if own.err != nil {
		return refuse(Unavailable)
	}
	switch out {
	case policies.Allow:
	case policies.NoBusiness:
		return refuse(NoBusiness)
	case policies.BadBusiness:
		return refuse(BadBusiness)
	default:
		return refuse(ForeignBusiness)
	}
	return Decision{Verdict: Allow, Claims: claims, Business: business, SetBusiness: business != header, Nonce: nonce}
}

// owner is the lazy ownership lookup handed to Tenancy.Resolve. A store
// error is kept so the request fails closed with 503.
type owner struct {
	ctx    context.Context
	v      Verifier
	client string
	err    error
}

func (o *owner) owns(business string) bool {
	ok, err := o.v.ClientOwns(o.ctx, o.client, business)
	if err != nil {
		o.err = err
		return false
	}
	return ok
}

// overrideMethod returns the method the override headers name, "" for
// none; bad when a header repeats or two of them disagree.
func overrideMethod(h http.Header) (method string, bad bool) {
	for _, k := range OverrideHeaders {
		vals, ok := h[k]
		if !ok {
			continue
		}
		if len(vals) != 1 || vals[0] == "" || (method != "" && vals[0] != method) {
			return "", true
		}
		method = vals[0]
	}
	return method, false
}

func hasEncodedSlash(raw string) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && raw[i+1] == '2' && (raw[i+2] == 'f' || raw[i+2] == 'F') {
			return true
		}
	}
	return false
}
