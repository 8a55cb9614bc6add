package authserver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// userTokens runs a code exchange of "app" with scopes and returns the
// access and refresh tokens.
func (r *rig) userTokens(scopes ...string) (access, refresh string) {
	r.t.Helper()
	resp := r.exchange(r.code("app", scopes, "", true))
	if resp.Code != 200 {
		r.t.Fatalf("exchange: %d %v", resp.Code, resp.body)
	}
	return resp.body["access_token"].(string), resp.body["refresh_token"].(string)
}

// TestIntrospection: RFC 7662 §2.2: a client reads its own tokens, active or
// not; another client's tokens and anything unknown are just inactive.
func TestIntrospection(t *testing.T) {
	r := newRig(t, Config{})
	access, refresh := r.userTokens("read:invoices")
	introspect := func(basic, token, hint string) response {
		f := url.Values{"token": {token}}
		if hint != "" {
			f.Set("token_type_hint", hint)
		}
		return r.postForm("/oauth/introspect", f, basic)
	}
	for _, tc := range []struct {
		rule, basic, token, hint string
		active                   bool
	}{
		{"an access token of the caller is active", "app:app-secret", access, "", true},
		{"a refresh token of the caller is active", "app:app-secret", refresh, "refresh_token", true},
		{"a refresh token without the hint is found too", "app:app-secret", refresh, "", true},
		{"a first-party client reads any token", "first:first-secret", access, "", true},
		{"another client's token is inactive", "svc:svc-secret", access, "", false},
		{"another client's refresh token is inactive", "svc:svc-secret", refresh, "refresh_token", false},
		{"an unknown token is inactive", "app:app-secret", "nope", "", false},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			resp := introspect(tc.basic, tc.token, tc.hint)
			if resp.Code != 200 || resp.body["active"] != tc.active {
				t.Fatalf("%d %v, want active=%v", resp.Code, resp.body, tc.active)
			}
			if tc.active && (resp.body["client_id"] != "app" || resp.body["iss"] != testIssuer || resp.body["scope"] != "read:invoices") {
				t.Errorf("body %v", resp.body)
			}
			if !tc.active && len(resp.body) != 1 {
				t.Errorf("an inactive answer says more than active=false: %v", resp.body)
			}
		})
	}
	r.t = t
	if resp := introspect("", access, ""); resp.errorCode() != "invalid_client" {
		t.Errorf("§2.1: introspection needs client authentication: %d %v", resp.Code, resp.body)
	}
	if resp := introspect("app:app-secret", "", ""); resp.errorCode() != "invalid_request" {
		t.Errorf("token is required: %d %v", resp.Code, resp.body)
	}
}

// TestRevocation: RFC 7009: revoking either token ends the grant; another
// client's token is left alone but answered 200 like an unknown one.
func TestRevocation(t *testing.T) {
	r := newRig(t, Config{})
	revoke := func(basic, token, hint string) response {
		f := url.Values{"token": {token}}
		if hint != "" {
			f.Set("token_type_hint", hint)
		}
		return r.postForm("/oauth/revoke", f, basic)
	}
	refreshWorks := func(rt string) bool {
		return r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "app:app-secret").Code == 200
	}

	t.Run("§2.1: another client's token is left alone, answered 200", func(t *testing.T) {
		r.t = t
		_, refresh := r.userTokens("read:invoices")
		if resp := revoke("svc:svc-secret", refresh, "refresh_token"); resp.Code != 200 {
			t.Fatalf("%d", resp.Code)
		}
		if !refreshWorks(refresh) {
			t.Fatal("another client revoked the token")
		}
	})
	t.Run("§2.2: an unknown token is answered 200", func(t *testing.T) {
		r.t = t
		if resp := revoke("app:app-secret", "nope", ""); resp.Code != 200 {
			t.Fatalf("%d", resp.Code)
		}
	})
	t.Run("§2.1: revoking the refresh token ends the grant", func(t *testing.T) {
		r.t = t
		access, refresh := r.userTokens("read:invoices")
		if resp := revoke("app:app-secret", refresh, "refresh_token"); resp.Code != 200 {
			t.Fatalf("%d", resp.Code)
		}
		if refreshWorks(refresh) {
			t.Fatal("refresh token still works")
		}
		if _, err := r.s.tokens.Verify(access); err == nil {
			t.Fatal("the grant's access token still verifies")
		}
	})
	t.Run("§2.1: revoking the access token ends the grant", func(t *testing.T) {
		r.t = t
		access, refresh := r.userTokens("read:invoices")
		if resp := revoke("app:app-secret", access, "access_token"); resp.Code != 200 {
			t.Fatalf("%d", resp.Code)
		}
		if refreshWorks(refresh) {
			t.Fatal("refresh token still works")
		}
	})
	t.Run("§2.1: the client must authenticate", func(t *testing.T) {
		r.t = t
		if resp := revoke("", "x", ""); resp.errorCode() != "invalid_client" {
			t.Fatalf("%d %v", resp.Code, resp.body)
		}
	})
	t.Run("§2.1: token is required", func(t *testing.T) {
		r.t = t
		if resp := revoke("app:app-secret", "", ""); resp.errorCode() != "invalid_request" {
			t.Fatalf("%d %v", resp.Code, resp.body)
		}
	})
	t.Run("§2.1: POST only", func(t *testing.T) {
		r.t = t
		if resp := r.do(httptest.NewRequest(http.MethodGet, "/oauth/revoke", nil)); resp.Code != 405 {
			t.Fatalf("%d", resp.Code)
		}
	})
}

