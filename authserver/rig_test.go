package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// rig is a Server on a real SQLite store with a fake clock and one client of
// each kind the protocol rules tell apart, for httptest unit tests.
type rig struct {
	t     *testing.T
	s     *Server
	clock *fakeClock
	user  *tokenstore.User
}

const (
	rigRedirect = "https://app.example/cb"
	// rigVerifier is RFC 7636 Appendix B's verifier; rigChallenge its S256.
	rigVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rigChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// rigClients: "app" is confidential (code + refresh), "spa" public with
// PKCE, "svc" a client-credentials service, "multi" has two redirect URIs,
// "first" is first-party, "bare" has no scopes, "cconly" only
// client_credentials.
func rigClients() []*tokenstore.Client {
	return []*tokenstore.Client{
		{ID: "app", SecretHash: tokens.HashSecret("app-secret"), Name: "App",
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "read:invoices", "write:invoices"},
			RedirectURIs: []string{rigRedirect}},
		{ID: "spa", Name: "SPA", Public: true, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes: []string{"read:invoices"}, RedirectURIs: []string{rigRedirect}},
		{ID: "svc", SecretHash: tokens.HashSecret("svc-secret"), Name: "Service",
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"read:invoices", "write:invoices"}},
		{ID: "multi", SecretHash: tokens.HashSecret("multi-secret"), Name: "Multi", GrantTypes: []string{"authorization_code"},
			Scopes: []string{"read:invoices"}, RedirectURIs: []string{rigRedirect, "https://app.example/other"}},
		{ID: "first", SecretHash: tokens.HashSecret("first-secret"), Name: "First", FirstParty: true,
			GrantTypes: []string{"authorization_code"}, Scopes: []string{"read:invoices"}, RedirectURIs: []string{rigRedirect}},
		{ID: "bare", SecretHash: tokens.HashSecret("bare-secret"), Name: "Bare", GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{rigRedirect}},
		{ID: "cconly", SecretHash: tokens.HashSecret("cconly-secret"), Name: "CC only",
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"read:invoices"}, RedirectURIs: []string{rigRedirect}},
	}
}

// rigPassword's hash is made at bcrypt's minimum cost, once: the rules
// tested here are not about hashing speed.
const rigPassword = "long-password"

var rigPasswordHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(rigPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	clock := newFakeClock()
	cfg.Issuer, cfg.Clock = testIssuer, clock.Now
	s := openServer(t, cfg, tokens.Config{StaticClients: rigClients(), Resources: cfg.Resources})
	ctx := context.Background()
	if err := s.EnsureUser(ctx, UserSpec{Email: "u@example.com", PasswordHash: rigPasswordHash(), Name: "U",
		Businesses: []BusinessSpec{{ID: "b1", Name: "B One"}, {ID: "b2", Name: "B Two"}}}); err != nil {
		t.Fatal(err)
	}
	u, err := s.store.GetUserByEmail(ctx, "u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, s: s, clock: clock, user: u}
}

// response is a recorded answer with its JSON body decoded.
type response struct {
	*httptest.ResponseRecorder
	body map[string]any
}

func (r *rig) do(req *http.Request) response {
	r.t.Helper()
	rec := httptest.NewRecorder()
	if !r.s.ServeHTTP(rec, req) {
		r.t.Fatalf("%s %s: not served", req.Method, req.URL)
	}
	resp := response{ResponseRecorder: rec}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &resp.body); err != nil {
			r.t.Fatalf("%s %s: body %q: %v", req.Method, req.URL, rec.Body, err)
		}
	}
	return resp
}

// postForm posts form to path; basic, when not empty, is "id:secret" sent
// as HTTP Basic.
func (r *rig) postForm(path string, form url.Values, basic string) response {
	r.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(basic)))
	}
	return r.do(req)
}

func (r *rig) token(form url.Values, basic string) response {
	r.t.Helper()
	return r.postForm("/oauth/token", form, basic)
}

// code mints an authorization code for client the way /authorize does, for
// the rig's user and business b1.
func (r *rig) code(client string, scopes []string, challenge string, redirectSent bool) string {
	r.t.Helper()
	c, err := r.s.tokens.Client(context.Background(), client)
	if err != nil {
		r.t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.s.issueCode(rec, context.Background(), &authzRequest{client: c, redirectURI: rigRedirect, redirectSent: redirectSent,
		scopes: scopes, state: "s", challenge: challenge, nonce: "n-1"}, &account{ID: r.user.ID, AuthTime: r.clock.Now()}, "b1")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || loc.Query().Get("code") == "" {
		r.t.Fatalf("issueCode: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	return loc.Query().Get("code")
}

// exchange trades a code of "app" for tokens.
func (r *rig) exchange(code string) response {
	r.t.Helper()
	return r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rigRedirect}}, "app:app-secret")
}

// signIn returns the cookie of a session of the rig's user that started at
// the clock's now.
func (r *rig) signIn() *http.Cookie {
	r.t.Helper()
	rec := httptest.NewRecorder()
	if err := r.s.startSession(rec, r.user.ID, r.clock.Now()); err != nil {
		r.t.Fatal(err)
	}
	return rec.Result().Cookies()[0]
}

// get sends a GET of target with the cookies.
func (r *rig) get(target string, cookies ...*http.Cookie) response {
	r.t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return r.do(req)
}

// location parses the Location header of a redirect.
func (resp response) location(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(resp.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// errorCode is the OAuth error of a JSON answer.
func (resp response) errorCode() string {
	s, _ := resp.body["error"].(string)
	return s
}
