// Package authserver is the OAuth 2.0 / OpenID Connect protocol engine on
// plain net/http: the authorization endpoint with its sign-in and consent
// pages, the token endpoint and its grants, userinfo, revocation (RFC 7009),
// introspection (RFC 7662), metadata (RFC 8414, OIDC Discovery), JWKS, and
// the operator's admin API (clients, the user directory, grants, keys). It
// knows nothing of Caddy; caddymodule mounts its handlers.
package authserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/dpop"
	"github.com/oauthgate/oauthgate/throttle"
	"github.com/oauthgate/oauthgate/tokens"
)

// Scope is an entry of the scope catalogue.
type Scope struct {
	Name        string
	Description string
}

// Config configures a Server. Zero values are the documented defaults.
type Config struct {
	// Issuer is the issuer identifier, used verbatim in metadata and tokens.
	Issuer string
	// IDTokenAlgs are the algorithms a client may ask its id_tokens to be
	// signed with, as tokens.IDTokenAlgsFor(signing alg) gives them.
	// Default: those of the default signing algorithm.
	IDTokenAlgs []string
	// BasePath prefixes every endpoint: "/oauth" (default) serves
	// /oauth/token, /oauth/authorize …
	BasePath string
	// Scopes is the catalogue clients may be registered for. Empty means
	// any syntactically valid scope is accepted.
	Scopes []Scope
	// Resources are the RFC 8707 resource identifiers (canonical, see
	// CanonicalResource) the configuration's oauth_protect handlers guard:
	// what a resource parameter may name (resource.go).
	Resources []string
	// ThirdPartyScopes are the scopes a client registered by a third party
	// (developer portal, dynamic registration) may ask for: catalogue
	// entries, openid or offline_access. Nil: the whole catalogue with
	// openid and offline_access.
	ThirdPartyScopes []string
	// AllowHTTPRedirectHosts are hosts, besides loopback, whose redirect
	// URIs may use plain http. Default none.
	AllowHTTPRedirectHosts []string
	// ClientIDPrefix and SecretPrefix are prepended to generated client ids
	// and secrets (e.g. "yion_" and "ysk_").
	ClientIDPrefix string
	SecretPrefix   string
	// RefreshPrefix starts every refresh token (e.g. "yapp_rt_"), as
	// tokens.CheckPrefix allows. Default: none.
	RefreshPrefix string
	// CodeTTL defaults to 10 minutes; RefreshTTL to 30 days.
	CodeTTL    time.Duration
	RefreshTTL time.Duration
	// RefreshRequiresOfflineAccess issues refresh tokens only when the
	// offline_access scope was granted (as at Yoco); otherwise every
	// authorization-code grant gets one.
	RefreshRequiresOfflineAccess bool
	// PublicRevocation lets a holder revoke a token without client
	// authentication (the YionStack guide's revoke call sends only the
	// token). Credentials that are sent are still checked.
	PublicRevocation bool
	// Brand names the platform on the sign-in and consent pages. Default
	// "oauthgate".
	Brand string
	// Branding is the platform's logo or mark and accent colour on those
	// pages.
	Branding Branding
	// SessionTTL is how long a sign-in to the built-in directory lasts.
	// Default 12 hours.
	SessionTTL time.Duration
	// DeveloperPortal, when set, serves the developer portal at
	// <base>/developer (developer.go). Nil: no portal.
	DeveloperPortal *DeveloperPortal
	// Delegated, when set, asks the platform who is signed in instead of
	// signing users in against the built-in directory.
	Delegated *DelegatedIdentity
	// Throttle counts failed sign-ins and client authentications and
	// refuses locked accounts, clients and addresses. Nil: no throttling.
	Throttle *throttle.Throttle
	// DPoP checks DPoP proofs (RFC 9449) at the token endpoint; share it
	// with the gateway so one replay cache sees every proof of the node.
	// Default: a checker with dpop's defaults.
	DPoP *dpop.Checker
	// ClientAddress returns the client's IP address as the HTTP server
	// knows it (behind trusted proxies, the forwarded one). Default, or
	// when it returns "": the host of r.RemoteAddr.
	ClientAddress func(r *http.Request) string
	Logger        *zap.Logger
	Metrics       *Metrics
	// BrowserMetrics counts sign-ins and authorization outcomes.
	BrowserMetrics *BrowserMetrics
	// Registration turns on dynamic client registration (RFC 7591, RFC
	// 7592) under this policy. Nil: off.
	Registration *RegistrationPolicy
	// Clock tells the time. Default: time.Now (tests inject a fake one,
	// the same as the token service's).
	Clock func() time.Time
}

// Server serves the authorization-server endpoints.
type Server struct {
	cfg    Config
	store  Store
	tokens *tokens.Service
	log    *zap.Logger
	now    func() time.Time
	m      *Metrics
	grants []grantHandler
	scopes map[string]string
	// thirdParty is what third parties may register (ThirdPartyScopes);
	// httpHosts the normalised AllowHTTPRedirectHosts.
	thirdParty []string
	httpHosts  []string
	paths      endpointPaths
	// issuerPath is the issuer URL's path without a trailing slash.
	issuerPath string
	admin      http.Handler
	// identity says who is signed in on a browser.
	identity identitySource
	pages    *pages
	throttle *throttle.Throttle
	// proofs checks DPoP proofs at the token endpoint (dpop.go).
	proofs *tokenProofs
	// registration is the checked Config.Registration; nil when off.
	registration *registrar
}

