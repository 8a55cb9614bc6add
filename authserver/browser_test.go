package authserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

const testIssuer = "https://auth.example.test"

// openServer is a Server on a fresh SQLite store, its token service
// configured by tc with cfg's issuer and clock. With a fake clock, the
// token service's staleness check is off: the clock jumps past it.
func openServer(tb testing.TB, cfg Config, tc tokens.Config) *Server {
	tb.Helper()
	if cfg.Clock != nil {
		tc.Clock, tc.MaxStaleness = cfg.Clock, -1
	}
	st, err := tokenstore.Open(context.Background(), tokenstore.Config{Driver: "sqlite", DSN: filepath.Join(tb.TempDir(), "og.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	tc.Issuer = cfg.Issuer
	ts, err := tokens.New(context.Background(), st, tc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ts.Close() })
	s, err := New(cfg, st, ts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// newTestServer is a Server on a real SQLite store with one confidential
// client and one user.
func newTestServer(t *testing.T, cfg Config) (*Server, *tokenstore.Client) {
	t.Helper()
	client := &tokenstore.Client{ID: "app", SecretHash: tokens.HashSecret("app-secret"), Name: "App",
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"read:invoices"},
		RedirectURIs: []string{"https://app.example/cb"}}
	cfg.Issuer = testIssuer
	s := openServer(t, cfg, tokens.Config{StaticClients: []*tokenstore.Client{client}})
	if err := s.EnsureUser(context.Background(), UserSpec{Email: "u@example.com", Password: "long-password",
		Businesses: []BusinessSpec{{ID: "b1", Name: "B One"}}}); err != nil {
		t.Fatal(err)
	}
	return s, client
}

// TestCodeExpires: a code older than CodeTTL is refused as invalid_grant.
// (The e2e tests cover every other code rule against the binary; waiting
// out the 10-minute default there is not practical.)
func TestCodeExpires(t *testing.T) {
	clock := newFakeClock()
	s, client := newTestServer(t, Config{Clock: clock.Now})
	ctx := context.Background()
	u, err := s.store.GetUserByEmail(ctx, "u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	acct := &account{ID: u.ID, AuthTime: clock.Now()}
	mint := func() string {
		rec := httptest.NewRecorder()
		s.issueCode(rec, ctx, &authzRequest{client: client, redirectURI: "https://app.example/cb", redirectSent: true,
			scopes: []string{"read:invoices"}, state: "s"}, acct, "b1")
		loc, _ := url.Parse(rec.Header().Get("Location"))
		if rec.Code != http.StatusSeeOther || loc.Query().Get("code") == "" {
			t.Fatalf("issueCode: %d %s", rec.Code, rec.Header().Get("Location"))
		}
		return loc.Query().Get("code")
	}
	exchange := func(code string) (int, map[string]any) {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"},
			"client_id": {"app"}, "client_secret": {"app-secret"}}
		req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		return rec.Code, m
	}
	// The store judges expiry when it consumes the code, so the stale code
	// is minted in the past: one default CodeTTL and a second ago.
	fresh := mint()
	clock.Advance(-(10*time.Minute + time.Second))
	stale := mint()
	clock.Advance(10*time.Minute + time.Second)
	if st, m := exchange(fresh); st != 200 || m["access_token"] == nil {
		t.Fatalf("fresh code: %d %v", st, m)
	}
	if st, m := exchange(stale); st != 400 || m["error"] != "invalid_grant" {
		t.Errorf("expired code: %d %v", st, m)
	}
}

func TestValidS256Challenge(t *testing.T) {
	for _, tc := range []struct {
		c  string
		ok bool
	}{
		{"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", true},
		{"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c", false},   // 42
		{"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cMM", false}, // 44
		{"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", false},  // not base64url
		{"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw=cM", false},
	} {
		if got := validS256Challenge(tc.c); got != tc.ok {
			t.Errorf("validS256Challenge(%q) = %v", tc.c, got)
		}
	}
	// RFC 7636 Appendix B.
	if !pkceMatches("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") {
		t.Error("RFC 7636 example does not verify")
	}
}

func TestReturnTarget(t *testing.T) {
	s, _ := newTestServer(t, Config{BasePath: "/api/v1/oauth/"})
	for _, tc := range []struct {
		rt string
		ok bool
	}{
		{"/api/v1/oauth/authorize?client_id=app&state=x", true},
		{"/api/v1/oauth/authorize", false},
		{"/api/v1/oauth/authorizex?client_id=app", false},
		{"https://evil.example/api/v1/oauth/authorize?x=1", false},
		{"//evil.example/api/v1/oauth/authorize?x=1", false},
		{"/api/v1/oauth/authorize?x=1#frag", false},
		{"/api/v1/oauth/authorize?x=1\r\nSet-Cookie: a=b", false},
		{"/api/v1/oauth/token?x=1", false},
		// The self-service pages, exactly.
		{"/api/v1/oauth/account", true},
		{"/api/v1/oauth/account?x=1", false},
		{"/api/v1/oauth/accounts", false},
		{"https://evil.example/api/v1/oauth/account", false},
		{"", false},
	} {
		if _, ok := s.returnTarget(tc.rt); ok != tc.ok {
			t.Errorf("returnTarget(%q) = %v", tc.rt, ok)
		}
	}
}

func TestRedirectResponse(t *testing.T) {
	s, _ := newTestServer(t, Config{})
	for _, tc := range []struct{ uri, want string }{
		{"https://app.example/cb", "https://app.example/cb?code=c&iss=https%3A%2F%2Fauth.example.test&state=s+1"},
		{"https://app.example/cb?tenant=7", "https://app.example/cb?tenant=7&code=c&iss=https%3A%2F%2Fauth.example.test&state=s+1"},
		{"https://app.example/cb?", "https://app.example/cb?code=c&iss=https%3A%2F%2Fauth.example.test&state=s+1"},
		{"com.example.app:/oauth", "com.example.app:/oauth?code=c&iss=https%3A%2F%2Fauth.example.test&state=s+1"},
	} {
		rec := httptest.NewRecorder()
		s.redirectResponse(rec, tc.uri, "s 1", url.Values{"code": {"c"}})
		if got := rec.Header().Get("Location"); got != tc.want || rec.Code != http.StatusSeeOther {
			t.Errorf("%s: %d %s, want %s", tc.uri, rec.Code, got, tc.want)
		}
		if rec.Header().Get("Referrer-Policy") != "no-referrer" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", tc.uri, rec.Header())
		}
	}
}

func TestCSRFTokenBinding(t *testing.T) {
	a := csrfToken("secret-1", csrfConsent, "sid-1")
	for name, other := range map[string]string{
		"another secret":  csrfToken("secret-2", csrfConsent, "sid-1"),
		"another sign-in": csrfToken("secret-1", csrfConsent, "sid-2"),
		"another form":    csrfToken("secret-1", csrfSignIn, "sid-1"),
		"shifted fields":  csrfToken("secret-1", csrfConsent+"\x00sid", "-1"),
	} {
		if other == a {
			t.Errorf("%s gives the same token", name)
		}
	}
	if csrfToken("secret-1", csrfConsent, "sid-1") != a {
		t.Error("not deterministic")
	}
}

func TestSessionCookie(t *testing.T) {
	s, _ := newTestServer(t, Config{SessionTTL: time.Hour})
	rec := httptest.NewRecorder()
	if err := s.startSession(rec, "usr_1", time.Unix(1_700_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	// https issuer: Secure, prefixed, HttpOnly, Lax, scoped to the endpoints.
	if c.Name != "__Secure-oauthgate_session" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/oauth" || c.MaxAge != 3600 {
		t.Errorf("session cookie %+v", c)
	}
	req := httptest.NewRequest("GET", "/oauth/authorize", nil)
	req.AddCookie(c)
	if d := s.session(req); d == nil || d.Subject != "usr_1" || d.AuthTime != 1_700_000_000 || d.SID == "" {
		t.Errorf("session = %+v", d)
	}
	forged := httptest.NewRequest("GET", "/oauth/authorize", nil)
	forged.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value[:len(c.Value)-2] + "AA"})
	if s.session(forged) != nil {
		t.Error("a forged session cookie was accepted")
	}
	// A pending consent request is no session, nor the other way round.
	var p pending
	if s.tokens.VerifyInternal(c.Value, pendingTyp, &p) == nil {
		t.Error("a session cookie passes as a consent request")
	}
}

func TestPasswords(t *testing.T) {
	h, err := hashPassword("correct horse")
	if err != nil || !strings.HasPrefix(h, "$2a$12$") {
		t.Fatalf("hashPassword = %q, %v", h, err)
	}
	if !checkPassword(h, "correct horse") || checkPassword(h, "correct horsE") {
		t.Error("checkPassword disagrees")
	}
	long := strings.Repeat("p", 72)
	hl, err := hashPassword(long)
	if err != nil {
		t.Fatal(err)
	}
	if checkPassword(hl, long+"extra") {
		t.Error("bytes past the 72nd were ignored")
	}
	if _, err := hashPassword(long + "x"); err == nil {
		t.Error("a 73-byte password was accepted")
	}
	if _, err := hashPassword("short"); err == nil {
		t.Error("a 5-character password was accepted")
	}
}

func TestInitials(t *testing.T) {
	for in, want := range map[string]string{"Demo User": "DU", "ledgerly": "L", "Ana María Pérez": "AM", "  ": "?", "(Beta) App": "BA", "élan vital": "ÉV"} {
		if got := initials(in); got != want {
			t.Errorf("initials(%q) = %q, want %q", in, got, want)
		}
	}
}
