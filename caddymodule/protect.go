package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/dpop"
	"github.com/oauthgate/oauthgate/gateway"
	"github.com/oauthgate/oauthgate/policies"
)

func init() {
	caddy.RegisterModule(Protect{})
}

// Protect guards the routes behind it: every request must carry a bearer
// access token issued by the oauthgate app, with the scopes its route
// requires, acting for a business the token may act for. Requests that pass
// continue to the next handler (typically reverse_proxy) with identity
// headers added and the Authorization header removed; the upstream never
// sees OAuth. Routes not in the map are denied.
//
// The verdict is gateway.Guard.Decide's; this handler applies it. Every
// rejection carries an RFC 6750 WWW-Authenticate challenge and, by default,
// a JSON body {"error", "error_description"}; with `rejections
// handle_errors` it is returned as a caddyhttp.Error instead, for the
// site's handle_errors routes.
//
// A route marked `creates` (create.go, docs/business-creation.md) creates
// a business: it needs no tenant header, and the upstream's 2xx answer is
// held until the business it names is linked to the calling client.
//
// Method-override headers (X-HTTP-Method-Override, X-Method-Override,
// X-HTTP-Method) are deleted before the request goes on, unless
// `method_override check` judges the overriding method too.
//
// Placeholders set for later handlers and logs:
//
//	{http.auth.user.id}   token subject (user id, or the client id for client credentials)
//	{oauth.client_id}     client the token was issued to
//	{oauth.scopes}        granted scopes, space-separated
//	{oauth.business_id}   business the request acts for
//	{oauth.grant_id}      grant the token belongs to
//	{oauth.error}         RFC 6750 error code of a rejection (in handle_errors)
type Protect struct {
	// Routes is the scope-to-route map. The most specific pattern among
	// the routes naming the request method governs it; no route, no entry.
	Routes []RouteConfig `json:"routes,omitempty"`

	// TenantHeader names the request header that carries the business id.
	// Default "x-business-id".
	TenantHeader string `json:"tenant_header,omitempty"`

	// Tenancy is "required" (default: the header must be present),
	// "inject" (when absent, act for the business the token is bound to and
	// set the header for the upstream; a client-credentials token, bound to
	// none, must still send it, even if its client owns exactly one) or
	// "off" (no tenancy check).
	Tenancy string `json:"tenancy,omitempty"`

	// IdentityHeaders maps identity fields to the request headers they are
	// sent upstream in. Fields: subject, client_id, scopes, business_id,
	// grant_id. Client-supplied copies of these headers are always deleted
	// first. Default: subject → X-Auth-Subject, client_id →
	// X-Auth-Client-Id, scopes → X-Auth-Scopes.
	IdentityHeaders map[string]string `json:"identity_headers,omitempty"`

	// NoIdentityHeaders sends no identity headers (client copies are still
	// deleted).
	NoIdentityHeaders bool `json:"no_identity_headers,omitempty"`

	// KeepAuthorization passes the Authorization header upstream. Default
	// false: it is removed, so upstreams never see bearer tokens.
	KeepAuthorization bool `json:"keep_authorization,omitempty"`

	// Realm is the realm of the WWW-Authenticate challenge. Default
	// "oauthgate".
	Realm string `json:"realm,omitempty"`

	// Rejections is "json" (default: oauthgate writes the rejection with
	// a JSON body) or "handle_errors" (the rejection is returned as a
	// caddyhttp.Error so the site's handle_errors routes write it; the
	// challenge header is set either way).
	Rejections string `json:"rejections,omitempty"`

	// MethodOverride is "delete" (default: X-HTTP-Method-Override,
	// X-Method-Override and X-HTTP-Method are removed before the request
	// goes on, so an upstream that honours them cannot turn a checked GET
	// into a write) or "check" (they are passed on, and the overriding
	// method must be allowed by the route map and the token's scopes as
	// well as the request's own method).
	MethodOverride string `json:"method_override,omitempty"`

	// Resource is the identifier of the protected resource this handler
	// guards (RFC 8707, RFC 9728): an absolute http(s) URI without query or
	// fragment, placeholders allowed. Tokens minted for other resources are
	// refused here; its metadata is published at the RFC 9728 well-known
	// URL, named in every challenge. Default: the issuer's origin followed
	// by the route map's prefix (see resource.go).
	Resource string `json:"resource,omitempty"`

	// ResourceName is the resource's human-readable name, published as
	// resource_name in its RFC 9728 metadata (RECOMMENDED there, for a
	// client to show its user). Blocks naming one resource must not give
	// it two names. Default: none (the member is omitted).
	ResourceName string `json:"resource_name,omitempty"`

	// DefaultAudience says whether a token requested without `resource`
	// (whose aud is the app's audience, default the issuer) is accepted
	// here: "accept" (default; every oauth_protect accepts it, as before
	// resource indicators) or "refuse" (only tokens whose aud names this
	// handler's resource pass; the rest get 401 invalid_token, as a token
	// for another resource does). The MCP authorization spec requires
	// refuse of an MCP server: it must accept only tokens issued for it.
	DefaultAudience string `json:"default_audience,omitempty"`

	app      *App
	resource *resource
	guard    *gateway.Guard
	// tenantKey is TenantHeader in canonical form, for direct map access.
	tenantKey string
	identity  []identityHeader
	// stripKeys are the canonical header names deleted from every request:
	// identity headers and, by default, method overrides.
	stripKeys    []string
	handleErrors bool
	// dpopAlgs is the algs parameter of DPoP challenges.
	dpopAlgs  string
	decisions decisionCounters
	creations *creations
	ctx       context.Context
	logger    *zap.Logger
}

