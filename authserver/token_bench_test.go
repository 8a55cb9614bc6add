package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

const benchIssuer = "http://bench.test"

// benchServer is an authorization server on a real SQLite store with one
// registered confidential client, as the token endpoint runs in Caddy.
func benchServer(b *testing.B, alg string) (s *Server, basic string) {
	b.Helper()
	ctx := context.Background()
	s = openServer(b, Config{Issuer: benchIssuer, Scopes: []Scope{{Name: "read:invoices"}, {Name: "read:contacts"}}}, tokens.Config{Alg: alg})
	id, secret := "bench-client", "ysk_"+strings.Repeat("s", 43)
	now := time.Now()
	if err := s.store.CreateClient(ctx, &tokenstore.Client{
		ID: id, SecretHash: tokens.HashSecret(secret), Name: "Bench", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"read:invoices", "read:contacts"}, Businesses: []string{"biz_bench"}, CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		b.Fatal(err)
	}
	return s, "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// post serves one form POST in-process.
func post(s *Server, path, auth, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", auth)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// BenchmarkTokenClientCredentials is the token endpoint's client_credentials
// grant in-process: form parsing, HTTP Basic client authentication against
// the stored secret hash (the client itself is cached after the first
// request, as in the gateway), minting and the JSON response.
func BenchmarkTokenClientCredentials(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			s, basic := benchServer(b, alg)
			body := "grant_type=client_credentials&scope=" + url.QueryEscape("read:invoices read:contacts")
			b.ReportAllocs()
			for b.Loop() {
				if w := post(s, "/oauth/token", basic, body); w.Code != http.StatusOK {
					b.Fatalf("token endpoint: %d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkIntrospect is RFC 7662 introspection of a cached access token by
// the client it was issued to.
func BenchmarkIntrospect(b *testing.B) {
	s, basic := benchServer(b, "ES256")
	w := post(s, "/oauth/token", basic, "grant_type=client_credentials")
	var tr tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil || tr.AccessToken == "" {
		b.Fatalf("token: %d %s", w.Code, w.Body)
	}
	body := "token=" + tr.AccessToken
	b.ReportAllocs()
	for b.Loop() {
		w := post(s, "/oauth/introspect", basic, body)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"active":true`) {
			b.Fatalf("introspect: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkPassThrough is what oauth_server costs a request that is not
// for it: every proxied request when oauth_server comes first in a site,
// as in the root Caddyfile.
func BenchmarkPassThrough(b *testing.B) {
	s, _ := benchServer(b, "ES256")
	r := httptest.NewRequest("GET", "/api/v1/accounting/invoices", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if s.ServeHTTP(w, r) {
			b.Fatal("served a request that is not an endpoint")
		}
	}
}
