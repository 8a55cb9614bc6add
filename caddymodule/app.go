// Package caddymodule wires oauthgate into Caddy: the oauthgate app (global
// option), the oauth_server and oauth_protect HTTP handlers, the admin API,
// the `caddy oauthgate` command and metrics registration. It decides nothing
// itself: authserver, tokens, tokenstore and policies do.
package caddymodule

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/authserver"
	"github.com/oauthgate/oauthgate/dpop"
	"github.com/oauthgate/oauthgate/throttle"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the oauthgate app: one authorization server (issuer, keys, store,
// clients) that the oauth_server and oauth_protect handlers of every site
// share. Configure it with the `oauthgate` global option.
type App struct {
	// Issuer is the issuer identifier, e.g. "https://api.example.com". It is
	// used verbatim in tokens and metadata. Required.
	Issuer string `json:"issuer,omitempty"`

	// Audience is the aud claim of access tokens and what oauth_protect
	// requires. Default: the issuer.
	Audience string `json:"audience,omitempty"`

	// BasePath prefixes every endpoint: the token endpoint is
	// BasePath + "/token". Default "/oauth". A trailing slash is ignored.
	BasePath string `json:"base_path,omitempty"`

	// Store selects the database. Default: SQLite at
	// <caddy data dir>/oauthgate/oauthgate.db.
	Store *StoreConfig `json:"store,omitempty"`

	// SigningAlg is the JWS algorithm of new keys: "ES256" (default),
	// "EdDSA" or "RS256".
	SigningAlg string `json:"signing_alg,omitempty"`

	// KeyRotation replaces the signing keys when they are older than this,
	// once per period for a whole cluster. Retired keys stay in the JWKS
	// until their tokens have expired. At least 1h and at least AccessTTL.
	// Default 0: rotate only on request (admin API or CLI).
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`

	// AccessTTL is the access-token lifetime. Default 1h.
	AccessTTL caddy.Duration `json:"access_ttl,omitempty"`
	// RefreshTTL is the refresh-token lifetime. Default 720h (30 days).
	RefreshTTL caddy.Duration `json:"refresh_ttl,omitempty"`
	// CodeTTL is the authorization-code lifetime. Default 10m.
	CodeTTL caddy.Duration `json:"code_ttl,omitempty"`
	// IDTokenTTL is the id_token lifetime. Default 1h.
	IDTokenTTL caddy.Duration `json:"id_token_ttl,omitempty"`

	// ClientIDPrefix is prepended to generated client ids (e.g. "yion_").
	ClientIDPrefix string `json:"client_id_prefix,omitempty"`
	// ClientSecretPrefix is prepended to generated secrets (e.g. "ysk_").
	ClientSecretPrefix string `json:"client_secret_prefix,omitempty"`
	// RefreshTokenPrefix starts every refresh token (e.g. "yapp_rt_"): at
	// most 32 letters, digits, '_' or '-'. Default: none.
	RefreshTokenPrefix string `json:"refresh_token_prefix,omitempty"`

	// AccessTokenFormat is "jwt" (default: RFC 9068 JWTs, checked by
	// signature) or "opaque": random references whose claims the store
	// keeps, for platforms that do not hand JWTs to third parties. Opaque
	// tokens are checked through the verified-token cache (the store is
	// read once per token and node, at most 4 reads in flight: a miss
	// beyond waits up to 1s, then is a 503), revoked, introspected and accepted
	// by /userinfo like JWTs. JWTs minted before a switch to opaque stay
	// valid; switching back to jwt refuses outstanding opaque tokens.
	AccessTokenFormat string `json:"access_token_format,omitempty"`
	// AccessTokenPrefix starts every opaque access token (e.g.
	// "yapp_at_"), as RefreshTokenPrefix; only with the opaque format.
	// Default: none.
	AccessTokenPrefix string `json:"access_token_prefix,omitempty"`

	// Scopes is the scope catalogue: what clients may be registered for,
	// with the description the consent screen shows. Empty: any scope.
	Scopes []ScopeConfig `json:"scopes,omitempty"`

	// ThirdPartyScopes are the scopes an app registered by a third party
	// (the developer portal, dynamic registration) may ask for: entries of
	// the catalogue, openid or offline_access. Default: the whole catalogue
	// with openid and offline_access. Operators' clients are not limited.
	ThirdPartyScopes []string `json:"third_party_scopes,omitempty"`

	// AllowHTTPRedirect names hosts, besides loopback (127.0.0.1, [::1],
	// localhost), whose redirect URIs may use plain http, e.g. an internal
	// staging host. Default: none, https only (RFC 9700 §2.1).
	AllowHTTPRedirect []string `json:"allow_http_redirect,omitempty"`

	// DeveloperPortal serves the developer portal at <base_path>/developer,
	// where signed-in users register and manage their own apps. Default:
	// off.
	DeveloperPortal *DeveloperPortalConfig `json:"developer_portal,omitempty"`

	// Clients are declared in the configuration rather than registered
	// through the admin API. They take precedence over stored clients with
	// the same id and cannot be edited through the API.
	Clients []StaticClient `json:"clients,omitempty"`

	// RefreshTokens is "always" (default): every authorization-code grant
	// of a client allowed the refresh_token grant gets one; or
	// "offline_access": only when that scope was granted.
	RefreshTokens string `json:"refresh_tokens,omitempty"`

	// PublicRevocation lets a token holder revoke it without client
	// authentication, as the YionStack guide's revoke call does. Default
	// false: the revocation endpoint requires client authentication.
	PublicRevocation bool `json:"public_revocation,omitempty"`

	// CacheSize bounds the verified-token cache, in bytes. Default 64 MiB
	// (about 53,000 client-credentials tokens, as measured in docs/benchmarks.md).
	CacheSize int64 `json:"cache_size,omitempty"`

	// MaxStaleness is how long the gateway keeps accepting cached, unrevoked
	// tokens while the store cannot be read (for instance PostgreSQL is
	// down). Past it, protected routes fail closed with 503. Default 5m;
	// a negative value never fails closed.
	MaxStaleness caddy.Duration `json:"max_staleness,omitempty"`

	// Brand names the platform on the sign-in and consent pages. Default
	// "oauthgate".
	Brand string `json:"brand,omitempty"`

	// BrandLogo is the platform's logo on those pages: an https URL or an
	// absolute path on the site. Default: none (BrandMark is drawn).
	BrandLogo string `json:"brand_logo,omitempty"`

	// BrandMark is the inline mark drawn when there is no logo: one to
	// three letters or digits. Default: the brand's initials, or
	// oauthgate's shield when Brand is unset.
	BrandMark string `json:"brand_mark,omitempty"`

	// BrandAccent is the accent colour of the pages' buttons, links and
	// mark, as a CSS hex colour (#rgb or #rrggbb); text on it is black or
	// white, whichever contrasts more. Default #4338ca.
	BrandAccent string `json:"brand_accent,omitempty"`

	// Identity selects who signs users in for the authorization-code flow.
	// Default: the built-in directory.
	Identity *IdentityConfig `json:"identity,omitempty"`

	// SessionTTL is how long a sign-in on oauthgate's sign-in page lasts.
	// Default 12h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// Users of the built-in directory declared in the configuration; they
	// are created or updated when it loads. More can be added through the
	// admin API.
	Users []StaticUser `json:"users,omitempty"`

	// Throttle tunes the throttling of failed sign-ins and client
	// authentications. Default: on, with ThrottleConfig's defaults.
	Throttle *ThrottleConfig `json:"throttle,omitempty"`

	// Registration turns on dynamic client registration (RFC 7591, RFC
	// 7592) and bounds what a self-registered app may get. Default off.
	Registration *RegistrationConfig `json:"registration,omitempty"`

	// DPoP tunes DPoP (RFC 9449) proofs at the token endpoint and in
	// oauth_protect (see dpop.go). Default: on, with DPoPConfig's defaults.
	DPoP *DPoPConfig `json:"dpop,omitempty"`

	// Set by Provision: the checked configuration Start runs.
	ctx         caddy.Context
	storeCfg    tokenstore.Config
	tokensCfg   tokens.Config
	serverCfg   authserver.Config
	throttleCfg *throttle.Config // nil: throttling off
	users       []authserver.UserSpec
	handles     func(path string) bool
	metrics     *gatewayMetrics
	logger      *zap.Logger
	// dpop checks every DPoP proof of this configuration (one replay cache
	// for the token endpoint and each oauth_protect).
	dpop *dpop.Checker

	// resources are the protected resources oauth_protect handlers
	// registered at their Provision (resource.go).
	resources resources

	// rt is what Start built, published when it is ready; ready is closed
	// when Start returns (see lifecycle.go). A pointer, so that App stays
	// copyable for CaddyModule.
	rt    *atomic.Pointer[running]
	ready chan struct{}
}

// StoreConfig selects and tunes the database.
type StoreConfig struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `json:"driver,omitempty"`
	// DSN is the SQLite file path, or the PostgreSQL connection string.
	// Placeholders such as {env.OAUTHGATE_DSN} are replaced.
	DSN string `json:"dsn,omitempty"`
	// MaxConns is the connection pool size. Default 10.
	MaxConns int `json:"max_conns,omitempty"`
	// ConnectTimeout bounds each connection attempt. Default 5s.
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`
	// StatementTimeout bounds each query. Default 5s.
	StatementTimeout caddy.Duration `json:"statement_timeout,omitempty"`
}

// DeveloperPortalConfig configures the developer portal.
type DeveloperPortalConfig struct {
	// Register says who may register apps: "anyone" signed in (default) or
	// "business_admins", users who administer at least one business.
	Register string `json:"register,omitempty"`
	// PlatformAdmins are users, by id or e-mail address, who see every app
	// in the portal and may mark one first-party. Default: none.
	PlatformAdmins []string `json:"platform_admins,omitempty"`
}

// ScopeConfig is one entry of the scope catalogue.
type ScopeConfig struct {
	// Name is the scope token, e.g. "read:invoices".
	Name string `json:"name"`
	// Description is shown to users on the consent screen.
	Description string `json:"description,omitempty"`
}

// StaticClient is a client declared in the configuration.
type StaticClient struct {
	// ID is the client_id.
	ID string `json:"id"`
	// Secret is the client secret in clear text. It is hashed when the
	// configuration loads, but the text itself stays in the JSON config,
	// which `GET /config/` and Caddy's autosave show: use a placeholder
	// read at load time, such as {env.CLIENT_SECRET} or
	// {file./run/secrets/client}, or SecretHash instead.
	Secret string `json:"secret,omitempty"`
	// SecretHash is the SHA-256 of the secret, as `caddy oauthgate
	// hash-secret` prints it: "sha256:" and 64 hex digits. It is what the
	// store keeps, so the secret itself appears nowhere. A confidential
	// client has Secret or SecretHash, not both; a public one neither.
	SecretHash string `json:"secret_hash,omitempty"`
	// The client itself, as the admin API and the CLI specify one too:
	// name (default: the id), grant_types (default
	// ["client_credentials"]), scopes, businesses, redirect_uris,
	// post_logout_redirect_uris, first_party, public. Provision checks it
	// under the admin API's registration rules.
	authserver.ClientSpec
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauthgate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision checks the configuration and registers the metrics. It opens
// nothing: Caddy provisions apps to validate a configuration too (`caddy
// validate`, `caddy adapt --validate`), so the store, the key set, the
// directory and the change feed start in Start (lifecycle.go).
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	a.rt = new(atomic.Pointer[running])
	a.ready = make(chan struct{})
	repl := caddy.NewReplacer()
	a.Issuer = repl.ReplaceKnown(a.Issuer, "")
	if a.Issuer == "" {
		return errors.New("issuer is required: set it in the global option `oauthgate { issuer https://… }`")
	}
	var err error
	if a.storeCfg, err = a.storeConfig(repl); err != nil {
		return err
	}
	if err := authserver.ValidateBrand(a.Brand, a.branding()); err != nil {
		return err
	}
	if err := tokens.CheckRotationPeriod(time.Duration(a.KeyRotation), time.Duration(a.AccessTTL)); err != nil {
		return fmt.Errorf("key_rotation: %w", err)
	}
	reg := ctx.GetMetricsRegistry()
	tm, err := newTokenMetrics(reg)
	if err != nil {
		return fmt.Errorf("registering token metrics: %w", err)
	}
	if a.metrics, err = newGatewayMetrics(reg); err != nil {
		return fmt.Errorf("registering gateway metrics: %w", err)
	}
	am, err := authserver.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("registering authserver metrics: %w", err)
	}
	bm, err := authserver.NewBrowserMetrics(reg)
	if err != nil {
		return fmt.Errorf("registering browser-flow metrics: %w", err)
	}
	if err := registerStoreMetrics(reg, a.storeStats); err != nil {
		return fmt.Errorf("registering store metrics: %w", err)
	}
	delegated, err := a.delegatedIdentity(repl)
	if err != nil {
		return err
	}
	statics, err := a.staticClients(repl)
	if err != nil {
		return err
	}
	thm, err := throttle.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("registering throttle metrics: %w", err)
	}
	if a.throttleCfg, err = a.throttleConfig(thm); err != nil {
		return err
	}
	a.tokensCfg = tokens.Config{
		Issuer:         a.Issuer,
		Audience:       repl.ReplaceKnown(a.Audience, ""),
		Alg:            a.SigningAlg,
		AccessTTL:      time.Duration(a.AccessTTL),
		AccessFormat:   a.AccessTokenFormat,
		AccessPrefix:   a.AccessTokenPrefix,
		IDTokenTTL:     time.Duration(a.IDTokenTTL),
		RotationPeriod: time.Duration(a.KeyRotation),
		CacheMaxBytes:  a.CacheSize,
		MaxStaleness:   time.Duration(a.MaxStaleness),
		StaticClients:  statics,
		Logger:         a.logger.Named("tokens"),
		Metrics:        tm,
	}
	if err := tokens.CheckConfig(a.tokensCfg); err != nil {
		return err
	}
	scopes := make([]authserver.Scope, len(a.Scopes))
	for i, s := range a.Scopes {
		scopes[i] = authserver.Scope{Name: s.Name, Description: s.Description}
	}
	switch a.RefreshTokens {
	case "", "always", "offline_access":
	default:
		return fmt.Errorf("refresh_tokens: %q is not one of always, offline_access", a.RefreshTokens)
	}
	if a.dpop, err = a.dpopChecker(repl); err != nil {
		return err
	}
	registration, err := a.registrationPolicy(repl)
	if err != nil {
		return err
	}
	a.serverCfg = authserver.Config{
		DPoP:                         a.dpop,
		Registration:                 registration,
		Issuer:                       a.Issuer,
		IDTokenAlgs:                  tokens.IDTokenAlgsFor(a.SigningAlg),
		BasePath:                     a.BasePath,
		Scopes:                       scopes,
		ThirdPartyScopes:             a.ThirdPartyScopes,
		AllowHTTPRedirectHosts:       a.AllowHTTPRedirect,
		ClientIDPrefix:               a.ClientIDPrefix,
		SecretPrefix:                 a.ClientSecretPrefix,
		RefreshPrefix:                a.RefreshTokenPrefix,
		CodeTTL:                      time.Duration(a.CodeTTL),
		RefreshTTL:                   time.Duration(a.RefreshTTL),
		RefreshRequiresOfflineAccess: a.RefreshTokens == "offline_access",
		PublicRevocation:             a.PublicRevocation,
		Brand:                        a.Brand,
		Branding:                     a.branding(),
		SessionTTL:                   time.Duration(a.SessionTTL),
		Delegated:                    delegated,
		DeveloperPortal:              a.developerPortal(),
		BrowserMetrics:               bm,
		ClientAddress:                clientIP,
		Logger:                       a.logger.Named("authserver"),
		Metrics:                      am,
	}
	// Built without a store or token service, the server checks its
	// configuration and the static clients against it; Start builds the
	// one that serves. It also answers which paths are its own, which
	// oauth_server asks before it needs the running state.
	check, err := authserver.New(a.serverCfg, nil, nil)
	if err != nil {
		return err
	}
	for _, c := range statics {
		if err := check.CheckClient(c); err != nil {
			return err
		}
	}
	a.handles = check.Handles
	a.users, err = a.userSpecs(repl)
	return err
}

