package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/dpop"
	"github.com/oauthgate/oauthgate/dpop/dpoptest"
	"github.com/oauthgate/oauthgate/policies"
	"github.com/oauthgate/oauthgate/tokens"
)

const boundToken = "bound-token"

func dpopGuard(t *testing.T, nonces bool) (*Guard, *fakeVerifier, *dpoptest.Key, *dpop.Checker) {
	t.Helper()
	k, err := dpoptest.NewKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	cfg := dpop.Config{}
	if nonces {
		cfg.Nonce = &dpop.NonceConfig{Secret: "s"}
	}
	c, err := dpop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policies.Compile([]policies.Rule{{Methods: []string{"GET", "POST"}, Path: "/invoices*", Scopes: []string{"read:invoices"}}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFake()
	f.tokens[boundToken] = &tokens.Claims{Subject: "u1", ClientID: "app", User: true, BusinessID: "b1", Scopes: []string{"read:invoices"}, JKT: k.JKT()}
	return New(Config{Policy: p, Tenancy: policies.Tenancy{Mode: policies.Off}, DPoP: c}), f, k, c
}

func signed(t *testing.T, k *dpoptest.Key, p dpoptest.Proof) string {
	t.Helper()
	if p.Method == "" {
		p.Method = "GET"
	}
	if p.URL == "" {
		p.URL = "http://api.example.com/invoices"
	}
	if p.AccessToken == "" {
		p.AccessToken = boundToken
	}
	s, err := k.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dpopRequest(method, target, scheme, token string, proofs ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Host = "api.example.com"
	if token != "" {
		r.Header.Set("Authorization", scheme+" "+token)
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

// TestDecideDPoP: RFC 9449 §7: a bound token passes with the DPoP scheme
// and a fresh proof of its key for this request, and every way of getting
// that wrong is refused with its reason.
func TestDecideDPoP(t *testing.T) {
	g, f, k, _ := dpopGuard(t, false)
	other, _ := dpoptest.NewKey("ES256")
	if d := g.Decide(dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{})), f); d.Verdict != Allow {
		t.Fatalf("valid proof: %+v", d)
	}
	if d := g.Decide(dpopRequest("GET", "/invoices?page=2", "dpop", boundToken, signed(t, k, dpoptest.Proof{})), f); d.Verdict != Allow {
		t.Fatalf("scheme name in another case, query not in htu: %+v", d)
	}
	replayed := signed(t, k, dpoptest.Proof{})
	g.Decide(dpopRequest("GET", "/invoices", "DPoP", boundToken, replayed), f)

	for _, tc := range []struct {
		name string
		r    *http.Request
		want Reason
	}{
		{"bound token as Bearer", dpopRequest("GET", "/invoices", "Bearer", boundToken, signed(t, k, dpoptest.Proof{})), BoundAsBearer},
		{"bound token as Bearer, no proof", dpopRequest("GET", "/invoices", "Bearer", boundToken), BoundAsBearer},
		{"DPoP scheme, no proof", dpopRequest("GET", "/invoices", "DPoP", boundToken), BadProof},
		{"two DPoP headers", dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{}), signed(t, k, dpoptest.Proof{})), BadProof},
		{"replayed proof", dpopRequest("GET", "/invoices", "DPoP", boundToken, replayed), BadProof},
		{"proof for another method", dpopRequest("POST", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{})), BadProof},
		{"proof for another URL", dpopRequest("GET", "/invoices/2", "DPoP", boundToken, signed(t, k, dpoptest.Proof{})), BadProof},
		{"proof for https, request over http", dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{URL: "https://api.example.com/invoices"})), BadProof},
		{"stale proof", dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{IssuedAt: time.Now().Add(-2 * time.Minute)})), BadProof},
		{"future proof", dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{IssuedAt: time.Now().Add(time.Minute)})), BadProof},
		{"ath of another token", dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{AccessToken: "user-read"})), BadProof},
		{"proof by another key", dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, other, dpoptest.Proof{})), WrongKey},
		{"DPoP scheme with an unbound token", dpopRequest("GET", "/invoices", "DPoP", "user-read", signed(t, k, dpoptest.Proof{AccessToken: "user-read"})), NotBound},
		{"garbage proof", dpopRequest("GET", "/invoices", "DPoP", boundToken, "garbage"), BadProof},
		{"DPoP scheme, no token", dpopRequest("GET", "/invoices", "DPoP", " ", signed(t, k, dpoptest.Proof{})), Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := g.Decide(tc.r, f)
			if d.Verdict != Refuse || d.Reason != tc.want {
				t.Fatalf("got %v %v, want %v", d.Verdict, d.Reason, tc.want)
			}
			if tc.want != Malformed && !d.DPoP {
				t.Error("a DPoP refusal must be challenged with the DPoP scheme")
			}
			if st := d.Reason.Status(); st != http.StatusUnauthorized && tc.want != Malformed {
				t.Errorf("status %d, want 401 (RFC 9449 §7.1)", st)
			}
		})
	}
	if BadProof.Code() != "invalid_dpop_proof" || UseNonce.Code() != "use_dpop_nonce" || BoundAsBearer.Code() != "invalid_token" {
		t.Errorf("codes: %q %q %q", BadProof.Code(), UseNonce.Code(), BoundAsBearer.Code())
	}
	// An unbound bearer token is unaffected.
	if d := g.Decide(dpopRequest("GET", "/invoices", "Bearer", "user-read"), f); d.Verdict != Allow {
		t.Fatalf("bearer token: %+v", d)
	}
}

