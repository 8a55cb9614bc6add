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

// logoutFixture is a server with two clients that registered post-logout
// redirect URIs, a signed-in browser and id_tokens to hint with.
type logoutFixture struct {
	s           *Server
	userID      string
	session     *http.Cookie
	csrf        *http.Cookie
	hint        string // id_token for app about the user
	otherHint   string // id_token for app about someone else
	expiredHint string
}

const testCSRFSecret = "csrf-secret-csrf-secret-csrf-secret-csrf-secret"

func newLogoutFixture(t *testing.T) *logoutFixture {
	t.Helper()
	app := &tokenstore.Client{ID: "app", SecretHash: tokens.HashSecret("app-secret"), Name: "App",
		GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://app.example/cb"},
		PostLogoutRedirectURIs: []string{"https://app.example/bye", "https://app.example/bye?from=og"}}
	other := &tokenstore.Client{ID: "other", SecretHash: tokens.HashSecret("other-secret"), Name: "Other",
		GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://other.example/cb"},
		PostLogoutRedirectURIs: []string{"https://other.example/bye"}}
	s := openServer(t, Config{Issuer: testIssuer}, tokens.Config{StaticClients: []*tokenstore.Client{app, other}, IDTokenTTL: time.Second})
	ctx := context.Background()
	if err := s.EnsureUser(ctx, UserSpec{Email: "u@example.com", Password: "long-password", Businesses: []BusinessSpec{{ID: "b1", Name: "B One"}}}); err != nil {
		t.Fatal(err)
	}
	u, err := s.store.GetUserByEmail(ctx, "u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	f := &logoutFixture{s: s, userID: u.ID}
	rec := httptest.NewRecorder()
	if err := s.startSession(rec, u.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.session = rec.Result().Cookies()[0]
	f.csrf = &http.Cookie{Name: s.cookieName(csrfCookie), Value: testCSRFSecret}
	mintID := func(sub string) string {
		raw, err := s.tokens.MintIDToken(tokens.IDToken{Subject: sub, ClientID: "app"})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	f.expiredHint = mintID(u.ID)
	f.hint = mintID(u.ID)
	f.otherHint = mintID("usr_someone_else")
	return f
}

// do sends a sign-out request from the signed-in browser (or a signed-out
// one); POST sends params as a form.
func (f *logoutFixture) do(method string, params url.Values, signedIn bool) *httptest.ResponseRecorder {
	var req *http.Request
	if method == http.MethodGet {
		req = httptest.NewRequest(method, "/oauth/sign-out?"+params.Encode(), nil)
	} else {
		req = httptest.NewRequest(method, "/oauth/sign-out", strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.AddCookie(f.csrf)
	if signedIn {
		req.AddCookie(f.session)
	}
	rec := httptest.NewRecorder()
	if !f.s.ServeHTTP(rec, req) {
		panic("sign-out not served")
	}
	return rec
}

// signedOut reports whether the answer clears the session cookie.
func signedOut(rec *httptest.ResponseRecorder) bool {
	for _, c := range rec.Result().Cookies() {
		if strings.HasSuffix(c.Name, sessionCookie) && c.MaxAge < 0 && c.Value == "" {
			return true
		}
	}
	return false
}

// TestSignOutRejections: RP-Initiated Logout 1.0 requests that are wrong in
// any way show an error page; nobody is signed out and nobody is
// redirected.
func TestSignOutRejections(t *testing.T) {
	f := newLogoutFixture(t)
	tampered := f.hint[:len(f.hint)-10] + flipChar(f.hint[len(f.hint)-10:len(f.hint)-9]) + f.hint[len(f.hint)-9:]
	access, _, err := f.s.tokens.MintAccess(tokens.Access{Subject: f.userID, ClientID: "app", GrantID: "g1", Scopes: []string{"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	session := f.session.Value
	cases := []struct {
		name   string
		params url.Values
		want   string
	}{
		{"unregistered URI", url.Values{"id_token_hint": {f.hint}, "post_logout_redirect_uri": {"https://evil.example/bye"}}, "not registered"},
		{"URI of another client", url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"https://other.example/bye"}}, "not registered"},
		{"URI with a trailing slash", url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"https://app.example/bye/"}}, "not registered"},
		{"URI in another case", url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"https://APP.example/bye"}}, "not registered"},
		{"URI with an extra query", url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"https://app.example/bye?x=1"}}, "not registered"},
		{"URI registered as a login redirect only", url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"https://app.example/cb"}}, "not registered"},
		{"URI without hint or client_id", url.Values{"post_logout_redirect_uri": {"https://app.example/bye"}}, "needs an id_token_hint or a client_id"},
		{"client_id not the hint's audience", url.Values{"id_token_hint": {f.hint}, "client_id": {"other"}, "post_logout_redirect_uri": {"https://other.example/bye"}}, "not the one the id_token_hint was issued to"},
		{"unknown client", url.Values{"client_id": {"nobody"}}, "not registered"},
		{"tampered hint", url.Values{"id_token_hint": {tampered}, "post_logout_redirect_uri": {"https://app.example/bye"}}, "not issued here"},
		{"hint that is not a JWT", url.Values{"id_token_hint": {"not-a-token"}}, "not issued here"},
		{"access token as hint", url.Values{"id_token_hint": {access}}, "not issued here"},
		{"session token as hint", url.Values{"id_token_hint": {session}}, "not issued here"},
		{"repeated parameter", url.Values{"client_id": {"app", "app"}}, "repeats client_id"},
		{"state too long", url.Values{"client_id": {"app"}, "state": {strings.Repeat("s", maxStateLen+1)}}, "state is too long"},
	}
	for _, tc := range cases {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				rec := f.do(method, tc.params, true)
				if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" || signedOut(rec) {
					t.Fatalf("%d Location=%q signedOut=%v; want 400, no redirect, still signed in", rec.Code, rec.Header().Get("Location"), signedOut(rec))
				}
				if !strings.Contains(rec.Body.String(), tc.want) {
					t.Errorf("page does not say %q:\n%s", tc.want, rec.Body.String())
				}
			})
		}
	}
}