// TestPublicRevocation: with PublicRevocation, a holder revokes without
// client authentication; credentials that are sent are still checked.
func TestPublicRevocation(t *testing.T) {
	r := newRig(t, Config{PublicRevocation: true})
	_, refresh := r.userTokens("read:invoices")
	if resp := r.postForm("/oauth/revoke", url.Values{"token": {refresh}}, "app:wrong"); resp.errorCode() != "invalid_client" {
		t.Fatalf("wrong credentials: %d %v", resp.Code, resp.body)
	}
	if resp := r.postForm("/oauth/revoke", url.Values{"token": {refresh}}, ""); resp.Code != 200 {
		t.Fatalf("%d %v", resp.Code, resp.body)
	}
	if resp := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, "app:app-secret"); resp.errorCode() != "invalid_grant" {
		t.Fatalf("revoked refresh token: %d %v", resp.Code, resp.body)
	}
}

// TestUserinfo: OIDC Core §5.3 with RFC 6750 §3 errors.
func TestUserinfo(t *testing.T) {
	r := newRig(t, Config{})
	withOpenID, _ := r.userTokens("openid", "read:invoices")
	withoutOpenID, _ := r.userTokens("read:invoices")
	cc := r.token(url.Values{"grant_type": {"client_credentials"}}, "svc:svc-secret").body["access_token"].(string)
	get := func(method, auth string) response {
		req := httptest.NewRequest(method, "/oauth/userinfo", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return r.do(req)
	}
	for _, tc := range []struct {
		rule, method, auth string
		status             int
		code, challenge    string
	}{
		{"§5.3.1: the claims of the user", "GET", "Bearer " + withOpenID, 200, "", ""},
		{"§5.3.1: POST too", "POST", "Bearer " + withOpenID, 200, "", ""},
		{"RFC 6750 §3.1: no token is a bare challenge", "GET", "", 401, "invalid_request", `Bearer realm="oauthgate"`},
		{"RFC 6750 §3.1: an invalid token is invalid_token", "GET", "Bearer nope", 401, "invalid_token", `error="invalid_token"`},
		{"RFC 6750 §3.1: a token without openid is insufficient_scope", "GET", "Bearer " + withoutOpenID, 403, "insufficient_scope", `scope="openid"`},
		{"a client's own token (which cannot carry openid) is refused", "GET", "Bearer " + cc, 403, "insufficient_scope", `scope="openid"`},
		{"other methods are 405", "PUT", "Bearer " + withOpenID, 405, "invalid_request", ""},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			resp := get(tc.method, tc.auth)
			if resp.Code != tc.status || resp.errorCode() != tc.code {
				t.Fatalf("%d %v, want %d %q", resp.Code, resp.body, tc.status, tc.code)
			}
			if ch := resp.Header().Get("WWW-Authenticate"); !strings.Contains(ch, tc.challenge) || (tc.challenge == "") != (ch == "") {
				t.Errorf("WWW-Authenticate %q, want it to hold %q", ch, tc.challenge)
			}
			if tc.status == 200 && (resp.body["sub"] != r.user.ID || resp.body["email"] != "u@example.com" || resp.body["authorized_business_id"] != "b1") {
				t.Errorf("claims %v", resp.body)
			}
		})
	}
}

var signInCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// TestSignIn: the built-in directory's sign-in form.
func TestSignIn(t *testing.T) {
	r := newRig(t, Config{})
	returnTo := authorizeURL()
	open := func(t *testing.T) (string, *http.Cookie) {
		resp := r.get("/oauth/sign-in?" + url.Values{"return_to": {returnTo}}.Encode())
		m := signInCSRF.FindStringSubmatch(resp.Body.String())
		cookies := resp.Result().Cookies()
		if resp.Code != 200 || m == nil || len(cookies) != 1 || !strings.Contains(resp.Body.String(), "App") {
			t.Fatalf("sign-in page: %d, %d cookies:\n%s", resp.Code, len(cookies), resp.Body)
		}
		return m[1], cookies[0]
	}
	post := func(form url.Values, cookies ...*http.Cookie) response {
		req := httptest.NewRequest(http.MethodPost, "/oauth/sign-in", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		return r.do(req)
	}
	for _, tc := range []struct {
		rule   string
		edit   func(f url.Values)
		status int
	}{
		{"a wrong password is refused with the form again", func(f url.Values) { f.Set("password", "wrong-password") }, 401},
		{"an unknown e-mail is refused the same way", func(f url.Values) { f.Set("email", "x@example.com") }, 401},
		{"an empty password is refused", func(f url.Values) { f.Set("password", "") }, 401},
		{"a forged form is refused", func(f url.Values) { f.Set("csrf_token", "forged") }, 403},
		{"a return address elsewhere is refused", func(f url.Values) { f.Set("return_to", "https://evil.example/") }, 400},
		{"the right password signs in and returns", func(url.Values) {}, 303},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			csrf, cookie := open(t)
			form := url.Values{"return_to": {returnTo}, "csrf_token": {csrf}, "email": {"u@example.com"}, "password": {rigPassword}}
			tc.edit(form)
			resp := post(form, cookie)
			if resp.Code != tc.status {
				t.Fatalf("%d, want %d", resp.Code, tc.status)
			}
			if tc.status != 303 {
				return
			}
			if resp.Header().Get("Location") != returnTo {
				t.Errorf("Location %q", resp.Header().Get("Location"))
			}
			var session *http.Cookie
			for _, c := range resp.Result().Cookies() {
				if c.Name == r.s.cookieName(sessionCookie) {
					session = c
				}
			}
			if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteLaxMode {
				t.Fatalf("session cookie %+v", session)
			}
			if loc := r.get(authorizeURL("client_id", "first"), session).location(t); loc.Query().Get("code") == "" {
				t.Errorf("the session does not sign in: %s", loc)
			}
		})
	}
	r.t = t
	if resp := r.get("/oauth/sign-in?return_to=" + url.QueryEscape("https://evil.example/")); resp.Code != 400 {
		t.Errorf("a sign-in page for elsewhere: %d", resp.Code)
	}
}

// TestMetricsCount: the endpoints count what they answer, by bounded label.
func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := NewBrowserMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, Config{Metrics: m, BrowserMetrics: bm})
	access, _ := r.userTokens("read:invoices")
	r.token(url.Values{"grant_type": {"client_credentials"}}, "svc:wrong")
	r.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"x"}}, "svc:svc-secret")
	r.postForm("/oauth/introspect", url.Values{"token": {access}}, "app:app-secret")
	r.postForm("/oauth/revoke", url.Values{"token": {access}}, "app:app-secret")
	r.get(authorizeURL("prompt", "none"))
	for name, want := range map[string]float64{
		"tokens issued (authorization_code)":      counterValue(m.TokensIssued.WithLabelValues("authorization_code")),
		"token errors (invalid_client)":           counterValue(m.TokenErrors.WithLabelValues("invalid_client")),
		"token errors (invalid_scope)":            counterValue(m.TokenErrors.WithLabelValues("invalid_scope")),
		"client authentication failures":          counterValue(m.ClientAuthFail.WithLabelValues("bad_secret")),
		"introspections (active)":                 counterValue(m.Introspections.WithLabelValues("true")),
		"revocations":                             counterValue(m.Revocations),
		"authorization outcomes (login_required)": counterValue(bm.Authorizations.WithLabelValues("login_required")),
	} {
		if want != 1 {
			t.Errorf("%s: %v, want 1", name, want)
		}
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.Counter.GetValue()
}
