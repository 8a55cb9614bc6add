package authserver

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// MaxRedirectURIs bounds how many redirect URIs one registration may list,
// and MaxRedirectURILength how long each may be.
const (
	MaxRedirectURIs      = 20
	MaxRedirectURILength = 2000
)

// RedirectURIRules say what ValidateRedirectURI accepts beyond the baseline
// every registration gets (absolute, no fragment, no wildcard, https).
type RedirectURIRules struct {
	// PrivateUseSchemes allows reverse-domain private-use schemes such as
	// com.example.app:/cb (RFC 8252 §7.1). Only native apps use them, and
	// native apps are public clients: the developer portal and dynamic
	// registration set it for public clients only. The operator's admin
	// API and static clients set it always.
	PrivateUseSchemes bool
	// HTTPHosts are hosts, besides loopback, whose redirect URIs may use
	// plain http (the allow_http_redirect option; compared case-blind).
	HTTPHosts []string
}

// RedirectURIError says why a redirect URI was refused, in words fit for
// the message next to a form field or an RFC 7591 error_description.
type RedirectURIError struct {
	URI    string
	Reason string
}

func (e *RedirectURIError) Error() string {
	return fmt.Sprintf("redirect_uri %q: %s", e.URI, e.Reason)
}

// ValidateRedirectURI enforces RFC 6749 §3.1.2, RFC 9700 §2.1 and §4.1.3
// and RFC 8252 §7 on one redirect URI: plain ASCII (RFC 3986 §2); absolute;
// no fragment; no userinfo; a port, if any, within 1-65535;
// no wildcard (the URI is compared by exact string match, and a "*" is a
// sign its author expects otherwise); https, except http on loopback
// (127.0.0.1, [::1], localhost, any port, RFC 8252 §7.3) or on a host rules
// name; a reverse-domain private-use scheme only when rules allow it. It
// returns a *RedirectURIError.
func ValidateRedirectURI(raw string, rules RedirectURIRules) error {
	bad := func(reason string) error { return &RedirectURIError{URI: raw, Reason: reason} }
	if len(raw) > MaxRedirectURILength {
		return &RedirectURIError{URI: raw[:40] + "…", Reason: fmt.Sprintf("longer than %d characters", MaxRedirectURILength)}
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad("must not contain spaces or control characters")
	}
	// A URI is ASCII (RFC 3986 §2). Anything else is either invisible
	// (a no-break space, a line separator pasted into the form) or a
	// look-alike host (a Cyrillic "а" in "exаmple.com") that the consent
	// and portal pages would show as the genuine one.
	if strings.ContainsFunc(raw, func(r rune) bool { return r > 0x7e }) {
		return bad("must be plain ASCII: percent-encode other characters, and write an international domain name in its xn-- form")
	}
	if strings.Contains(raw, "#") {
		return bad("must not have a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return bad("must be an absolute URI")
	}
	if strings.Contains(raw, "*") {
		return bad("must not contain a wildcard: redirect URIs are matched exactly")
	}
	if u.User != nil {
		return bad("must not contain a user name or password")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("has an invalid port: want 1 to 65535")
		}
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" || u.Hostname() == "" {
			return bad("has no host")
		}
	case "http":
		h := strings.ToLower(u.Hostname())
		if h == "" {
			return bad("has no host")
		}
		if h != "localhost" && h != "127.0.0.1" && h != "::1" &&
			!slices.ContainsFunc(rules.HTTPHosts, func(a string) bool { return strings.EqualFold(a, h) }) {
			return bad("http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https")
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return bad("must use https, loopback http, or a reverse-domain private-use scheme (com.example.app:/callback)")
		}
		if !rules.PrivateUseSchemes {
			return bad("uses a private-use scheme, which only a public client (a native app) may register")
		}
	}
	return nil
}

// ValidateRedirectURIs checks a registration's list: at most
// MaxRedirectURIs, no duplicates, each one under ValidateRedirectURI. It
// returns a *RedirectURIError for the first refused URI.
func ValidateRedirectURIs(uris []string, rules RedirectURIRules) error {
	if len(uris) > MaxRedirectURIs {
		return &RedirectURIError{URI: uris[MaxRedirectURIs], Reason: fmt.Sprintf("one too many: at most %d redirect URIs", MaxRedirectURIs)}
	}
	for i, u := range uris {
		if slices.Contains(uris[:i], u) {
			return &RedirectURIError{URI: u, Reason: "listed twice"}
		}
		if err := ValidateRedirectURI(u, rules); err != nil {
			return err
		}
	}
	return nil
}

// RedirectURIRules are the rules for a client registered by a third party
// (the developer portal, dynamic registration): private-use schemes only
// for a public client, http only on loopback and the allow_http_redirect
// hosts.
func (s *Server) RedirectURIRules(public bool) RedirectURIRules {
	return RedirectURIRules{PrivateUseSchemes: public, HTTPHosts: s.httpHosts}
}

// ThirdPartyScopes is what a client registered by a third party may ask
// for, in catalogue order: Config.ThirdPartyScopes, or by default the whole
// catalogue with openid and offline_access.
func (s *Server) ThirdPartyScopes() []string { return slices.Clone(s.thirdParty) }

// IsThirdPartyScope reports whether a third party may register scope.
func (s *Server) IsThirdPartyScope(scope string) bool { return slices.Contains(s.thirdParty, scope) }

// initThirdPartyScopes checks Config.ThirdPartyScopes against the catalogue
// and fills the default.
func (s *Server) initThirdPartyScopes() error {
	known := func(sc string) bool {
		_, ok := s.scopes[sc]
		return ok || sc == "openid" || sc == "offline_access" || (len(s.scopes) == 0 && validScopeToken(sc))
	}
	for _, h := range s.cfg.AllowHTTPRedirectHosts {
		host := strings.Trim(h, "[]")
		// A colon is an IPv6 address's, never a port's: the rule is
		// compared with the URI's host alone, so "staging:8080" would
		// match nothing and silently allow nothing.
		_, ipErr := netip.ParseAddr(host)
		if host == "" || strings.ContainsAny(h, "/*@?#% \t") || (strings.Contains(host, ":") && ipErr != nil) {
			return fmt.Errorf("allow_http_redirect %q: want a host name or IP address, without scheme or port", h)
		}
		s.httpHosts = append(s.httpHosts, strings.ToLower(host))
	}
	if s.cfg.ThirdPartyScopes == nil {
		for _, sc := range s.cfg.Scopes {
			s.thirdParty = append(s.thirdParty, sc.Name)
		}
		s.thirdParty = append(s.thirdParty, "openid", "offline_access")
		return nil
	}
	for _, sc := range s.cfg.ThirdPartyScopes {
		if !known(sc) {
			return fmt.Errorf("third_party_scopes: %q is not in the scope catalogue (nor openid or offline_access)", sc)
		}
		if !slices.Contains(s.thirdParty, sc) {
			s.thirdParty = append(s.thirdParty, sc)
		}
	}
	if s.thirdParty == nil {
		s.thirdParty = []string{}
	}
	return nil
}
