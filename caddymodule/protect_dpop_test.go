package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/oauthgate/oauthgate/dpop/dpoptest"
	"github.com/oauthgate/oauthgate/tokens"
)

// TestProtectDPoP: through the handler, a DPoP-bound token with its proof
// reaches the upstream without Authorization or DPoP headers; refusals
// carry WWW-Authenticate: DPoP with algs (RFC 9449 §7.1) and the JSON
// body; a request without any credential is offered both schemes.
func TestProtectDPoP(t *testing.T) {
	p, app := benchApp(t)
	key, err := dpoptest.NewKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := app.rt.Load().tokens.MintAccess(tokens.Access{Subject: "bench-client", ClientID: "bench-client",
		GrantID: "cc_dpop", Scopes: []string{"read:invoices"}, JKT: key.JKT()})
	if err != nil {
		t.Fatal(err)
	}
	const path = "/api/v1/accounting/invoices"
	serve := func(scheme string, proofs ...string) (*httptest.ResponseRecorder, *http.Request) {
		r := httptest.NewRequest("GET", path, nil)
		if scheme != "" {
			r.Header.Set("Authorization", scheme+" "+tok)
		}
		r.Header.Set("X-Business-Id", "biz_bench")
		for _, pr := range proofs {
			r.Header.Add("DPoP", pr)
		}
		w := httptest.NewRecorder()
		rr := caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, new(caddyhttp.Server))
		var upstream *http.Request
		_ = p.ServeHTTP(w, rr, caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
			upstream = r
			return nil
		}))
		return w, upstream
	}
	proof := func() string {
		s, err := key.Sign(dpoptest.Proof{Method: "GET", URL: "http://example.com" + path, AccessToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	w, up := serve("DPoP", proof())
	if up == nil {
		t.Fatalf("valid proof refused: %d %s %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
	}
	if up.Header.Get("Authorization") != "" || up.Header.Get("DPoP") != "" {
		t.Errorf("the upstream sees OAuth: %v", up.Header)
	}

	for _, tc := range []struct {
		name, scheme string
		proofs       []string
		code         string
	}{
		{"bound token as Bearer", "Bearer", nil, "invalid_token"},
		{"no proof", "DPoP", nil, "invalid_dpop_proof"},
		{"bad proof", "DPoP", []string{"x.y.z"}, "invalid_dpop_proof"},
	} {
		w, up := serve(tc.scheme, tc.proofs...)
		ch := w.Header().Get("WWW-Authenticate")
		var body struct{ Error, Error_description string }
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if up != nil || w.Code != 401 || body.Error != tc.code {
			t.Errorf("%s: %d %s, want 401 %s", tc.name, w.Code, w.Body, tc.code)
		}
		if !strings.HasPrefix(ch, `DPoP realm="oauthgate", error="`+tc.code+`"`) || !strings.Contains(ch, `algs="ES256 ES384 EdDSA Ed25519 RS256 PS256"`) {
			t.Errorf("%s: challenge %s", tc.name, ch)
		}
		if strings.Contains(w.Body.String(), tok) || strings.Contains(ch, tok) {
			t.Errorf("%s: the token is echoed", tc.name)
		}
	}
	w, _ = serve("")
	if chs := w.Header().Values("WWW-Authenticate"); len(chs) != 2 || !strings.HasPrefix(chs[0], "Bearer ") || !strings.HasPrefix(chs[1], "DPoP ") {
		t.Errorf("no credential: challenges %q, want Bearer and DPoP", chs)
	}
}

// TestProtectDPoPRewrittenPath: behind handle_path /gw/* (an earlier
// handler stripped the prefix), the client's proof names the URL it
// requested, /gw/...; it passes, and a proof naming the rewritten path,
// which the client never requested, is refused.
func TestProtectDPoPRewrittenPath(t *testing.T) {
	p, app := benchApp(t)
	key, err := dpoptest.NewKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := app.rt.Load().tokens.MintAccess(tokens.Access{Subject: "bench-client", ClientID: "bench-client",
		GrantID: "cc_dpop", Scopes: []string{"read:invoices"}, JKT: key.JKT()})
	if err != nil {
		t.Fatal(err)
	}
	const path = "/api/v1/accounting/invoices"
	serve := func(htu string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/gw"+path, nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("X-Business-Id", "biz_bench")
		pr, err := key.Sign(dpoptest.Proof{Method: "GET", URL: htu, AccessToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("DPoP", pr)
		w := httptest.NewRecorder()
		rr := caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, new(caddyhttp.Server))
		rr.URL.Path = path // what handle_path /gw/* hands on
		_ = p.ServeHTTP(w, rr, caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}))
		return w
	}
	if w := serve("http://example.com/gw" + path); w.Code != http.StatusNoContent {
		t.Fatalf("proof for the requested URL: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := serve("http://example.com" + path); w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_dpop_proof") {
		t.Fatalf("proof for the rewritten URL: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// TestProtectDPoPResourceOrigin: a block whose resource the operator
// named accepts proofs for that origin only: a request reaching it with
// another Host (a catch-all site) does not make a proof for that other
// origin, which the same token may have been sent to, acceptable.
func TestProtectDPoPResourceOrigin(t *testing.T) {
	_, app := benchApp(t)
	p := &Protect{Routes: benchRoutes(), Resource: "https://api.example.com/api/v1"}
	if err := p.Provision(caddy.ActiveContext()); err != nil {
		t.Fatal(err)
	}
	key, err := dpoptest.NewKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := app.rt.Load().tokens.MintAccess(tokens.Access{Subject: "bench-client", ClientID: "bench-client",
		GrantID: "cc_dpop", Scopes: []string{"read:invoices"}, JKT: key.JKT()})
	if err != nil {
		t.Fatal(err)
	}
	const path = "/api/v1/accounting/invoices"
	serve := func(host, htu string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.Host = host
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("X-Business-Id", "biz_bench")
		pr, err := key.Sign(dpoptest.Proof{Method: "GET", URL: htu, AccessToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("DPoP", pr)
		w := httptest.NewRecorder()
		rr := caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, new(caddyhttp.Server))
		_ = p.ServeHTTP(w, rr, caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}))
		return w
	}
	// Behind a TLS-terminating proxy: plain HTTP, an internal Host.
	if w := serve("10.0.0.5:8080", "https://api.example.com"+path); w.Code != http.StatusNoContent {
		t.Fatalf("proof for the resource's origin: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	for _, host := range []string{"10.0.0.5:8080", "other.example.net"} {
		if w := serve(host, "http://"+host+path); w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_dpop_proof") {
			t.Errorf("proof for the request's own origin %s: %d %s", host, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}