type endpointPaths struct {
	authorize, token, revoke, introspect, userinfo, jwks string
	signIn, consent, signOut, assets                     string
	// account is the connected-apps page.
	account string
	// developer is the developer portal.
	developer string
}

// New validates cfg and builds a Server.
func New(cfg Config, store Store, ts *tokens.Service) (*Server, error) {
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("issuer is required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("issuer %q must be an http(s) URL without query or fragment", cfg.Issuer)
	}
	base, err := normalizeBasePath(cfg.BasePath)
	if err != nil {
		return nil, err
	}
	cfg.BasePath = base
	if err := tokens.CheckPrefix(cfg.RefreshPrefix); err != nil {
		return nil, fmt.Errorf("refresh_token_prefix: %w", err)
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = 10 * time.Minute
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Server{
		cfg:        cfg,
		issuerPath: issuerPathOf(cfg.Issuer),
		store:      store,
		tokens:     ts,
		log:        cfg.Logger,
		now:        cfg.Clock,
		m:          cfg.Metrics,
		throttle:   cfg.Throttle,
		scopes:     make(map[string]string, len(cfg.Scopes)),
		paths: endpointPaths{
			authorize:  base + "/authorize",
			token:      base + "/token",
			revoke:     base + "/revoke",
			introspect: base + "/introspect",
			userinfo:   base + "/userinfo",
			jwks:       base + "/jwks",
			signIn:     base + "/sign-in",
			consent:    base + "/consent",
			signOut:    base + "/sign-out",
			account:    base + "/account",
			assets:     base + "/assets/",
			developer:  base + "/developer",
		},
	}
	if err := s.initBrowser(); err != nil {
		return nil, err
	}
	for _, sc := range cfg.Scopes {
		if !validScopeToken(sc.Name) {
			return nil, fmt.Errorf("scope %q: not a valid scope token (RFC 6749 §3.3)", sc.Name)
		}
		s.scopes[sc.Name] = sc.Description
	}
	if err := s.initThirdPartyScopes(); err != nil {
		return nil, err
	}
	if err := s.initRegistration(); err != nil {
		return nil, err
	}
	if err := s.initDPoP(); err != nil {
		return nil, err
	}
	if cfg.DeveloperPortal != nil {
		if err := checkDeveloperPortal(cfg.DeveloperPortal); err != nil {
			return nil, err
		}
	}
	s.grants = []grantHandler{
		clientCredentialsGrant{s},
		authorizationCodeGrant{s},
		refreshTokenGrant{s},
	}
	s.admin = s.adminMux()
	return s, nil
}

// normalizeBasePath turns "", "/", "api/v1/oauth/" and the like into a
// clean "/api/v1/oauth" (or "/oauth" when empty).
func normalizeBasePath(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return "/oauth", nil
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	p = strings.TrimRight(p, "/")
	if strings.ContainsAny(p, "?#*{} ") || strings.Contains(p, "//") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return "", fmt.Errorf("base path %q: must be a plain URL path", p)
	}
	return p, nil
}

// BasePath is the normalised endpoint prefix.
func (s *Server) BasePath() string { return s.cfg.BasePath }

// ServeHTTP serves the endpoint named by the request path and reports
// whether it recognised one. A trailing slash is tolerated (the Yuvo guide
// calls /oauth/token/).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if !s.Handles(p) {
		return false
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	switch p {
	case s.paths.token:
		s.serveToken(w, r)
	case s.paths.revoke:
		s.serveRevoke(w, r)
	case s.paths.introspect:
		s.serveIntrospect(w, r)
	case s.paths.jwks, "/.well-known/jwks.json":
		s.serveJWKS(w, r)
	case "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server":
		s.serveMetadata(w, r)
	default:
		// An issuer with a path: RFC 8414 §3.1 inserts the well-known
		// path before it, OIDC Discovery appends it; the MCP authorization
		// spec has clients try both, and the inserted OIDC form too.
		if s.issuerPath != "" && (p == s.issuerPath+"/.well-known/openid-configuration" ||
			p == "/.well-known/oauth-authorization-server"+s.issuerPath || p == "/.well-known/openid-configuration"+s.issuerPath) {
			s.serveMetadata(w, r)
			return true
		}
		if s.serveRegistration(w, r, p) {
			return true
		}
		return s.serveBrowser(w, r, p)
	}
	return true
}

// Handles reports whether path may name one of the server's endpoints.
// Most requests a site sees are for the API behind it: every endpoint is
// under the base path, /.well-known/ or the issuer's path, so one prefix
// test sends everything else straight on. It depends on the configuration
// only.
func (s *Server) Handles(path string) bool {
	return strings.HasPrefix(path, s.cfg.BasePath) || strings.HasPrefix(path, "/.well-known/") ||
		(s.issuerPath != "" && strings.HasPrefix(path, s.issuerPath))
}

// issuerPathOf is the issuer URL's path, where OIDC Discovery also looks.
func issuerPathOf(issuer string) string {
	u, _ := url.Parse(issuer)
	return strings.TrimSuffix(u.Path, "/")
}

// endpointURL makes an absolute endpoint URL from the issuer's origin.
func (s *Server) endpointURL(path string) string {
	u, _ := url.Parse(s.cfg.Issuer)
	return u.Scheme + "://" + u.Host + path
}

func (s *Server) logError(msg string, err error) {
	s.log.Error(msg, zap.Error(err))
}

// validScopeToken implements RFC 6749 §3.3's scope-token grammar.
func validScopeToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}
