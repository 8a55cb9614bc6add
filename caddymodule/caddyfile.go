package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("oauthgate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("oauth_server", parseServer)
	httpcaddyfile.RegisterHandlerDirective("oauth_protect", parseProtect)
	// The authorization server answers before anything else could; the
	// guard runs before any handler that would serve or proxy content.
	httpcaddyfile.RegisterDirectiveOrder("oauth_server", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("oauth_protect", httpcaddyfile.After, "basic_auth")
}

// parseBrand reads `brand <name> [{ logo …; mark …; accent … }]`. The
// values are checked when the app provisions.
func parseBrand(d *caddyfile.Dispenser, app *App) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	app.Brand = d.Val()
	if d.NextArg() {
		return d.Errf("brand %s: too many arguments; quote the name", app.Brand)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if opt == "accent" && d.CountRemainingArgs() == 0 {
			// The usual mistake: an unquoted # starts a comment.
			return d.Err(`brand accent needs a colour; quote it, as in accent "#0a7cff" (an unquoted # starts a comment)`)
		}
		v, err := oneArg(d)
		if err != nil {
			return err
		}
		switch opt {
		case "logo":
			app.BrandLogo = v
		case "mark":
			app.BrandMark = v
		case "accent":
			app.BrandAccent = v
		default:
			return d.Errf("unrecognized brand option %q", opt)
		}
	}
	return nil
}