// TestSignOut: the ways a sign-out succeeds, and when it asks first.
func TestSignOut(t *testing.T) {
	f := newLogoutFixture(t)
	time.Sleep(1100 * time.Millisecond) // f.expiredHint (1s id_token TTL) has expired

	t.Run("hint and registered URI: out and back with state", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			rec := f.do(method, url.Values{"id_token_hint": {f.hint}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"st 1"}}, true)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://app.example/bye?state=st+1" || !signedOut(rec) {
				t.Errorf("%s: %d %q signedOut=%v", method, rec.Code, rec.Header().Get("Location"), signedOut(rec))
			}
		}
	})
	t.Run("expired but genuine hint", func(t *testing.T) {
		rec := f.do(http.MethodGet, url.Values{"id_token_hint": {f.expiredHint}, "client_id": {"app"}, "post_logout_redirect_uri": {"https://app.example/bye?from=og"}}, true)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://app.example/bye?from=og" || !signedOut(rec) {
			t.Errorf("%d %q signedOut=%v", rec.Code, rec.Header().Get("Location"), signedOut(rec))
		}
	})
	t.Run("hint without URI: the signed-out page", func(t *testing.T) {
		rec := f.do(http.MethodGet, url.Values{"id_token_hint": {f.hint}, "state": {"x"}}, true)
		if rec.Code != http.StatusOK || rec.Header().Get("Location") != "" || !signedOut(rec) || !strings.Contains(rec.Body.String(), "You are signed out") {
			t.Errorf("%d %q signedOut=%v\n%s", rec.Code, rec.Header().Get("Location"), signedOut(rec), rec.Body.String())
		}
	})

	confirm := func(t *testing.T, params url.Values) form {
		t.Helper()
		rec := f.do(http.MethodGet, params, true)
		if rec.Code != http.StatusOK || signedOut(rec) || !strings.Contains(rec.Body.String(), "Sign out of oauthgate?") {
			t.Fatalf("want the question: %d signedOut=%v\n%s", rec.Code, signedOut(rec), rec.Body.String())
		}
		return hiddenFields(rec.Body.String())
	}
	t.Run("no hint: asks, then signs out and redirects", func(t *testing.T) {
		fields := confirm(t, url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s2"}})
		if fields.Get("csrf_token") == "" || fields.Get("post_logout_redirect_uri") != "https://app.example/bye" || fields.Get("state") != "s2" {
			t.Fatalf("confirmation form fields: %v", fields)
		}
		rec := f.do(http.MethodPost, url.Values(fields), true)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://app.example/bye?state=s2" || !signedOut(rec) {
			t.Errorf("confirmed: %d %q signedOut=%v", rec.Code, rec.Header().Get("Location"), signedOut(rec))
		}
	})
	t.Run("hint for another user: asks", func(t *testing.T) {
		confirm(t, url.Values{"id_token_hint": {f.otherHint}, "post_logout_redirect_uri": {"https://app.example/bye"}})
	})
	t.Run("confirmation with a wrong CSRF token", func(t *testing.T) {
		fields := confirm(t, url.Values{"client_id": {"app"}})
		for name, tok := range map[string]string{"missing": "", "wrong": flipChar(fields.Get("csrf_token")[:1]) + fields.Get("csrf_token")[1:],
			"another session's": csrfToken(testCSRFSecret, csrfSignOut, "another-sid"), "another form's": csrfToken(testCSRFSecret, csrfConsent, "")} {
			v := url.Values(fields)
			v.Set("csrf_token", tok)
			if rec := f.do(http.MethodPost, v, true); rec.Code != http.StatusForbidden || signedOut(rec) {
				t.Errorf("%s token: %d signedOut=%v", name, rec.Code, signedOut(rec))
			}
		}
	})
	t.Run("the footer's form: the signed-out page", func(t *testing.T) {
		fields := confirm(t, url.Values{})
		rec := f.do(http.MethodPost, url.Values{"csrf_token": {fields.Get("csrf_token")}}, true)
		if rec.Code != http.StatusOK || !signedOut(rec) || !strings.Contains(rec.Body.String(), "You are signed out") {
			t.Errorf("%d signedOut=%v", rec.Code, signedOut(rec))
		}
	})
	t.Run("not signed in: nothing to ask, still redirected", func(t *testing.T) {
		rec := f.do(http.MethodGet, url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s3"}}, false)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://app.example/bye?state=s3" {
			t.Errorf("%d %q", rec.Code, rec.Header().Get("Location"))
		}
	})
	t.Run("POST without the session cookie: the same request as GET", func(t *testing.T) {
		// A cross-site POST carries no SameSite=Lax cookie; clearing it
		// blind would let any site sign the user out.
		for _, params := range []url.Values{
			{"csrf_token": {"forged"}},
			{"client_id": {"app"}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s4"}},
			{"id_token_hint": {f.hint}, "post_logout_redirect_uri": {"https://app.example/bye"}},
		} {
			rec := f.do(http.MethodPost, params, false)
			loc, _ := url.Parse(rec.Header().Get("Location"))
			if rec.Code != http.StatusSeeOther || signedOut(rec) || loc == nil || loc.Path != "/oauth/sign-out" || loc.Host != "" {
				t.Fatalf("%v: %d %q signedOut=%v", params, rec.Code, rec.Header().Get("Location"), signedOut(rec))
			}
			want := url.Values{}
			for k, v := range params {
				if k != "csrf_token" {
					want[k] = v
				}
			}
			if loc.Query().Encode() != want.Encode() {
				t.Errorf("GET parameters %v, want %v", loc.Query(), want)
			}
			// That GET, which carries the cookie, asks or proceeds as
			// any GET does.
			if params.Has("id_token_hint") {
				if rec := f.do(http.MethodGet, loc.Query(), true); rec.Code != http.StatusSeeOther || !signedOut(rec) {
					t.Errorf("GET with the hint: %d", rec.Code)
				}
			} else if rec := f.do(http.MethodGet, loc.Query(), true); rec.Code != http.StatusOK || signedOut(rec) || !strings.Contains(rec.Body.String(), "Sign out of oauthgate?") {
				t.Errorf("GET without a hint: %d signedOut=%v", rec.Code, signedOut(rec))
			}
		}
	})
	t.Run("other methods", func(t *testing.T) {
		if rec := f.do(http.MethodPut, url.Values{}, true); rec.Code != http.StatusMethodNotAllowed || signedOut(rec) {
			t.Errorf("PUT: %d", rec.Code)
		}
	})
}

// TestEndSessionEndpointAdvertised: both discovery documents name the
// end_session_endpoint.
func TestEndSessionEndpointAdvertised(t *testing.T) {
	f := newLogoutFixture(t)
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		rec := httptest.NewRecorder()
		f.s.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		var md map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &md); err != nil {
			t.Fatal(err)
		}
		if md["end_session_endpoint"] != testIssuer+"/oauth/sign-out" {
			t.Errorf("%s: end_session_endpoint = %v", p, md["end_session_endpoint"])
		}
	}

	// Delegated identity: the platform owns the sign-in, so oauthgate
	// neither advertises nor serves a sign-out it cannot perform.
	d := openServer(t, Config{Issuer: testIssuer, Delegated: &DelegatedIdentity{SessionURL: "https://platform.example/session",
		SignInURL: "https://platform.example/sign-in"}}, tokens.Config{})
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/openid-configuration", nil))
	if strings.Contains(rec.Body.String(), "end_session_endpoint") {
		t.Errorf("delegated identity advertises end_session_endpoint:\n%s", rec.Body.String())
	}
	if d.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/oauth/sign-out", nil)) {
		t.Error("delegated identity serves /oauth/sign-out")
	}
}

// form is a page's hidden fields.
type form = url.Values

func hiddenFields(body string) form {
	out := url.Values{}
	for _, m := range strings.Split(body, "<input ")[1:] {
		tag := m[:strings.IndexByte(m, '>')]
		if !strings.Contains(tag, `type="hidden"`) {
			continue
		}
		out.Set(attr(tag, "name"), attr(tag, "value"))
	}
	return out
}

func attr(tag, name string) string {
	_, rest, ok := strings.Cut(tag, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	r := strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">")
	return r.Replace(v)
}

func flipChar(s string) string {
	if s == "A" {
		return "B"
	}
	return "A"
}
