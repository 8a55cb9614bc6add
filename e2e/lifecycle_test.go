package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2/clientcredentials"
)

// ccToken gets a client-credentials token with the oauth2 library.
func ccToken(t *testing.T, n *node, c registeredClient, scopes ...string) string {
	t.Helper()
	cfg := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: n.URL + "/oauth/token", Scopes: scopes}
	tok, err := cfg.Token(ctx(t))
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	return tok.AccessToken
}

// postForm posts a form with client credentials in the body.
func postForm(t *testing.T, n *node, path string, c registeredClient, vals url.Values) (int, []byte) {
	t.Helper()
	if c.ClientID != "" {
		vals.Set("client_id", c.ClientID)
		vals.Set("client_secret", c.ClientSecret)
	}
	resp, err := http.PostForm(n.URL+path, vals)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestRevocationAndIntrospection: RFC 7009 and RFC 7662, both client
// authenticated; a revoked token is refused by the gateway at once.
func TestRevocationAndIntrospection(t *testing.T) {
	n := startNode(t, nodeOptions{})
	a := n.registerClient(map[string]any{"name": "A", "scopes": []string{"read:invoices"}, "businesses": []string{"b1"}})
	b := n.registerClient(map[string]any{"name": "B", "scopes": []string{"read:invoices"}, "businesses": []string{"b1"}})
	tokA := ccToken(t, n, a)
	tokA2 := ccToken(t, n, a)

	introspect := func(c registeredClient, tok string) map[string]any {
		t.Helper()
		code, body := postForm(t, n, "/oauth/introspect", c, url.Values{"token": {tok}})
		if code != 200 {
			t.Fatalf("introspect: %d %s", code, body)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := introspect(a, tokA)
	if m["active"] != true || m["client_id"] != a.ClientID || m["scope"] != "read:invoices" || m["iss"] != n.URL || m["token_type"] != "Bearer" {
		t.Errorf("introspection of own token: %v", m)
	}
	if m := introspect(b, tokA); m["active"] != false || len(m) != 1 {
		t.Errorf("another client's token must look inactive: %v", m)
	}
	if m := introspect(a, "garbage"); m["active"] != false {
		t.Errorf("garbage: %v", m)
	}
	if code, _ := postForm(t, n, "/oauth/introspect", registeredClient{}, url.Values{"token": {tokA}}); code != 401 {
		t.Errorf("unauthenticated introspection: %d", code)
	}
	if code, _ := postForm(t, n, "/oauth/introspect", registeredClient{ClientID: a.ClientID, ClientSecret: "wrong"}, url.Values{"token": {tokA}}); code != 401 {
		t.Errorf("introspection with a wrong secret: %d", code)
	}

	// Revocation needs client authentication by default.
	if code, _ := postForm(t, n, "/oauth/revoke", registeredClient{}, url.Values{"token": {tokA}}); code != 401 {
		t.Errorf("unauthenticated revoke: %d", code)
	}
	// Another client cannot revoke A's token (answered 200, nothing revoked).
	if code, _ := postForm(t, n, "/oauth/revoke", b, url.Values{"token": {tokA}}); code != 200 {
		t.Errorf("foreign revoke: %d", code)
	}
	if r, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tokA, "b1"); r.StatusCode != 200 {
		t.Fatalf("token revoked by another client: %d", r.StatusCode)
	}
	// A revokes its token: refused at once, the other token of A unaffected.
	if code, body := postForm(t, n, "/oauth/revoke", a, url.Values{"token": {tokA}, "token_type_hint": {"access_token"}}); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	r, body := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tokA, "b1")
	if e := decodeError(t, body); r.StatusCode != 401 || e.Error != "invalid_token" {
		t.Errorf("revoked token: %d %+v", r.StatusCode, e)
	}
	if m := introspect(a, tokA); m["active"] != false {
		t.Errorf("revoked token introspects active: %v", m)
	}
	if r, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tokA2, "b1"); r.StatusCode != 200 {
		t.Errorf("sibling token: %d", r.StatusCode)
	}
	// Unknown tokens are answered 200 (RFC 7009 §2.2).
	if code, _ := postForm(t, n, "/oauth/revoke", a, url.Values{"token": {"nonsense"}}); code != 200 {
		t.Errorf("revoke unknown: %d", code)
	}
	if code, _ := postForm(t, n, "/oauth/revoke", a, url.Values{}); code != 400 {
		t.Errorf("revoke without token: %d", code)
	}
}