// parseGlobalOption sets up the oauthgate app from the global option:
//
//	oauthgate {
//		issuer <url>
//		audience <aud>
//		base_path <path>
//		store sqlite [<path>]
//		store postgres <dsn> {
//			max_conns <n>
//			connect_timeout <duration>
//			statement_timeout <duration>
//		}
//		signing_alg ES256|EdDSA|RS256
//		key_rotation <duration>
//		access_ttl <duration>
//		refresh_ttl <duration>
//		code_ttl <duration>
//		id_token_ttl <duration>
//		client_id_prefix <prefix>
//		client_secret_prefix <prefix>
//		refresh_token_prefix <prefix>
//		access_token_format jwt|opaque
//		access_token_prefix <prefix>
//		scope <name> [<description>]
//		third_party_scopes <scope...>
//		allow_http_redirect <host...>
//		developer_portal off
//		developer_portal {
//			register anyone|business_admins
//			platform_admins <user id or e-mail...>
//		}
//		client <id> {
//			secret <secret>
//			secret_hash <sha256:hex>
//			name <name>
//			grant_types <type...>
//			scopes <scope...>
//			businesses <id...>
//			redirect_uris <uri...>
//			post_logout_redirect_uris <uri...>
//			id_token_signed_response_alg RS256|<signing_alg>
//			first_party
//			public
//			dpop_bound_access_tokens
//		}
//		refresh_tokens always|offline_access
//		public_revocation
//		cache_size <bytes, e.g. 64MiB>
//		max_staleness <duration>
//		brand <name> {
//			logo <https URL or /path>
//			mark <1-3 letters>
//			accent "<#rgb or #rrggbb>"
//		}
//		session_ttl <duration>
//		identity builtin
//		identity delegated {
//			session_url <url>
//			sign_in_url <url>
//			return_param <name>
//			timeout <duration>
//		}
//		dpop {
//			algs <alg...>
//			max_age <duration>
//			leeway <duration>
//			replay_entries <n>
//			nonce [<secret>]
//			nonce_lifetime <duration>
//		}
//		registration off|open
//		registration open|token {
//			initial_access_token <token>
//			initial_access_token_hash <sha256:hex>
//			client_types public|confidential...
//			grant_types <type...>
//			scopes <scope...>
//			rate_limit <n>|off [<window>]
//		}
//		throttle off
//		throttle {
//			accounts <failures>|off
//			clients <failures>|off
//			addresses <failures>|off
//			lock <first> [<longest>]
//			forget <duration>
//		}
//		user <email> {
//			id <id>
//			name <name>
//			password <password>
//			password_hash <bcrypt hash>
//			business <id> [<name>]
//			current_business <id>
//		}
//	}
//
// Durations accept Caddy's units, including d for days (e.g. 30d).
// refresh_token_prefix starts every refresh token (yAppointment: yapp_rt_).
// access_token_format opaque hands out random references instead of JWTs
// (default jwt), checked through the store once per token and node, then
// from the verified-token cache; access_token_prefix (opaque only) starts
// them (yapp_at_). Prefixes are at most 32 letters, digits, '_' or '-'.
// third_party_scopes limits what apps registered by third parties (the
// developer portal, dynamic registration) may ask for: catalogue scopes,
// openid, offline_access (default: all of them). allow_http_redirect names
// hosts besides loopback whose redirect URIs may use plain http.
// registration turns on RFC 7591 dynamic client registration at
// <base>/register (default off): open to anyone, or token for holders of
// an initial access token; its block bounds what a self-registered app may
// get (client types, grant types, scopes within third_party_scopes) and how
// often one address may register (rate_limit, default 10 per 1h).
// developer_portal (off by default; the word alone turns it on) serves
// <base_path>/developer, where signed-in users register their own apps:
// register says who may (default anyone signed in; business_admins: users
// who administer a business), platform_admins who sees every app and may
// mark one first-party.
// brand names the platform on the sign-in, consent and error pages; its
// block (optional) gives a logo or an inline mark and an accent colour.
// identity
// builtin (the default) signs users of oauthgate's directory in on its own
// page; identity delegated asks the platform's session_url who is signed in
// (forwarding the browser's cookies) and sends signed-out browsers to
// sign_in_url with the full OAuth URL in return_param (default return_to).
// Each user is created or updated in the directory when the configuration
// loads; its password is hashed with bcrypt then. A client's secret and a
// user's password given in clear text stay in the JSON config (GET /config/,
// Caddy's autosave): give a runtime placeholder such as {env.DEMO_PASSWORD},
// or the hash `caddy oauthgate hash-secret` prints (secret_hash, and
// password_hash with --user).
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		if prev, ok := existing.(httpcaddyfile.App); ok {
			_ = prev
			return nil, d.Err("the oauthgate global option may appear only once")
		}
	}
	d.Next() // option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "brand":
			if err := parseBrand(d, app); err != nil {
				return nil, err
			}
		case "issuer", "audience", "base_path", "signing_alg", "client_id_prefix", "client_secret_prefix", "refresh_tokens",
			"refresh_token_prefix", "access_token_format", "access_token_prefix":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			switch opt {
			case "issuer":
				app.Issuer = v
			case "audience":
				app.Audience = v
			case "base_path":
				app.BasePath = v
			case "signing_alg":
				app.SigningAlg = v
			case "client_id_prefix":
				app.ClientIDPrefix = v
			case "client_secret_prefix":
				app.ClientSecretPrefix = v
			case "refresh_tokens":
				app.RefreshTokens = v
			case "refresh_token_prefix":
				app.RefreshTokenPrefix = v
			case "access_token_format":
				app.AccessTokenFormat = v
			case "access_token_prefix":
				app.AccessTokenPrefix = v
			}
		case "key_rotation", "access_ttl", "refresh_ttl", "code_ttl", "id_token_ttl", "max_staleness", "session_ttl":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return nil, d.Errf("%s: %v", opt, err)
			}
			if dur <= 0 && opt != "max_staleness" && opt != "key_rotation" {
				return nil, d.Errf("%s must be positive", opt)
			}
			target := map[string]*caddy.Duration{
				"key_rotation": &app.KeyRotation, "access_ttl": &app.AccessTTL, "refresh_ttl": &app.RefreshTTL,
				"code_ttl": &app.CodeTTL, "id_token_ttl": &app.IDTokenTTL, "max_staleness": &app.MaxStaleness,
				"session_ttl": &app.SessionTTL,
			}[opt]
			*target = caddy.Duration(dur)
		case "cache_size":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 || n > 1<<40 {
				return nil, d.Errf("cache_size %q: want a size such as 64MiB", v)
			}
			app.CacheSize = int64(n)
		case "public_revocation":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			app.PublicRevocation = true
		case "store":
			sc, err := parseStore(d)
			if err != nil {
				return nil, err
			}
			app.Store = sc
		case "scope":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			s := ScopeConfig{Name: d.Val()}
			if d.NextArg() {
				s.Description = d.Val()
			}
			if d.NextArg() {
				return nil, d.Errf("scope %s: too many arguments; quote the description", s.Name)
			}
			app.Scopes = append(app.Scopes, s)
		case "third_party_scopes", "allow_http_redirect":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return nil, d.ArgErr()
			}
			if opt == "third_party_scopes" {
				app.ThirdPartyScopes = append(app.ThirdPartyScopes, vals...)
			} else {
				app.AllowHTTPRedirect = append(app.AllowHTTPRedirect, vals...)
			}
		case "developer_portal":
			dp, err := parseDeveloperPortal(d)
			if err != nil {
				return nil, err
			}
			app.DeveloperPortal = dp
		case "client":
			c, err := parseStaticClient(d)
			if err != nil {
				return nil, err
			}
			app.Clients = append(app.Clients, c)
		case "identity":
			ic, err := parseIdentity(d)
			if err != nil {
				return nil, err
			}
			app.Identity = ic
		case "dpop":
			dc, err := parseDPoP(d)
			if err != nil {
				return nil, err
			}
			app.DPoP = dc
		case "registration":
			rc, err := parseRegistration(d)
			if err != nil {
				return nil, err
			}
			app.Registration = rc
		case "throttle":
			tc, err := parseThrottle(d)
			if err != nil {
				return nil, err
			}
			app.Throttle = tc
		case "user":
			u, err := parseStaticUser(d)
			if err != nil {
				return nil, err
			}
			app.Users = append(app.Users, u)
		default:
			return nil, d.Errf("unrecognized oauthgate option %q", opt)
		}
	}
	return httpcaddyfile.App{Name: "oauthgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseDeveloperPortal reads `developer_portal off` or
// `developer_portal [{ register …; platform_admins … }]`.
func parseDeveloperPortal(d *caddyfile.Dispenser) (*DeveloperPortalConfig, error) {
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return nil, d.Err("developer_portal: want `developer_portal off` or a block")
		}
		if d.NextBlock(d.Nesting()) {
			return nil, d.Err("developer_portal off takes no block")
		}
		return nil, nil
	}
	dp := new(DeveloperPortalConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "register":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			dp.Register = v
		case "platform_admins":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return nil, d.ArgErr()
			}
			dp.PlatformAdmins = append(dp.PlatformAdmins, vals...)
		default:
			return nil, d.Errf("unrecognized developer_portal option %q", opt)
		}
	}
	return dp, nil
}

