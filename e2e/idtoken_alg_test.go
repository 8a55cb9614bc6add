package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestIDTokenRS256 is issue 9 item 11: OpenID Connect Discovery 1.0 §3
// says id_token_signing_alg_values_supported MUST include RS256. A client
// registered with id_token_signed_response_alg RS256 gets RS256 id_tokens,
// which go-oidc verifies against the JWKS with RS256 alone; its access
// tokens stay ES256; a client that asks for nothing keeps the default.
func TestIDTokenRS256(t *testing.T) {
	n := startNode(t, nodeOptions{})

	provider, err := oidc.NewProvider(ctx(t), n.URL)
	if err != nil {
		t.Fatalf("OIDC discovery: %v", err)
	}
	var md struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&md); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(md.Algs, []string{"ES256", "RS256"}) {
		t.Errorf("id_token_signing_alg_values_supported = %v, want [ES256 RS256]", md.Algs)
	}

	// The admin API refuses an algorithm it cannot sign with.
	for _, alg := range []string{"none", "HS256", "EdDSA"} {
		st := n.adminJSON(http.MethodPost, "/oauthgate/clients", map[string]any{"name": "Bad", "grant_types": []string{"client_credentials"},
			"scopes": []string{"read:invoices"}, "id_token_signed_response_alg": alg}, nil)
		if st != http.StatusBadRequest {
			t.Errorf("registering id_token_signed_response_alg %q: %d, want 400", alg, st)
		}
	}

	for _, tc := range []struct{ ask, want string }{{"RS256", "RS256"}, {"", "ES256"}} {
		t.Run("asks "+tc.ask, func(t *testing.T) {
			spec := map[string]any{
				"name": "RP " + tc.ask, "grant_types": []string{"authorization_code", "refresh_token"},
				"scopes":        []string{"openid", "read:invoices"},
				"redirect_uris": []string{"http://127.0.0.1/callback"},
			}
			if tc.ask != "" {
				spec["id_token_signed_response_alg"] = tc.ask
			}
			c := n.registerClient(spec)
			var view map[string]any
			if st := n.adminJSON(http.MethodGet, "/oauthgate/clients/"+c.ClientID, nil, &view); st != http.StatusOK || (view["id_token_signed_response_alg"] != nil) != (tc.ask != "") {
				t.Errorf("client as the admin API shows it: %d %v", st, view)
			}
			conf := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: provider.Endpoint(),
				RedirectURL: "http://127.0.0.1/callback", Scopes: []string{oidc.ScopeOpenID, "read:invoices"}}
			verifier, nonce, state := oauth2.GenerateVerifier(), randomString(t), randomString(t)
			ua := newUserAgent(t)
			p := ua.get(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
			p = ua.signIn(ua.get(p.Location.String()), demoEmail, demoPassword)
			p = ua.get(p.Location.String()) // authorize, signed in: to consent
			p = ua.submit(ua.get(p.Location.String()), url.Values{"decision": {"allow"}})
			if p.StatusCode != http.StatusSeeOther || p.Location == nil {
				t.Fatalf("consent: %d %v", p.StatusCode, p.Location)
			}
			tok, err := conf.Exchange(ctx(t), codeFrom(t, p.Location, state, n.URL), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			// Only the algorithm the client asked for is accepted.
			strict := provider.Verifier(&oidc.Config{ClientID: c.ClientID, SupportedSigningAlgs: []string{tc.want}})
			rawID, _ := tok.Extra("id_token").(string)
			idt, err := strict.Verify(ctx(t), rawID)
			if err != nil {
				t.Fatalf("id_token verified as %s only: %v", tc.want, err)
			}
			if idt.Nonce != nonce {
				t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			if alg := decodeJWTPart(t, tok.AccessToken, 0)["alg"]; alg != "ES256" {
				t.Errorf("access token alg %v, want ES256", alg)
			}
			if resp, _ := get(t, http.MethodGet, n.URL+"/api/v1/accounting/invoices", tok.AccessToken, "biz_acme"); resp.StatusCode != http.StatusOK {
				t.Errorf("gateway answered %d to the access token", resp.StatusCode)
			}
			// A refresh signs its id_token the same way.
			next, err := conf.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			rawID, _ = next.Extra("id_token").(string)
			if _, err := strict.Verify(ctx(t), rawID); err != nil {
				t.Errorf("refreshed id_token verified as %s only: %v", tc.want, err)
			}
			if alg := decodeJWTPart(t, next.AccessToken, 0)["alg"]; alg != "ES256" {
				t.Errorf("refreshed access token alg %v, want ES256", alg)
			}
		})
	}
}