// developerPortal is the portal's configuration, nil when it is off.
func (a *App) developerPortal() *authserver.DeveloperPortal {
	if a.DeveloperPortal == nil {
		return nil
	}
	return &authserver.DeveloperPortal{Register: a.DeveloperPortal.Register, PlatformAdmins: a.DeveloperPortal.PlatformAdmins}
}

// branding is the pages' look beyond the brand name.
func (a *App) branding() authserver.Branding {
	return authserver.Branding{Logo: a.BrandLogo, Mark: a.BrandMark, Accent: a.BrandAccent}
}

// storeConfig resolves the store settings and their defaults.
func (a *App) storeConfig(repl *caddy.Replacer) (tokenstore.Config, error) {
	sc := tokenstore.Config{Driver: "sqlite"}
	if a.Store != nil {
		if a.Store.Driver != "" {
			sc.Driver = a.Store.Driver
		}
		sc.DSN = repl.ReplaceKnown(a.Store.DSN, "")
		sc.MaxOpenConns = a.Store.MaxConns
		sc.ConnectTimeout = time.Duration(a.Store.ConnectTimeout)
		sc.StatementTimeout = time.Duration(a.Store.StatementTimeout)
	}
	switch sc.Driver {
	case "sqlite":
		if sc.DSN == "" {
			sc.DSN = filepath.Join(caddy.AppDataDir(), "oauthgate", "oauthgate.db")
		}
	case "postgres":
		if sc.DSN == "" {
			return sc, errors.New("store postgres: a connection string is required")
		}
	default:
		return sc, fmt.Errorf("store: unknown driver %q (want sqlite or postgres)", sc.Driver)
	}
	return sc, nil
}