// RouteConfig is one line of the route map.
type RouteConfig struct {
	// Methods are HTTP methods, upper-case; "*" is any. GET implies HEAD.
	Methods []string `json:"methods"`
	// Path is an exact path, a prefix ending in "*", or a pattern with "*"
	// standing for one whole segment.
	Path string `json:"path"`
	// Scopes are all required. Empty: any valid token.
	Scopes []string `json:"scopes,omitempty"`
	// Public routes need no token at all.
	Public bool `json:"public,omitempty"`
	// Creates marks a route whose requests create a business, linked to
	// the calling client once the upstream answers 2xx (see CreateConfig).
	Creates *CreateConfig `json:"creates,omitempty"`
}

type identityField int

const (
	fieldSubject identityField = iota
	fieldClientID
	fieldScopes
	fieldBusinessID
	fieldGrantID
)

var identityFields = map[string]identityField{
	"subject": fieldSubject, "client_id": fieldClientID, "scopes": fieldScopes,
	"business_id": fieldBusinessID, "grant_id": fieldGrantID,
}

var defaultIdentityHeaders = map[string]string{
	"subject":   "X-Auth-Subject",
	"client_id": "X-Auth-Client-Id",
	"scopes":    "X-Auth-Scopes",
}

type identityHeader struct {
	field identityField
	key   string // canonical header name
}

// CaddyModule returns the Caddy module information.
func (Protect) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth_protect",
		New: func() caddy.Module { return new(Protect) },
	}
}

