package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestAuthorizeErrors: one row per rule of RFC 6749 §4.1.2.1, RFC 7636,
// RFC 9207 and OIDC Core §3.1.2.6. Until the client and its redirect URI
// are known good the browser gets an error page and is sent nowhere; after
// that the error goes back to the redirect URI with state and iss.
func TestAuthorizeErrors(t *testing.T) {
	n := startNode(t, nodeOptions{})
	conf := n.registerClient(map[string]any{
		"name": "Confidential", "scopes": []string{"openid", "read:invoices"},
		"redirect_uris": []string{"http://127.0.0.1/cb", "http://127.0.0.1/cb2"},
	})
	public := n.registerClient(map[string]any{
		"name": "Public", "public": true, "scopes": []string{"read:invoices"},
		"redirect_uris": []string{"http://127.0.0.1/pub"},
	})
	ccOnly := n.registerClient(map[string]any{
		"name": "Machine", "grant_types": []string{"client_credentials"}, "scopes": []string{"read:invoices"},
		"businesses": []string{"b1"}, "redirect_uris": []string{"http://127.0.0.1/machine"},
	})
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())

	signedIn := newUserAgent(t)
	signIn(t, signedIn, n)

	type row struct {
		name     string
		query    url.Values
		signedIn bool
		// page is the error page's status; 0 means a redirect with error.
		page  int
		error string
	}
	base := func(kv ...string) url.Values {
		q := url.Values{"response_type": {"code"}, "client_id": {conf.ClientID}, "redirect_uri": {"http://127.0.0.1/cb"},
			"scope": {"read:invoices"}, "state": {"st"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				q.Del(kv[i])
			} else {
				q.Set(kv[i], kv[i+1])
			}
		}
		return q
	}
	rows := []row{
		{name: "no client_id", query: base("client_id", ""), page: 400},
		{name: "unknown client", query: base("client_id", "nobody"), page: 400},
		{name: "unregistered redirect_uri", query: base("redirect_uri", "https://evil.example/cb"), page: 400},
		{name: "redirect_uri with a trailing slash", query: base("redirect_uri", "http://127.0.0.1/cb/"), page: 400},
		{name: "redirect_uri differing in case", query: base("redirect_uri", "http://127.0.0.1/CB"), page: 400},
		{name: "redirect_uri omitted, two registered", query: base("redirect_uri", ""), page: 400},
		{name: "client_id repeated", query: func() url.Values { q := base(); q.Add("client_id", conf.ClientID); return q }(), page: 400},
		{name: "redirect_uri repeated", query: func() url.Values { q := base(); q.Add("redirect_uri", "http://127.0.0.1/cb"); return q }(), page: 400},

		{name: "no response_type", query: base("response_type", ""), error: "invalid_request"},
		{name: "response_type token", query: base("response_type", "token"), error: "unsupported_response_type"},
		{name: "response_type code id_token", query: base("response_type", "code id_token"), error: "unsupported_response_type"},
		{name: "response_mode fragment", query: base("response_mode", "fragment"), error: "invalid_request"},
		{name: "scope not registered", query: base("scope", "read:invoices write:invoices"), error: "invalid_scope"},
		{name: "offline_access not registered", query: base("scope", "offline_access"), error: "invalid_scope"},
		{name: "malformed scope", query: base("scope", "read:\"invoices"), error: "invalid_scope"},
		{name: "parameter repeated", query: func() url.Values { q := base(); q.Add("scope", "openid"); return q }(), error: "invalid_request"},
		{name: "PKCE plain", query: base("code_challenge", challenge, "code_challenge_method", "plain"), error: "invalid_request"},
		{name: "PKCE challenge without method (plain)", query: base("code_challenge", challenge), error: "invalid_request"},
		{name: "PKCE method without challenge", query: base("code_challenge_method", "S256"), error: "invalid_request"},
		{name: "PKCE challenge malformed", query: base("code_challenge", "tooshort", "code_challenge_method", "S256"), error: "invalid_request"},
		{name: "public client without PKCE", query: base("client_id", public.ClientID, "redirect_uri", "http://127.0.0.1/pub"), error: "invalid_request"},
		{name: "client not allowed the code grant", query: base("client_id", ccOnly.ClientID, "redirect_uri", "http://127.0.0.1/machine"), error: "unauthorized_client"},
		{name: "request object", query: base("request", "eyJhbGciOiJub25lIn0.e30."), error: "request_not_supported"},
		{name: "request_uri", query: base("request_uri", "https://client.example/req"), error: "request_uri_not_supported"},
		{name: "unknown prompt", query: base("prompt", "select_everything"), error: "invalid_request"},
		{name: "prompt none with login", query: base("prompt", "none login"), error: "invalid_request"},
		{name: "max_age not a number", query: base("max_age", "soon"), error: "invalid_request"},
		{name: "prompt=none signed out", query: base("prompt", "none"), error: "login_required"},
		{name: "prompt=none needing consent", query: base("prompt", "none"), signedIn: true, error: "consent_required"},
		{name: "prompt=none with max_age=0", query: base("prompt", "none", "max_age", "0"), signedIn: true, error: "login_required"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			ua := newUserAgent(t)
			if tc.signedIn {
				ua = signedIn
			}
			p := ua.get(n.URL + "/oauth/authorize?" + tc.query.Encode())
			if tc.page != 0 {
				if p.StatusCode != tc.page || p.Header.Get("Location") != "" || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
					t.Fatalf("want an error page %d and no redirect, got %d Location %q", tc.page, p.StatusCode, p.Header.Get("Location"))
				}
				checkPageHeaders(t, "error page", p.Header)
				return
			}
			if p.StatusCode != http.StatusSeeOther || p.Location == nil {
				t.Fatalf("want a redirect with %s, got %d\n%s", tc.error, p.StatusCode, p.Body)
			}
			q := p.Location.Query()
			want := tc.query.Get("redirect_uri")
			if want == "" {
				want = "http://127.0.0.1/cb"
			}
			if got := p.Location.Scheme + "://" + p.Location.Host + p.Location.Path; got != want {
				t.Errorf("redirected to %s, want %s", got, want)
			}
			if q.Get("error") != tc.error || q.Get("state") != "st" || q.Get("iss") != n.URL || q.Get("code") != "" {
				t.Errorf("redirect %s: want error=%s with state and iss", p.Location, tc.error)
			}
			if q.Get("error_description") == "" {
				t.Error("no error_description")
			}
		})
	}

	// A redirect URI's own query is kept, and the one registered URI may be
	// omitted.
	withQuery := n.registerClient(map[string]any{"name": "Q", "scopes": []string{"read:invoices"},
		"redirect_uris": []string{"http://127.0.0.1/cb?tenant=7"}})
	p := newUserAgent(t).get(n.URL + "/oauth/authorize?" + url.Values{"response_type": {"token"}, "client_id": {withQuery.ClientID}, "state": {"s"}}.Encode())
	if p.Location == nil || p.Location.Query().Get("tenant") != "7" || p.Location.Query().Get("error") != "unsupported_response_type" {
		t.Errorf("redirect keeping the registered query: %v", p.Location)
	}
}

// authorizeURL builds an authorization request.
func (ua *userAgent) authorizeURL(n *node, clientID, redirect, scope, state string) string {
	return n.URL + "/oauth/authorize?" + url.Values{"response_type": {"code"}, "client_id": {clientID},
		"redirect_uri": {redirect}, "scope": {scope}, "state": {state}}.Encode()
}

// signIn signs the user agent in as the demo user through the sign-in page
// of an authorization request for the demo app.
func signIn(t *testing.T, ua *userAgent, n *node) {
	t.Helper()
	p := ua.get(ua.authorizeURL(n, demoClientID, n.URL+"/demo/callback", "read:invoices", "sign-in"))
	if p.Location == nil || p.Location.Path != "/oauth/sign-in" {
		t.Fatalf("want the sign-in page, got %d %v", p.StatusCode, p.Location)
	}
	p = ua.signIn(ua.get(p.Location.String()), demoEmail, demoPassword)
	if p.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", p.StatusCode, p.Body)
	}
}
