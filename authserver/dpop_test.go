package authserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/dpop"
	"github.com/oauthgate/oauthgate/dpop/dpoptest"
	"github.com/oauthgate/oauthgate/tokens"
)

func dpopKey(t *testing.T) *dpoptest.Key {
	t.Helper()
	k, err := dpoptest.NewKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tokenProof signs a proof for the rig's token endpoint at the rig's now.
func (r *rig) tokenProof(k *dpoptest.Key) string {
	r.t.Helper()
	p, err := k.Sign(dpoptest.Proof{Method: "POST", URL: testIssuer + "/oauth/token", IssuedAt: r.clock.Now()})
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// tokenWithProof posts a token request with DPoP headers (none, one or
// several).
func (r *rig) tokenWithProof(form url.Values, basic string, proofs ...string) response {
	r.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != "" {
		req.SetBasicAuth(strings.Split(basic, ":")[0], strings.Split(basic, ":")[1])
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return r.do(req)
}

func (r *rig) introspect(token string) map[string]any {
	r.t.Helper()
	resp := r.postForm("/oauth/introspect", url.Values{"token": {token}}, "app:app-secret")
	return resp.body
}

// TestTokenEndpointDPoP: RFC 9449 §5: a proof on each grant binds the
// access token (token_type DPoP, cnf.jkt); without one the token stays a
// bearer token.
func TestTokenEndpointDPoP(t *testing.T) {
	r := newRig(t, Config{})
	k := dpopKey(t)
	cc := url.Values{"grant_type": {"client_credentials"}}

	resp := r.tokenWithProof(cc, "svc:svc-secret", r.tokenProof(k))
	if resp.Code != 200 || resp.body["token_type"] != "DPoP" {
		t.Fatalf("client_credentials with a proof: %d %v", resp.Code, resp.body)
	}
	claims, err := r.s.tokens.Verify(resp.body["access_token"].(string))
	if err != nil || claims.JKT != k.JKT() {
		t.Fatalf("bound token: %v, jkt %q want %q", err, claims.JKT, k.JKT())
	}
	resp = r.tokenWithProof(cc, "svc:svc-secret")
	if resp.Code != 200 || resp.body["token_type"] != "Bearer" {
		t.Fatalf("without a proof: %d %v", resp.Code, resp.body)
	}

	// Authorization code of the confidential client: the access token is
	// bound, the refresh token is not (the client's secret guards it).
	code := r.code("app", []string{"read:invoices"}, "", true)
	resp = r.tokenWithProof(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rigRedirect}}, "app:app-secret", r.tokenProof(k))
	if resp.Code != 200 || resp.body["token_type"] != "DPoP" {
		t.Fatalf("code with a proof: %d %v", resp.Code, resp.body)
	}
	in := r.introspect(resp.body["access_token"].(string))
	if cnf, _ := in["cnf"].(map[string]any); cnf["jkt"] != k.JKT() || in["token_type"] != "DPoP" {
		t.Fatalf("RFC 9449 §6.2: introspection of a bound token: %v", in)
	}
	rt := resp.body["refresh_token"].(string)
	resp = r.tokenWithProof(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "app:app-secret")
	if resp.Code != 200 || resp.body["token_type"] != "Bearer" {
		t.Fatalf("a confidential client's refresh without a proof: %d %v", resp.Code, resp.body)
	}
}

// TestPublicClientRefreshBound: §5: a public client's refresh token is
// bound to the proof's key; a refresh needs a proof by that key, and a
// refusal spends nothing.
func TestPublicClientRefreshBound(t *testing.T) {
	r := newRig(t, Config{})
	k, other := dpopKey(t), dpopKey(t)
	code := r.code("spa", []string{"read:invoices"}, rigChallenge, true)
	resp := r.tokenWithProof(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rigRedirect},
		"client_id": {"spa"}, "code_verifier": {rigVerifier}}, "", r.tokenProof(k))
	if resp.Code != 200 || resp.body["token_type"] != "DPoP" {
		t.Fatalf("code: %d %v", resp.Code, resp.body)
	}
	rt := resp.body["refresh_token"].(string)
	row, err := r.s.store.GetRefreshToken(context.Background(), tokens.HashSecret(rt))
	if err != nil || row.JKT != k.JKT() {
		t.Fatalf("stored refresh token: %v, jkt %q", err, row.JKT)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}}
	for _, tc := range []struct {
		name   string
		proofs []string
	}{
		{"no proof", nil},
		{"a proof by another key", []string{r.tokenProof(other)}},
	} {
		resp := r.tokenWithProof(refresh, "", tc.proofs...)
		if resp.Code != 400 || resp.errorCode() != "invalid_dpop_proof" {
			t.Errorf("%s: %d %v, want 400 invalid_dpop_proof", tc.name, resp.Code, resp.body)
		}
	}
	resp = r.tokenWithProof(refresh, "", r.tokenProof(k))
	if resp.Code != 200 || resp.body["token_type"] != "DPoP" {
		t.Fatalf("refresh with the key's proof (nothing was spent before): %d %v", resp.Code, resp.body)
	}
	next, _ := r.s.store.GetRefreshToken(context.Background(), tokens.HashSecret(resp.body["refresh_token"].(string)))
	if next == nil || next.JKT != k.JKT() {
		t.Fatalf("the rotated refresh token lost its binding: %+v", next)
	}
}