// TestDecideDPoPNonce: §9: with nonces on, a proof without the server's
// nonce is refused with use_dpop_nonce and the nonce to use; with it, it
// passes.
func TestDecideDPoPNonce(t *testing.T) {
	g, f, k, c := dpopGuard(t, true)
	d := g.Decide(dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{})), f)
	if d.Reason != UseNonce || d.Nonce == "" || d.Nonce != c.Nonce() {
		t.Fatalf("no nonce: %+v", d)
	}
	if d := g.Decide(dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{Nonce: d.Nonce})), f); d.Verdict != Allow {
		t.Fatalf("with the nonce: %+v", d)
	}
}

// TestDecideDPoPNoChecker: without a checker, a bound token is refused
// (fail closed), never waved through as a bearer token.
func TestDecideDPoPNoChecker(t *testing.T) {
	g, f, k, _ := dpopGuard(t, false)
	g.cfg.DPoP = nil
	if d := g.Decide(dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{})), f); d.Verdict == Allow {
		t.Fatal("bound token allowed without a proof checker")
	}
	_ = strings.TrimSpace
}

// TestDecideDPoPBehindProxy: behind a proxy that terminates TLS, the
// request arrives as http://10.0.0.5:8080 while the client's proof names
// the public origin; with DPoPOrigin set to it the proof passes, a proof
// for any other origin does not.
func TestDecideDPoPBehindProxy(t *testing.T) {
	g, f, k, _ := dpopGuard(t, false)
	g = New(Config{Policy: g.cfg.Policy, Tenancy: g.cfg.Tenancy, DPoP: g.cfg.DPoP, DPoPOrigin: "https://api.example.com"})
	req := func(htu string) *http.Request {
		r := dpopRequest("GET", "/invoices", "DPoP", boundToken, signed(t, k, dpoptest.Proof{URL: htu}))
		r.Host = "10.0.0.5:8080"
		return r
	}
	if d := g.Decide(req("https://api.example.com/invoices"), f); d.Verdict != Allow {
		t.Fatalf("proof for the public origin: %+v", d)
	}
	if d := g.Decide(req("http://10.0.0.5:8080/invoices"), f); d.Verdict != Allow {
		t.Fatalf("proof for the URL the request arrived at: %+v", d)
	}
	for _, htu := range []string{"https://evil.example.com/invoices", "http://api.example.com/invoices", "https://api.example.com/other"} {
		if d := g.Decide(req(htu), f); d.Reason != BadProof {
			t.Errorf("%s: %+v, want BadProof", htu, d)
		}
	}
}