// oneArg reads exactly one argument.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

func parseStore(d *caddyfile.Dispenser) (*StoreConfig, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	sc := &StoreConfig{Driver: d.Val()}
	switch sc.Driver {
	case "sqlite":
		if d.NextArg() {
			sc.DSN = d.Val()
		}
	case "postgres":
		if !d.NextArg() {
			return nil, d.Err("store postgres: a connection string is required")
		}
		sc.DSN = d.Val()
	default:
		return nil, d.Errf("store %q: want sqlite or postgres", sc.Driver)
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		switch opt {
		case "max_conns":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, d.Errf("max_conns %q: want a positive integer", v)
			}
			sc.MaxConns = n
		case "connect_timeout", "statement_timeout":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return nil, d.Errf("%s %q: want a positive duration", opt, v)
			}
			if opt == "connect_timeout" {
				sc.ConnectTimeout = caddy.Duration(dur)
			} else {
				sc.StatementTimeout = caddy.Duration(dur)
			}
		default:
			return nil, d.Errf("unrecognized store option %q", opt)
		}
	}
	return sc, nil
}

func parseStaticClient(d *caddyfile.Dispenser) (StaticClient, error) {
	var c StaticClient
	if !d.NextArg() {
		return c, d.ArgErr()
	}
	c.ID = d.Val()
	if d.NextArg() {
		return c, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "secret", "secret_hash", "name", "id_token_signed_response_alg":
			v, err := oneArg(d)
			if err != nil {
				return c, err
			}
			switch opt {
			case "secret":
				c.Secret = v
			case "secret_hash":
				c.SecretHash = v
			case "id_token_signed_response_alg":
				c.IDTokenSignedResponseAlg = v
			default:
				c.Name = v
			}
		case "grant_types", "scopes", "businesses", "redirect_uris", "post_logout_redirect_uris":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return c, d.ArgErr()
			}
			switch opt {
			case "grant_types":
				c.GrantTypes = append(c.GrantTypes, vals...)
			case "scopes":
				c.Scopes = append(c.Scopes, vals...)
			case "businesses":
				c.Businesses = append(c.Businesses, vals...)
			case "redirect_uris":
				c.RedirectURIs = append(c.RedirectURIs, vals...)
			case "post_logout_redirect_uris":
				c.PostLogoutRedirectURIs = append(c.PostLogoutRedirectURIs, vals...)
			}
		case "first_party", "public", "dpop_bound_access_tokens":
			if d.NextArg() {
				return c, d.ArgErr()
			}
			switch opt {
			case "public":
				c.Public = true
			case "dpop_bound_access_tokens":
				c.DPoPBoundAccessTokens = true
			default:
				c.FirstParty = true
			}
		default:
			return c, d.Errf("unrecognized client option %q", opt)
		}
	}
	return c, nil
}