// TestDPoPRequiredClient: §5.2: a client registered (admin API) with
// dpop_bound_access_tokens gets no bearer token; with a proof it gets a
// bound one.
func TestDPoPRequiredClient(t *testing.T) {
	r := newRig(t, Config{})
	req := httptest.NewRequest(http.MethodPost, "/oauthgate/clients", strings.NewReader(
		`{"name":"Bound","grant_types":["client_credentials"],"scopes":["read:invoices"],"dpop_bound_access_tokens":true}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	r.s.AdminHandler().ServeHTTP(rec, req)
	var created map[string]any
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &created) != nil || created["dpop_bound_access_tokens"] != true {
		t.Fatalf("creating the client: %d %s", rec.Code, rec.Body)
	}
	basic := created["client_id"].(string) + ":" + created["client_secret"].(string)
	cc := url.Values{"grant_type": {"client_credentials"}}
	if resp := r.tokenWithProof(cc, basic); resp.Code != 400 || resp.errorCode() != "invalid_dpop_proof" || resp.body["access_token"] != nil {
		t.Fatalf("no proof: %d %v, want 400 invalid_dpop_proof", resp.Code, resp.body)
	}
	if resp := r.tokenWithProof(cc, basic, r.tokenProof(dpopKey(t))); resp.Code != 200 || resp.body["token_type"] != "DPoP" {
		t.Fatalf("with a proof: %d %v", resp.Code, resp.body)
	}
}

// TestTokenEndpointProofRejections: each bad proof is refused with 400
// invalid_dpop_proof (§5), before anything is issued.
func TestTokenEndpointProofRejections(t *testing.T) {
	r := newRig(t, Config{})
	k := dpopKey(t)
	sign := func(p dpoptest.Proof) string {
		if p.Method == "" {
			p.Method = "POST"
		}
		if p.URL == "" {
			p.URL = testIssuer + "/oauth/token"
		}
		if p.IssuedAt.IsZero() {
			p.IssuedAt = r.clock.Now()
		}
		s, err := k.Sign(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	replayed := sign(dpoptest.Proof{})
	if resp := r.tokenWithProof(url.Values{"grant_type": {"client_credentials"}}, "svc:svc-secret", replayed); resp.Code != 200 {
		t.Fatalf("first use: %d %v", resp.Code, resp.body)
	}
	for _, tc := range []struct {
		name   string
		proofs []string
	}{
		{"two DPoP headers", []string{sign(dpoptest.Proof{}), sign(dpoptest.Proof{})}},
		{"not a JWT", []string{"garbage"}},
		{"replayed", []string{replayed}},
		{"another URL", []string{sign(dpoptest.Proof{URL: testIssuer + "/oauth/revoke"})}},
		{"another method", []string{sign(dpoptest.Proof{Method: "GET"})}},
		{"stale", []string{sign(dpoptest.Proof{IssuedAt: r.clock.Now().Add(-10 * time.Minute)})}},
		{"with an ath", []string{sign(dpoptest.Proof{AccessToken: "x"})}},
		{"oversized", []string{strings.Repeat("a", dpop.MaxProofLen+1)}},
	} {
		resp := r.tokenWithProof(url.Values{"grant_type": {"client_credentials"}}, "svc:svc-secret", tc.proofs...)
		if resp.Code != 400 || resp.errorCode() != "invalid_dpop_proof" || resp.body["access_token"] != nil {
			t.Errorf("%s: %d %v, want 400 invalid_dpop_proof", tc.name, resp.Code, resp.body)
		}
		if d, _ := resp.body["error_description"].(string); strings.Contains(d, "eyJ") {
			t.Errorf("%s: the description echoes the proof", tc.name)
		}
	}
}

// TestDiscoveryAdvertisesDPoP: §5.1: dpop_signing_alg_values_supported in
// both metadata documents.
func TestDiscoveryAdvertisesDPoP(t *testing.T) {
	r := newRig(t, Config{})
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		resp := r.get(p)
		algs, _ := resp.body["dpop_signing_alg_values_supported"].([]any)
		if len(algs) == 0 || algs[0] != "ES256" {
			t.Errorf("%s: dpop_signing_alg_values_supported = %v", p, resp.body["dpop_signing_alg_values_supported"])
		}
		for _, a := range algs {
			if a == "none" || strings.HasPrefix(a.(string), "HS") {
				t.Errorf("%s advertises %v", p, a)
			}
		}
	}
}

// TestTokenEndpointReplayApart: proofs anyone can make at the token
// endpoint (a public client has no secret) fill only the token endpoint's
// replay cache: once it is full there (503), a bound token's request at a
// resource still has room in the resources' cache.
func TestTokenEndpointReplayApart(t *testing.T) {
	var r *rig
	c, err := dpop.New(dpop.Config{ReplayEntries: 2, Now: func() time.Time { return r.clock.Now() }})
	if err != nil {
		t.Fatal(err)
	}
	r = newRig(t, Config{DPoP: c})
	k := dpopKey(t)
	code := r.code("app", []string{"openid", "read:invoices"}, "", true)
	resp := r.tokenWithProof(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rigRedirect}}, "app:app-secret", r.tokenProof(k))
	if resp.Code != 200 || resp.body["token_type"] != "DPoP" {
		t.Fatalf("code: %d %v", resp.Code, resp.body)
	}
	at := resp.body["access_token"].(string)
	cc := url.Values{"grant_type": {"client_credentials"}}
	if resp := r.tokenWithProof(cc, "svc:svc-secret", r.tokenProof(dpopKey(t))); resp.Code != 200 {
		t.Fatalf("second proof: %d %v", resp.Code, resp.body)
	}
	if resp := r.tokenWithProof(cc, "svc:svc-secret", r.tokenProof(dpopKey(t))); resp.Code != 503 {
		t.Fatalf("token endpoint cache full: %d %v, want 503", resp.Code, resp.body)
	}
	p, err := k.Sign(dpoptest.Proof{Method: "GET", URL: testIssuer + "/oauth/userinfo", IssuedAt: r.clock.Now(), AccessToken: at})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/oauth/userinfo", nil)
	req.Header.Set("Authorization", "DPoP "+at)
	req.Header.Set("DPoP", p)
	if resp := r.do(req); resp.Code != 200 {
		t.Fatalf("UserInfo after the token endpoint's cache filled: %d %v", resp.Code, resp.body)
	}
}

// TestUserinfoDPoP: RFC 9449 §7 at UserInfo, as at the gateway: a stolen
// DPoP-bound token is refused as Bearer or without a proof; with the
// DPoP scheme and a proof by its key it is served.
func TestUserinfoDPoP(t *testing.T) {
	r := newRig(t, Config{})
	k := dpopKey(t)
	code := r.code("app", []string{"openid", "read:invoices"}, "", true)
	resp := r.tokenWithProof(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rigRedirect}}, "app:app-secret", r.tokenProof(k))
	if resp.Code != 200 || resp.body["token_type"] != "DPoP" {
		t.Fatalf("code: %d %v", resp.Code, resp.body)
	}
	at := resp.body["access_token"].(string)
	get := func(scheme string, proofs ...string) response {
		req := httptest.NewRequest(http.MethodGet, "/oauth/userinfo", nil)
		req.Header.Set("Authorization", scheme+" "+at)
		for _, p := range proofs {
			req.Header.Add("DPoP", p)
		}
		return r.do(req)
	}
	proof := func(method, u string) string {
		p, err := k.Sign(dpoptest.Proof{Method: method, URL: u, IssuedAt: r.clock.Now(), AccessToken: at})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		scheme string
		proofs []string
		code   string
	}{
		{"as Bearer", "Bearer", nil, "invalid_token"},
		{"as Bearer with a proof", "Bearer", []string{proof("GET", testIssuer+"/oauth/userinfo")}, "invalid_token"},
		{"no proof", "DPoP", nil, "invalid_dpop_proof"},
		{"proof for another URL", "DPoP", []string{proof("GET", testIssuer+"/oauth/token")}, "invalid_dpop_proof"},
		{"proof by another key", "DPoP", []string{func() string {
			p, _ := dpopKey(t).Sign(dpoptest.Proof{Method: "GET", URL: testIssuer + "/oauth/userinfo", IssuedAt: r.clock.Now(), AccessToken: at})
			return p
		}()}, "invalid_token"},
	} {
		resp := get(tc.scheme, tc.proofs...)
		if resp.Code != 401 || resp.errorCode() != tc.code || !strings.HasPrefix(resp.Header().Get("WWW-Authenticate"), "DPoP ") {
			t.Errorf("%s: %d %v %q, want 401 %s with a DPoP challenge", tc.name, resp.Code, resp.body, resp.Header().Get("WWW-Authenticate"), tc.code)
		}
	}
	if resp := get("DPoP", proof("GET", testIssuer+"/oauth/userinfo")); resp.Code != 200 || resp.body["sub"] == nil {
		t.Fatalf("with its proof: %d %v", resp.Code, resp.body)
	}
}