// Provision compiles the route map and binds to the oauthgate app.
func (p *Protect) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	p.ctx = ctx
	appIface, err := ctx.App("oauthgate")
	if err != nil {
		return fmt.Errorf("loading oauthgate app: %w", err)
	}
	p.app = appIface.(*App)

	rules := make([]policies.Rule, len(p.Routes))
	for i, rc := range p.Routes {
		rules[i] = policies.Rule{Methods: rc.Methods, Path: rc.Path, Scopes: rc.Scopes, Public: rc.Public}
	}
	var cfg gateway.Config
	if cfg.Policy, err = policies.Compile(rules); err != nil {
		return fmt.Errorf("compiling route map: %w", err)
	}

	if p.TenantHeader == "" {
		p.TenantHeader = "x-business-id"
	}
	p.tenantKey = textproto.CanonicalMIMEHeaderKey(p.TenantHeader)
	cfg.Tenancy.Header = p.tenantKey
	switch p.Tenancy {
	case "", "required":
		cfg.Tenancy.Mode = policies.Required
	case "inject":
		cfg.Tenancy.Mode = policies.Inject
	case "off":
		cfg.Tenancy.Mode = policies.Off
	default:
		return fmt.Errorf("tenancy: %q is not one of required, inject, off", p.Tenancy)
	}
	switch p.MethodOverride {
	case "", "delete":
		p.stripKeys = append(p.stripKeys, gateway.OverrideHeaders...)
	case "check":
		cfg.CheckOverride = true
	default:
		return fmt.Errorf("method_override: %q is not one of delete, check", p.MethodOverride)
	}
	switch p.Rejections {
	case "", "json":
	case "handle_errors":
		p.handleErrors = true
	default:
		return fmt.Errorf("rejections: %q is not one of json, handle_errors", p.Rejections)
	}
	cfg.DPoP = p.app.dpop
	p.dpopAlgs = strings.Join(p.app.dpop.Algs(), " ")
	if err := p.provisionResource(); err != nil {
		return err
	}
	if cfg.Audiences, err = p.audiences(); err != nil {
		return err
	}
	if u, err := url.Parse(p.resource.id); err == nil {
		cfg.DPoPOrigin = u.Scheme + "://" + u.Host // proofs may name the resource's public origin
		// A resource the operator named is the origin clients call: only
		// it, not whatever Host a request brings (docs/dpop.md).
		cfg.DPoPOriginOnly = p.Resource != ""
	}
	cfg.ProofPath = requestedPath
	if err := p.provisionCreation(&cfg); err != nil {
		return err
	}
	p.guard = gateway.New(cfg)

	headers := p.IdentityHeaders
	if headers == nil {
		headers = defaultIdentityHeaders
	}
	seen := map[string]bool{p.tenantKey: true, "Authorization": true}
	for field, name := range headers {
		f, ok := identityFields[field]
		if !ok {
			return fmt.Errorf("identity header field %q: want one of subject, client_id, scopes, business_id, grant_id", field)
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		if name == "" || strings.ContainsAny(name, " :\t\r\n") {
			return fmt.Errorf("identity header %q for %s is not a valid header name", name, field)
		}
		if seen[key] {
			return fmt.Errorf("identity header %q is used twice or collides with the tenant or Authorization header", name)
		}
		seen[key] = true
		p.stripKeys = append(p.stripKeys, key)
		if !p.NoIdentityHeaders {
			p.identity = append(p.identity, identityHeader{field: f, key: key})
		}
	}
	if p.Realm == "" {
		p.Realm = "oauthgate"
	}
	if !bearer.ValidRealm(p.Realm) {
		return fmt.Errorf("realm %q must not contain quotes, backslashes or line breaks", p.Realm)
	}
	p.decisions = p.app.metrics.decisionsFor()
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (p *Protect) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The resource's own RFC 9728 metadata is public, and no route of the
	// map would allow it.
	if p.ownMetadata(r) {
		return serveResourceMetadata(w, r, p.resource)
	}
	// Client-supplied identity headers never reach the upstream, whatever
	// happens next.
	for _, k := range p.stripKeys {
		delete(r.Header, k)
	}
	// The app's running state is held for the decision only: the request
	// goes upstream without it.
	rt := p.app.acquire(r.Context())
	if rt == nil {
		return p.reject(w, r, gateway.Decision{Verdict: gateway.Refuse, Reason: gateway.Unavailable})
	}
	d := p.guard.Decide(r, rt.tokens)
	rt.release()
	switch d.Verdict {
	case gateway.Allow:
	case gateway.Public:
		if !p.KeepAuthorization {
			delete(r.Header, "Authorization")
			delete(r.Header, dpop.Header)
		}
		p.decisions.public.Inc()
		return next.ServeHTTP(w, r)
	default:
		return p.reject(w, r, d)
	}
	claims, business := d.Claims, d.Business
	if d.Nonce != "" {
		w.Header().Set(dpop.NonceHeader, d.Nonce)
	}
	if d.SetBusiness {
		r.Header[p.tenantKey] = []string{business}
	}
	if d.Creates {
		// The business does not exist yet: no header names it upstream.
		delete(r.Header, p.tenantKey)
	}
	// One backing array for every identity header value, rather than one
	// allocation per header. Each header gets a capacity-1 window of it,
	// so a later handler appending a value reallocates instead of
	// overwriting its neighbour.
	vals := make([]string, len(p.identity))
	for i, ih := range p.identity {
		var v string
		switch ih.field {
		case fieldSubject:
			v = claims.Subject
		case fieldClientID:
			v = claims.ClientID
		case fieldScopes:
			v = claims.Scope
		case fieldBusinessID:
			v = business
		case fieldGrantID:
			v = claims.GrantID
		}
		if v != "" {
			vals[i] = v
			r.Header[ih.key] = vals[i : i+1 : i+1]
		}
	}
	if !p.KeepAuthorization {
		// The proof goes with the token: the upstream never sees OAuth.
		delete(r.Header, "Authorization")
		delete(r.Header, dpop.Header)
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// Set, not a lazy Map provider: a provider saved no measurable CPU
		// (docs/benchmarks.md) and would let an earlier handler's values
		// win over ours.
		repl.Set("http.auth.user.id", claims.Subject)
		repl.Set("oauth.client_id", claims.ClientID)
		repl.Set("oauth.scopes", claims.Scope)
		repl.Set("oauth.business_id", business)
		repl.Set("oauth.grant_id", claims.GrantID)
	}
	p.decisions.allow.Inc()
	if d.Link {
		return p.create(w, r, next, d)
	}
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Protect)(nil)
	_ caddyhttp.MiddlewareHandler = (*Protect)(nil)
)