// parseServer sets up the oauth_server handler. Syntax:
//
//	oauth_server
//
// It takes no arguments: the oauthgate global option configures it.
func parseServer(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next()
	if h.NextArg() || h.NextBlock(0) {
		return nil, h.Err("oauth_server takes no arguments; configure it in the oauthgate global option")
	}
	return new(Server), nil
}

func parseProtect(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(Protect)
	err := p.UnmarshalCaddyfile(h.Dispenser)
	return p, err
}

// UnmarshalCaddyfile sets up the oauth_protect handler. Syntax:
//
//	oauth_protect {
//		tenant header <name>
//		tenant required|inject|off
//		identity <field> <header>
//		identity off
//		keep_authorization
//		realm <name>
//		rejections json|handle_errors
//		method_override delete|check
//		resource <uri>
//		resource_name <text>
//		default_audience accept|refuse
//		<METHOD...> <path> [<scope...>]
//		<METHOD...> <path> public
//		<METHOD...> <path> [<scope...>] {
//			creates json [<member>]
//			creates location
//			user_tokens refuse|pass
//		}
//	}
//
// A route line starts with one or more upper-case HTTP methods (or *),
// then a path pattern, then the scopes a token needs, all of them; none
// means any valid token, and `public` means no token at all. Patterns are
// exact (/api/v1/me), a prefix ending in * (/api/v1/invoices*), or contain
// * as one whole segment (/api/v1/businesses/*/invoices).
//
// `tenant header` names the business header (default x-business-id).
// `tenant required` (default) refuses a request without it (400).
// `tenant inject` lets a token bound to one business (every user token:
// the business chosen on the consent screen) act for that business when
// the header is absent, and sets the header for the upstream; a
// client-credentials token is bound to none and must still name one of
// its client's businesses, even when the client owns exactly one. A
// header that is present is checked the same in both modes. `tenant off`
// checks nothing but the header's form. Identity fields
// are subject, client_id, scopes, business_id and grant_id. `rejections`
// (default json) and `method_override` (default delete) are described on
// Protect; their values are checked when the handler is provisioned.
// `resource` names the protected resource (RFC 8707, RFC 9728); by default
// the issuer's origin plus the route map's shared leading segments.
// `resource_name` is its name in the metadata (resource_name, none by
// default). `default_audience refuse` accepts only tokens whose aud names that
// resource, refusing those requested without one (default accept).
//
// A route line with a block marks a route whose requests create a business
// (create.go): `creates json <member>` reads the new id from that member
// of the upstream's 2xx JSON answer (default id; dots for nesting, as in
// data.id), `creates location` from the last segment of its Location
// header. Such a request needs no tenant header, and once the upstream
// answers 2xx the business is linked to the calling client before the
// answer is released. `user_tokens` says what a user token on the route
// gets: refuse (default, 403) or pass (nothing is linked).
func (p *Protect) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Err("oauth_protect takes a block, not arguments")
	}
	for d.NextBlock(0) {
		word := d.Val()
		switch {
		case word == "tenant":
			args := d.RemainingArgs()
			switch {
			case len(args) == 2 && args[0] == "header":
				p.TenantHeader = args[1]
			case len(args) == 1 && (args[0] == "required" || args[0] == "inject" || args[0] == "off"):
				p.Tenancy = args[0]
			default:
				return d.Err("tenant: want `tenant header <name>` or `tenant required|inject|off`")
			}
		case word == "identity":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1 && args[0] == "off":
				p.NoIdentityHeaders = true
			case len(args) == 2:
				if _, ok := identityFields[args[0]]; !ok {
					return d.Errf("identity field %q: want subject, client_id, scopes, business_id or grant_id", args[0])
				}
				if p.IdentityHeaders == nil {
					p.IdentityHeaders = make(map[string]string)
				}
				p.IdentityHeaders[args[0]] = args[1]
			default:
				return d.Err("identity: want `identity <field> <header>` or `identity off`")
			}
		case word == "keep_authorization":
			if d.NextArg() {
				return d.ArgErr()
			}
			p.KeepAuthorization = true
		case word == "realm", word == "rejections", word == "method_override", word == "resource", word == "default_audience", word == "resource_name":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			switch word {
			case "realm":
				p.Realm = v
			case "rejections":
				p.Rejections = v
			case "method_override":
				p.MethodOverride = v
			case "resource":
				p.Resource = v
			case "default_audience":
				p.DefaultAudience = v
			case "resource_name":
				p.ResourceName = v
			}
		case isMethodToken(word):
			rc := RouteConfig{Methods: []string{word}}
			for d.NextArg() {
				v := d.Val()
				if rc.Path == "" && isMethodToken(v) {
					rc.Methods = append(rc.Methods, v)
					continue
				}
				if rc.Path == "" {
					if !strings.HasPrefix(v, "/") {
						return d.Errf("route: %q is neither an upper-case HTTP method nor a path starting with /", v)
					}
					rc.Path = v
					continue
				}
				if v == "public" {
					rc.Public = true
					continue
				}
				rc.Scopes = append(rc.Scopes, v)
			}
			if rc.Path == "" {
				return d.Err("route: a path is required after the methods")
			}
			if rc.Public && len(rc.Scopes) > 0 {
				return d.Errf("route %s: public routes take no scopes", rc.Path)
			}
			if err := parseRouteBlock(d, &rc); err != nil {
				return err
			}
			p.Routes = append(p.Routes, rc)
		default:
			return d.Errf("unrecognized oauth_protect option %q (route lines start with an upper-case HTTP method)", word)
		}
	}
	if len(p.Routes) == 0 {
		return d.Err("oauth_protect needs at least one route line, e.g. `GET /api/v1/invoices* read:invoices`")
	}
	return nil
}

