package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// idClaims are the id_token claims DESIGN.md and the Yoco guide list.
type idClaims struct {
	Sub                  string   `json:"sub"`
	UserID               string   `json:"user_id"`
	UserName             string   `json:"user_name"`
	UserEmail            string   `json:"user_email"`
	DefaultBusinessID    string   `json:"default_business_id"`
	BusinessIDs          []string `json:"business_ids"`
	AuthorizedBusinessID string   `json:"authorized_business_id"`
	Azp                  string   `json:"azp"`
	AuthTime             int64    `json:"auth_time"`
	Nonce                *string  `json:"nonce"`
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkPageHeaders: no caching, no framing, no referrer, nothing loaded from
// elsewhere.
func checkPageHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
		h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("%s: security headers %v", what, h)
	}
}

// TestAuthorizationCodeFlow is the whole flow the guides describe, driven
// with golang.org/x/oauth2 (PKCE S256) and verified with go-oidc: sign-in,
// consent for a business the user picks, code exchange, id_token, the
// gateway, userinfo, refresh rotation and its reuse detection, and the
// remembered consent.
func TestAuthorizationCodeFlow(t *testing.T) {
	n := startNode(t, nodeOptions{})
	c := n.registerClient(map[string]any{
		"name": "Ledgerly Test", "grant_types": []string{"authorization_code", "refresh_token"},
		"scopes":        []string{"openid", "offline_access", "read:invoices", "read:contacts"},
		"redirect_uris": []string{"http://127.0.0.1/callback"},
	})
	provider, err := oidc.NewProvider(ctx(t), n.URL)
	if err != nil {
		t.Fatalf("OIDC discovery: %v", err)
	}
	conf := oauth2.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: "http://127.0.0.1/callback", Scopes: []string{oidc.ScopeOpenID, "offline_access", "read:invoices"},
	}
	if conf.Endpoint.AuthURL != n.URL+"/oauth/authorize" {
		t.Fatalf("discovered authorization endpoint %q", conf.Endpoint.AuthURL)
	}
	verifier, nonce, state := oauth2.GenerateVerifier(), randomString(t), randomString(t)
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	ua := newUserAgent(t)
	// Signed out: 303 to the sign-in page, the OAuth URL kept.
	p := ua.get(authURL)
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || p.Location.Path != "/oauth/sign-in" {
		t.Fatalf("authorize signed out: %d %v", p.StatusCode, p.Location)
	}
	checkPageHeaders(t, "authorize redirect", p.Header)
	returnTo := p.Location.Query().Get("return_to")
	if rq, _ := url.Parse(returnTo); rq.Path != "/oauth/authorize" || rq.Query().Get("state") != state || rq.Query().Get("code_challenge") == "" {
		t.Fatalf("return_to %q does not keep the OAuth request", returnTo)
	}
	p = ua.get(p.Location.String())
	if p.StatusCode != 200 || !strings.Contains(p.Body, "Ledgerly Test") {
		t.Fatalf("sign-in page: %d\n%s", p.StatusCode, p.Body)
	}
	checkPageHeaders(t, "sign-in page", p.Header)
	p = ua.signIn(p, demoEmail, demoPassword)
	if p.StatusCode != http.StatusSeeOther || p.Location.RequestURI() != returnTo {
		t.Fatalf("sign-in: %d %v, want back to %s", p.StatusCode, p.Location, returnTo)
	}
	// Signed in: 303 to the consent page.
	p = ua.get(p.Location.String())
	if p.StatusCode != http.StatusSeeOther || p.Location.Path != "/oauth/consent" {
		t.Fatalf("authorize signed in: %d %v", p.StatusCode, p.Location)
	}
	p = ua.get(p.Location.String())
	if p.StatusCode != 200 {
		t.Fatalf("consent page: %d\n%s", p.StatusCode, p.Body)
	}
	checkPageHeaders(t, "consent page", p.Header)
	for _, want := range []string{"Ledgerly Test", "Demo User", demoEmail, "Acme Ltd", "Globex",
		"View invoices, line items, and payment status", "read:invoices", "openid", "offline_access", "Allow", "Deny"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(p.Body, "read:contacts") {
		t.Error("consent page shows a scope that was not requested")
	}
	f := parseForm(t, p.Body)
	if f.Fields.Get("business_id") != "biz_acme" || !slices.Equal(f.Options["business_id"], []string{"biz_acme", "biz_globex"}) {
		t.Errorf("business picker: chosen %q of %v, want the current biz_acme of both", f.Fields.Get("business_id"), f.Options["business_id"])
	}
	// The user picks Globex, not the current business.
	p = ua.submit(p, url.Values{"decision": {"allow"}, "business_id": {"biz_globex"}})
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasPrefix(p.Location.String(), "http://127.0.0.1/callback?") {
		t.Fatalf("allow: %d %v\n%s", p.StatusCode, p.Location, p.Body)
	}
	checkPageHeaders(t, "redirect to the client", p.Header)
	code := codeFrom(t, p.Location, state, n.URL)

	tok, err := conf.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.Extra("scope") != "openid offline_access read:invoices" {
		t.Errorf("token response: refresh %q, scope %v", tok.RefreshToken, tok.Extra("scope"))
	}
	rawID, _ := tok.Extra("id_token").(string)
	verifierOIDC := provider.Verifier(&oidc.Config{ClientID: c.ClientID})
	idt, err := verifierOIDC.Verify(ctx(t), rawID)
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims idClaims
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub == "" || claims.UserID != claims.Sub || claims.UserName != "Demo User" || claims.UserEmail != demoEmail ||
		claims.DefaultBusinessID != "biz_acme" || !slices.Equal(claims.BusinessIDs, []string{"biz_acme", "biz_globex"}) ||
		claims.AuthorizedBusinessID != "biz_globex" || claims.Azp != c.ClientID ||
		claims.AuthTime == 0 || time.Since(time.Unix(claims.AuthTime, 0)) > time.Minute {
		t.Errorf("id_token claims %+v", claims)
	}

	// The gateway: the consented business and scopes only.
	api := n.URL + "/api/v1/accounting/invoices"
	resp, body := get(t, "GET", api, tok.AccessToken, "biz_globex")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"x-auth-subject":"`+claims.Sub+`"`) {
		t.Errorf("GET invoices for the consented business: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, "GET", api, tok.AccessToken, "biz_acme")
	if e := decodeError(t, body); resp.StatusCode != 403 || e.Error != "business_not_allowed" {
		t.Errorf("another business of the same user: %d %+v", resp.StatusCode, e)
	}
	resp, body = get(t, "POST", api, tok.AccessToken, "biz_globex")
	if e := decodeError(t, body); resp.StatusCode != 403 || e.Error != "insufficient_scope" {
		t.Errorf("write without write:invoices: %d %+v", resp.StatusCode, e)
	}
	resp, body = get(t, "GET", n.URL+"/api/v1/crm/contacts", tok.AccessToken, "biz_globex")
	if e := decodeError(t, body); resp.StatusCode != 403 || e.Error != "insufficient_scope" {
		t.Errorf("contacts, registered but not requested: %d %+v", resp.StatusCode, e)
	}

	// userinfo, with the same claims.
	ui, err := provider.UserInfo(ctx(t), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uic idClaims
	_ = ui.Claims(&uic)
	if ui.Subject != claims.Sub || ui.Email != demoEmail || uic.AuthorizedBusinessID != "biz_globex" || len(uic.BusinessIDs) != 2 {
		t.Errorf("userinfo %+v %+v", ui, uic)
	}

	// Refresh: rotated, with a fresh id_token (without nonce).
	t2, err := conf.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if t2.RefreshToken == "" || t2.RefreshToken == tok.RefreshToken || t2.AccessToken == tok.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", t2)
	}
	id2, err := verifierOIDC.Verify(ctx(t), t2.Extra("id_token").(string))
	if err != nil || id2.Nonce != "" || id2.Subject != claims.Sub {
		t.Errorf("refreshed id_token: %v %+v", err, id2)
	}
	if resp, _ := get(t, "GET", api, t2.AccessToken, "biz_globex"); resp.StatusCode != 200 {
		t.Errorf("refreshed access token: %d", resp.StatusCode)
	}
	// Reusing the spent refresh token revokes the whole grant.
	st, raw := postForm(t, n, "/oauth/token", registeredClient{ClientID: c.ClientID, ClientSecret: c.ClientSecret},
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if e := decodeError(t, raw); st != 400 || e.Error != "invalid_grant" {
		t.Errorf("reused refresh token: %d %s", st, raw)
	}
	for _, at := range []string{tok.AccessToken, t2.AccessToken} {
		resp, body := get(t, "GET", api, at, "biz_globex")
		if e := decodeError(t, body); resp.StatusCode != 401 || e.Error != "invalid_token" {
			t.Errorf("access token of a revoked grant: %d %+v", resp.StatusCode, e)
		}
	}
	if _, err := conf.TokenSource(ctx(t), &oauth2.Token{RefreshToken: t2.RefreshToken}).Token(); err == nil {
		t.Error("the newest refresh token of a revoked grant still works")
	}

	// The replay ended the grant and with it the consent: the same request
	// shows the consent page again, and the user allows again.
	p = ua.get(conf.AuthCodeURL("asked", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || p.Location.Path != "/oauth/consent" {
		t.Fatalf("after the grant was revoked: %d %v, want the consent page", p.StatusCode, p.Location)
	}
	p = ua.submit(ua.get(p.Location.String()), url.Values{"decision": {"allow"}, "business_id": {"biz_globex"}})
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasPrefix(p.Location.String(), "http://127.0.0.1/callback?") {
		t.Fatalf("allow again: %d %v", p.StatusCode, p.Location)
	}

	// The consent is remembered: the same request goes straight back with a
	// code for the business chosen before.
	verifier = oauth2.GenerateVerifier()
	p = ua.get(conf.AuthCodeURL("again", oauth2.S256ChallengeOption(verifier)))
	if p.StatusCode != http.StatusSeeOther || !strings.HasPrefix(p.Location.String(), "http://127.0.0.1/callback?") {
		t.Fatalf("remembered consent: %d %v", p.StatusCode, p.Location)
	}
	tok3, err := conf.Exchange(ctx(t), codeFrom(t, p.Location, "again", n.URL), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, "GET", api, tok3.AccessToken, "biz_globex"); resp.StatusCode != 200 {
		t.Errorf("token of the remembered consent: %d", resp.StatusCode)
	}
	// prompt=consent asks again; so does a scope not consented to.
	for _, u := range []string{
		conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "consent")),
		conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("scope", "openid read:contacts")),
	} {
		if p := ua.get(u); p.StatusCode != http.StatusSeeOther || p.Location.Path != "/oauth/consent" {
			t.Errorf("%s: %d %v, want the consent page", u, p.StatusCode, p.Location)
		}
	}

	// The browser flow shows in the metrics.
	m := scrapeMetrics(t, n)
	for _, want := range []string{
		`oauthgate_authserver_authorizations_total{outcome="code"}`,
		`oauthgate_authserver_authorizations_total{outcome="consent"}`,
		`oauthgate_authserver_authorizations_total{outcome="sign_in"} 1`,
		`oauthgate_authserver_sign_ins_total{result="success"} 1`,
		`oauthgate_authserver_tokens_issued_total{grant_type="authorization_code"} 2`,
		`oauthgate_authserver_replays_total{kind="refresh_token"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func scrapeMetrics(t *testing.T, n *node) string {
	t.Helper()
	resp, err := http.Get(n.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