// staticClients turns the configured clients into store records, hashing
// their secrets at once so the clear text is not kept.
func (a *App) staticClients(repl *caddy.Replacer) ([]*tokenstore.Client, error) {
	out := make([]*tokenstore.Client, 0, len(a.Clients))
	seen := make(map[string]bool)
	now := time.Now()
	for i, sc := range a.Clients {
		if sc.ID == "" {
			return nil, fmt.Errorf("clients[%d]: id is required", i)
		}
		if seen[sc.ID] {
			return nil, fmt.Errorf("client %q is declared twice", sc.ID)
		}
		seen[sc.ID] = true
		secret := repl.ReplaceKnown(sc.Secret, "")
		hashText := repl.ReplaceKnown(sc.SecretHash, "")
		switch {
		case secret != "" && hashText != "":
			return nil, fmt.Errorf("client %q: give a secret or a secret_hash, not both", sc.ID)
		case sc.Public != (secret == "" && hashText == ""):
			return nil, fmt.Errorf("client %q: a confidential client needs a secret or secret_hash, a public one must not have one", sc.ID)
		}
		var hash []byte
		switch {
		case hashText != "":
			var err error
			if hash, err = tokens.ParseSecretHash(hashText); err != nil {
				// The message never repeats the value: it may be a secret
				// given in the wrong place.
				return nil, fmt.Errorf("client %q: secret_hash: %w", sc.ID, err)
			}
		case secret != "":
			hash = tokens.HashSecret(secret)
		}
		spec := sc.ClientSpec
		if len(spec.GrantTypes) == 0 {
			spec.GrantTypes = []string{"client_credentials"}
		}
		if spec.Name == "" {
			spec.Name = sc.ID
		}
		c := spec.Client(sc.ID)
		c.SecretHash, c.CreatedAt, c.UpdatedAt = hash, now, now
		out = append(out, c)
	}
	return out, nil
}