// TestClientAdministration: list without secrets, rotate, link, delete.
func TestClientAdministration(t *testing.T) {
	n := startNode(t, nodeOptions{})
	c := n.registerClient(map[string]any{"name": "Admin me", "scopes": []string{"read:invoices"}, "businesses": []string{"b1"}})
	tok := ccToken(t, n, c)

	var list []map[string]any
	if code := n.adminJSON("GET", "/oauthgate/clients", nil, &list); code != 200 || len(list) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), c.ClientSecret) || strings.Contains(string(raw), "secret") {
		t.Errorf("list shows secret material: %s", raw)
	}
	var one map[string]any
	if code := n.adminJSON("GET", "/oauthgate/clients/"+c.ClientID, nil, &one); code != 200 || one["name"] != "Admin me" {
		t.Errorf("get: %d %v", code, one)
	}
	if code := n.adminJSON("GET", "/oauthgate/clients/nope", nil, nil); code != 404 {
		t.Errorf("get unknown: %d", code)
	}

	// Bad registrations are refused with a reason.
	for _, bad := range []map[string]any{
		{},
		{"name": "x", "grant_types": []string{"password"}},
		{"name": "x", "scopes": []string{"read:everything"}},
		{"name": "x", "businesses": []string{"a b"}},
		{"name": "x", "grant_types": []string{"authorization_code"}},
		{"name": "x", "grant_types": []string{"authorization_code"}, "redirect_uris": []string{"http://evil.example/cb"}},
		{"name": "x", "grant_types": []string{"authorization_code"}, "redirect_uris": []string{"https://app.example/cb#frag"}},
		{"name": "x", "unknown_field": true},
	} {
		if code := n.adminJSON("POST", "/oauthgate/clients", bad, nil); code != 400 {
			t.Errorf("registration %v: %d, want 400", bad, code)
		}
	}

	// Linking a business lets existing tokens act for it.
	if r, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok, "b2"); r.StatusCode != 403 {
		t.Fatalf("b2 before link: %d", r.StatusCode)
	}
	if code := n.adminJSON("POST", "/oauthgate/clients/"+c.ClientID+"/businesses", map[string]string{"business_id": "b2"}, nil); code != 200 {
		t.Fatalf("link: %d", code)
	}
	if r, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok, "b2"); r.StatusCode != 200 {
		t.Errorf("b2 after link: %d", r.StatusCode)
	}
	if code := n.adminJSON("DELETE", "/oauthgate/clients/"+c.ClientID+"/businesses/b2", nil, nil); code != 200 {
		t.Fatalf("unlink: %d", code)
	}
	if r, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok, "b2"); r.StatusCode != 403 {
		t.Errorf("b2 after unlink: %d", r.StatusCode)
	}

	// Rotating the secret: the old one stops working, the new one works.
	var rotated registeredClient
	if code := n.adminJSON("POST", "/oauthgate/clients/"+c.ClientID+"/secret", nil, &rotated); code != 200 || rotated.ClientSecret == "" || rotated.ClientSecret == c.ClientSecret {
		t.Fatalf("rotate: %d %+v", code, rotated)
	}
	if code, _ := postForm(t, n, "/oauth/token", c, url.Values{"grant_type": {"client_credentials"}}); code != 401 {
		t.Errorf("old secret after rotation: %d", code)
	}
	if code, _ := postForm(t, n, "/oauth/token", rotated, url.Values{"grant_type": {"client_credentials"}}); code != 200 {
		t.Errorf("new secret: %d", code)
	}

	// Deleting the client refuses its tokens at once.
	if code := n.adminJSON("DELETE", "/oauthgate/clients/"+c.ClientID, nil, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if r, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok, "b1"); r.StatusCode != 401 {
		t.Errorf("token of deleted client: %d", r.StatusCode)
	}
	if code, _ := postForm(t, n, "/oauth/token", rotated, url.Values{"grant_type": {"client_credentials"}}); code != 401 {
		t.Errorf("deleted client gets a token: %d", code)
	}
}

// TestDiscoveryAndMetrics: metadata with the exact issuer and no redirects,
// JWKS, and the Prometheus series on Caddy's /metrics.
func TestDiscoveryAndMetrics(t *testing.T) {
	n := startNode(t, nodeOptions{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		resp, err := noRedirect.Get(n.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		var md map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&md)
		resp.Body.Close()
		if md["issuer"] != n.URL || md["token_endpoint"] != n.URL+"/oauth/token" || md["jwks_uri"] != n.URL+"/oauth/jwks" {
			t.Errorf("%s: %v", p, md)
		}
	}
	for _, p := range []string{"/oauth/jwks", "/.well-known/jwks.json"} {
		resp, err := noRedirect.Get(n.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v", p, err)
		}
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&set)
		resp.Body.Close()
		if len(set.Keys) == 0 || set.Keys[0]["kid"] == nil || set.Keys[0]["alg"] != "ES256" || set.Keys[0]["d"] != nil {
			t.Errorf("%s: %v", p, set)
		}
	}

	c := n.registerClient(map[string]any{"name": "M", "scopes": []string{"read:invoices"}, "businesses": []string{"b1"}})
	tok := ccToken(t, n, c)
	get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok, "b1")
	get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok, "b1")
	get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok, "other")
	postForm(t, n, "/oauth/token", registeredClient{ClientID: c.ClientID, ClientSecret: "bad"}, url.Values{"grant_type": {"client_credentials"}})

	resp, err := http.Get(n.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`oauthgate_authserver_tokens_issued_total{grant_type="client_credentials"} 1`,
		`oauthgate_authserver_token_errors_total{error="invalid_client"} 1`,
		`oauthgate_gateway_decisions_total{outcome="allow"} 2`,
		`oauthgate_gateway_decisions_total{outcome="foreign_business"} 1`,
		`oauthgate_tokens_cache_hits_total`,
		`oauthgate_tokens_cache_misses_total`,
		`oauthgate_store_pool_open`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(body), tok) || strings.Contains(string(body), c.ClientSecret) {
		t.Error("metrics contain a secret")
	}
}
