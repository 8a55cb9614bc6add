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

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// ccServer is a Server with one confidential client-credentials client
// registered for API scopes and OpenID scopes alike.
func ccServer(t *testing.T) *Server {
	t.Helper()
	client := &tokenstore.Client{ID: "svc", SecretHash: tokens.HashSecret("svc-secret"), Name: "Service",
		GrantTypes:   []string{"client_credentials", "authorization_code", "refresh_token"},
		Scopes:       []string{"openid", "read:invoices", "profile", "offline_access", "write:invoices", "email"},
		RedirectURIs: []string{"https://app.example/cb"}, Businesses: []string{"b1"}}
	return openServer(t, Config{Issuer: testIssuer, Scopes: []Scope{{Name: "read:invoices"}, {Name: "write:invoices"}}},
		tokens.Config{StaticClients: []*tokenstore.Client{client}})
}

// postToken serves one form POST authenticated as svc and decodes the JSON
// answer.
func postToken(t *testing.T, s *Server, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("client_id", "svc")
	form.Set("client_secret", "svc-secret")
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: %d %q is not JSON", path, rec.Code, rec.Body)
	}
	return rec.Code, m
}

// TestClientCredentialsScopes: RFC 6749 §4.4 issues a token to the client
// itself, with no user, so the OpenID scopes (OIDC Core §3.1.2.1, §5.4,
// §11) mean nothing there. Without a scope parameter the client gets its
// API scopes only; asking for an OpenID scope is invalid_scope.
func TestClientCredentialsScopes(t *testing.T) {
	s := ccServer(t)
	for _, tc := range []struct {
		name, scope string
		status      int
		want        string // granted scope, or the error code
	}{
		{"no scope: the API scopes registered, no OpenID scope", "", 200, "read:invoices write:invoices"},
		{"a blank scope is no scope", "  ", 200, "read:invoices write:invoices"},
		{"an API scope", "write:invoices", 200, "write:invoices"},
		{"openid has no meaning without a user", "openid", 400, "invalid_scope"},
		{"nor with an API scope", "read:invoices openid", 400, "invalid_scope"},
		{"offline_access: client_credentials gets no refresh token", "offline_access", 400, "invalid_scope"},
		{"profile", "profile read:invoices", 400, "invalid_scope"},
		{"email", "email", 400, "invalid_scope"},
		{"a scope beyond the client's", "admin", 400, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}}
			if tc.scope != "" {
				form.Set("scope", tc.scope)
			}
			st, m := postToken(t, s, "/oauth/token", form)
			if st != tc.status {
				t.Fatalf("status %d, want %d: scope %v, error %v", st, tc.status, m["scope"], m["error"])
			}
			if st != 200 {
				if m["error"] != tc.want || m["access_token"] != nil {
					t.Errorf("answer %v, want error %s", m, tc.want)
				}
				return
			}
			if m["scope"] != tc.want || m["refresh_token"] != nil || m["id_token"] != nil {
				t.Errorf("scope %v, refresh_token %t, id_token %t: want scope %q and neither token", m["scope"], m["refresh_token"] != nil, m["id_token"] != nil, tc.want)
			}
			claims, err := s.tokens.Verify(m["access_token"].(string))
			if err != nil || claims.Scope != tc.want {
				t.Errorf("token scope %q (%v), want %q", claims.Scope, err, tc.want)
			}
		})
	}
}

// TestIntrospectionTokenType: RFC 7662 §2.2's token_type is "the type of
// the token as defined in Section 5.1 of OAuth 2.0": Bearer for an access
// token. A refresh token has no such type, so it has no token_type.
func TestIntrospectionTokenType(t *testing.T) {
	s := ccServer(t)
	_, tok := postToken(t, s, "/oauth/token", url.Values{"grant_type": {"client_credentials"}})
	access, _ := tok["access_token"].(string)
	st, m := postToken(t, s, "/oauth/introspect", url.Values{"token": {access}})
	if st != 200 || m["active"] != true || m["token_type"] != "Bearer" {
		t.Errorf("access token: %d %v, want active with token_type Bearer", st, m)
	}

	ctx := context.Background()
	if err := s.EnsureUser(ctx, UserSpec{Email: "u@example.com", Password: "long-password",
		Businesses: []BusinessSpec{{ID: "b1"}}}); err != nil {
		t.Fatal(err)
	}
	u, err := s.store.GetUserByEmail(ctx, "u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.tokens.Client(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.issueCode(rec, ctx, &authzRequest{client: c, redirectURI: "https://app.example/cb", redirectSent: true,
		scopes: []string{"read:invoices", "offline_access"}, state: "s"}, &account{ID: u.ID, AuthTime: time.Now()}, "b1")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	st, tok = postToken(t, s, "/oauth/token", url.Values{"grant_type": {"authorization_code"},
		"code": {loc.Query().Get("code")}, "redirect_uri": {"https://app.example/cb"}})
	refresh, _ := tok["refresh_token"].(string)
	if st != 200 || refresh == "" {
		t.Fatalf("code exchange: %d %v", st, tok)
	}
	st, m = postToken(t, s, "/oauth/introspect", url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}})
	if _, has := m["token_type"]; st != 200 || m["active"] != true || has {
		t.Errorf("refresh token: %d %v, want active without token_type", st, m)
	}
	if st != http.StatusOK {
		t.Fatal(st)
	}
}