// parseRouteBlock reads the optional block of a route line (see
// UnmarshalCaddyfile); only creation routes have one.
func parseRouteBlock(d *caddyfile.Dispenser, rc *RouteConfig) error {
	nesting := d.Nesting()
	if !d.NextBlock(nesting) {
		return nil
	}
	c := &CreateConfig{}
	for ok := true; ok; ok = d.NextBlock(nesting) {
		switch opt := d.Val(); opt {
		case "creates":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1 && args[0] == "location":
				c.IDFrom = "location"
			case len(args) >= 1 && len(args) <= 2 && args[0] == "json":
				c.IDFrom = "json"
				if len(args) == 2 {
					c.Member = args[1]
				}
			default:
				return d.Errf("route %s: want `creates json [<member>]` or `creates location`", rc.Path)
			}
			rc.Creates = c
		case "user_tokens":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			c.UserTokens = v
		default:
			return d.Errf("route %s: unrecognized route option %q (want creates or user_tokens)", rc.Path, opt)
		}
	}
	if rc.Creates == nil {
		return d.Errf("route %s: a route block must say `creates json [<member>]` or `creates location`", rc.Path)
	}
	if rc.Public {
		return d.Errf("route %s: a public route cannot create businesses", rc.Path)
	}
	return nil
}

// isMethodToken reports whether s looks like an HTTP method: all upper-case
// letters, or "*".
func isMethodToken(s string) bool {
	if s == "*" {
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Protect)(nil)
