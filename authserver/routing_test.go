package authserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oauthgate/oauthgate/tokens"
)

// TestRouting: which paths the server answers, with an issuer that has a
// path of its own and a custom base path, trailing slashes included; and
// that everything else is passed on untouched.
func TestRouting(t *testing.T) {
	const issuer = "https://auth.example.test/tenant-a"
	s := openServer(t, Config{Issuer: issuer, BasePath: "/api/v1/oauth/"}, tokens.Config{})
	cases := []struct {
		method, path string
		handled      bool
		status       int
	}{
		{"GET", "/.well-known/openid-configuration", true, 200},
		{"GET", "/.well-known/oauth-authorization-server", true, 200},
		{"GET", "/tenant-a/.well-known/openid-configuration", true, 200},
		// RFC 8414 §3.1 path insertion, and its OIDC form (the MCP spec's
		// discovery order tries both before the appended one).
		{"GET", "/.well-known/oauth-authorization-server/tenant-a", true, 200},
		{"GET", "/.well-known/openid-configuration/tenant-a", true, 200},
		{"GET", "/.well-known/oauth-authorization-server/tenant-b", false, 0},
		{"GET", "/.well-known/jwks.json", true, 200},
		{"GET", "/api/v1/oauth/jwks", true, 200},
		{"GET", "/api/v1/oauth/jwks/", true, 200},
		{"GET", "/api/v1/oauth/token", true, 405},
		{"POST", "/api/v1/oauth/token/", true, 400},
		{"POST", "/api/v1/oauth/revoke", true, 400},
		{"POST", "/api/v1/oauth/introspect", true, 400},
		{"GET", "/api/v1/oauth/authorize", true, 400},
		{"GET", "/api/v1/accounting/invoices", false, 0},
		{"GET", "/api/v1/oauthx/token", false, 0},
		{"GET", "/oauth/token", false, 0},
		{"GET", "/tenant-a/other", false, 0},
		{"GET", "/.well-known/other", false, 0},
		{"GET", "/", false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if got := s.ServeHTTP(w, r); got != tc.handled {
				t.Fatalf("handled = %v, want %v", got, tc.handled)
			}
			if tc.handled && w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			if !tc.handled && (w.Code != http.StatusOK || w.Body.Len() != 0 || len(w.Header()) != 0) {
				t.Errorf("a request passed on was written to: %d %q", w.Code, w.Body.String())
			}
		})
	}
}
