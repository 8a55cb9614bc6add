package authserver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// authorizeURL is an authorization request of "app" with its defaults
// changed by kv (an empty value deletes the parameter).
func authorizeURL(kv ...string) string {
	q := url.Values{"client_id": {"app"}, "response_type": {"code"}, "redirect_uri": {rigRedirect},
		"scope": {"read:invoices"}, "state": {"st-1"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return "/oauth/authorize?" + q.Encode()
}

// TestAuthorizeRequestPageErrors: until the client and its redirect URI are
// known good, errors are shown on a page and the browser is sent nowhere
// (RFC 6749 §4.1.2.1, §3.1.2.4: exact redirect-URI match).
func TestAuthorizeRequestPageErrors(t *testing.T) {
	r := newRig(t, Config{})
	for _, tc := range []struct {
		rule, target, code string
	}{
		{"§4.1.1: client_id is required", authorizeURL("client_id", ""), "invalid_request"},
		{"§4.1.1: client_id may not repeat", authorizeURL() + "&client_id=app", "invalid_request"},
		{"§4.1.2.1: an unknown client gets a page", authorizeURL("client_id", "nobody"), "invalid_client"},
		{"§3.1.2.4: an unregistered redirect_uri gets a page", authorizeURL("redirect_uri", "https://evil.example/cb"), "invalid_request"},
		{"§3.1.2.4: redirect_uri matches exactly: no trailing slash", authorizeURL("redirect_uri", rigRedirect+"/"), "invalid_request"},
		{"§3.1.2.4: redirect_uri matches exactly: no case folding", authorizeURL("redirect_uri", strings.ToUpper(rigRedirect)), "invalid_request"},
		{"§3.1.2.4: redirect_uri matches exactly: no extra query", authorizeURL("redirect_uri", rigRedirect+"?x=1"), "invalid_request"},
		{"§3.1.2.3: redirect_uri may be left out only with one registered", authorizeURL("client_id", "multi", "redirect_uri", ""), "invalid_request"},
		{"§3.1.2: redirect_uri may not repeat", authorizeURL() + "&redirect_uri=" + url.QueryEscape(rigRedirect), "invalid_request"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			resp := r.get(tc.target)
			if resp.Code != http.StatusBadRequest || resp.Header().Get("Location") != "" {
				t.Fatalf("got %d Location %q, want 400 and no redirect", resp.Code, resp.Header().Get("Location"))
			}
			if !strings.Contains(resp.Body.String(), tc.code) {
				t.Errorf("page does not show %s", tc.code)
			}
			if resp.Header().Get("X-Frame-Options") != "DENY" || resp.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("page headers: %v", resp.Header())
			}
		})
	}
}

// TestAuthorizeRequestRedirectErrors: once the redirect URI is known good,
// every other rule is answered at it with the client's state and the issuer
// (RFC 6749 §4.1.2.1, RFC 9207).
func TestAuthorizeRequestRedirectErrors(t *testing.T) {
	r := newRig(t, Config{})
	for _, tc := range []struct {
		rule, target, code string
	}{
		{"§3.1: a parameter may not repeat", authorizeURL() + "&scope=read:invoices", "invalid_request"},
		{"state is bounded", authorizeURL("state", strings.Repeat("s", maxStateLen+1)), "invalid_request"},
		{"OIDC §6: request objects are not supported", authorizeURL("request", "eyJ"), "request_not_supported"},
		{"OIDC §6: request_uri is not supported", authorizeURL("request_uri", "https://app.example/r"), "request_uri_not_supported"},
		{"§4.1.1: response_type is required", authorizeURL("response_type", ""), "invalid_request"},
		{"§4.1.2.1: only response_type=code", authorizeURL("response_type", "token"), "unsupported_response_type"},
		{"OAuth 2.0 Multiple Response Types: only response_mode=query", authorizeURL("response_mode", "fragment"), "invalid_request"},
		{"§4.1.2.1: a client without the code grant is unauthorized_client", authorizeURL("client_id", "cconly"), "unauthorized_client"},
		{"§3.3: a scope beyond the client's is invalid_scope", authorizeURL("scope", "admin"), "invalid_scope"},
		{"§3.3: a malformed scope is invalid_scope", authorizeURL("scope", `read:invoices "x`), "invalid_scope"},
		{"§3.3: no scope and none registered is invalid_scope", authorizeURL("client_id", "bare", "scope", ""), "invalid_scope"},
		{"RFC 7636 §4.3: code_challenge_method needs a code_challenge", authorizeURL("code_challenge_method", "S256"), "invalid_request"},
		{"RFC 9700 §2.1.1: a public client must send PKCE", authorizeURL("client_id", "spa"), "invalid_request"},
		{"RFC 7636 §4.2: plain is refused, only S256", authorizeURL("code_challenge", rigChallenge, "code_challenge_method", "plain"), "invalid_request"},
		{"RFC 7636 §4.2: an absent method means plain, refused", authorizeURL("code_challenge", rigChallenge), "invalid_request"},
		{"RFC 7636 §4.2: an S256 challenge is 43 base64url characters", authorizeURL("code_challenge", "abc", "code_challenge_method", "S256"), "invalid_request"},
		{"OIDC §3.1.2.1: an unknown prompt value is invalid_request", authorizeURL("prompt", "select_account"), "invalid_request"},
		{"OIDC §3.1.2.1: prompt=none stands alone", authorizeURL("prompt", "none login"), "invalid_request"},
		{"OIDC §3.1.2.1: max_age is a non-negative integer", authorizeURL("max_age", "-1"), "invalid_request"},
		{"OIDC §3.1.2.1: max_age is a number", authorizeURL("max_age", "soon"), "invalid_request"},
		{"nonce is bounded", authorizeURL("nonce", strings.Repeat("n", maxNonceLen+1)), "invalid_request"},
		{"OIDC §3.1.2.6: prompt=none without a sign-in is login_required", authorizeURL("prompt", "none"), "login_required"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			resp := r.get(tc.target)
			if resp.Code != http.StatusSeeOther {
				t.Fatalf("got %d, want 303: %s", resp.Code, resp.Body)
			}
			loc := resp.location(t)
			q := loc.Query()
			if loc.Scheme+"://"+loc.Host+loc.Path != rigRedirect || q.Get("error") != tc.code || q.Get("error_description") == "" {
				t.Fatalf("Location %s, want %s with error=%s", loc, rigRedirect, tc.code)
			}
			if q.Get("iss") != testIssuer {
				t.Errorf("RFC 9207: iss %q", q.Get("iss"))
			}
			wantState := "st-1"
			if strings.HasPrefix(tc.rule, "state is bounded") {
				wantState = "" // too long to echo
			}
			if q.Get("state") != wantState {
				t.Errorf("§4.1.2.1: state %q, want %q", q.Get("state"), wantState)
			}
		})
	}
}

// TestAuthorizeFlow walks the valid request: sign-in, then consent, then the
// code, and the prompt and max_age rules that force or forbid each step.
func TestAuthorizeFlow(t *testing.T) {
	r := newRig(t, Config{})
	signInPath := "/oauth/sign-in"

	t.Run("not signed in: sent to sign in, coming back to the same request", func(t *testing.T) {
		r.t = t
		resp := r.get(authorizeURL("login_hint", "u@example.com"))
		loc := resp.location(t)
		if resp.Code != http.StatusSeeOther || loc.Path != signInPath {
			t.Fatalf("%d %s", resp.Code, loc)
		}
		back, ok := r.s.returnTarget(loc.Query().Get("return_to"))
		if !ok || back.Get("client_id") != "app" || back.Get("state") != "st-1" {
			t.Fatalf("return_to %q", loc.Query().Get("return_to"))
		}
	})
	session := r.signIn()
	t.Run("signed in, no consent yet: the consent page", func(t *testing.T) {
		r.t = t
		resp := r.get(authorizeURL(), session)
		if loc := resp.location(t); resp.Code != http.StatusSeeOther || loc.Path != "/oauth/consent" || loc.Query().Get("request") == "" {
			t.Fatalf("%d %s", resp.Code, loc)
		}
	})
	t.Run("OIDC §3.1.2.6: prompt=none without consent is consent_required", func(t *testing.T) {
		r.t = t
		resp := r.get(authorizeURL("prompt", "none"), session)
		if q := resp.location(t).Query(); q.Get("error") != "consent_required" || q.Get("iss") != testIssuer {
			t.Fatalf("%d %s", resp.Code, resp.Header().Get("Location"))
		}
	})
	t.Run("OIDC §3.1.2.1: prompt=login forces a new sign-in", func(t *testing.T) {
		r.t = t
		resp := r.get(authorizeURL("prompt", "login consent"), session)
		loc := resp.location(t)
		if loc.Path != signInPath {
			t.Fatalf("%d %s", resp.Code, loc)
		}
		// The requirement is met by that sign-in: not asked again.
		back, _ := r.s.returnTarget(loc.Query().Get("return_to"))
		if back.Get("prompt") != "consent" {
			t.Errorf("return_to prompt %q, want consent", back.Get("prompt"))
		}
	})
	t.Run("OIDC §3.1.2.1: a sign-in older than max_age is asked again", func(t *testing.T) {
		r.t = t
		r.clock.Advance(2 * time.Minute)
		resp := r.get(authorizeURL("max_age", "60"), session)
		loc := resp.location(t)
		if loc.Path != signInPath {
			t.Fatalf("%d %s", resp.Code, loc)
		}
		if back, _ := r.s.returnTarget(loc.Query().Get("return_to")); back.Has("max_age") {
			t.Errorf("return_to keeps max_age")
		}
	})
	t.Run("OIDC §3.1.2.1: a sign-in within max_age is kept", func(t *testing.T) {
		r.t = t
		resp := r.get(authorizeURL("max_age", "3600"), session)
		if loc := resp.location(t); loc.Path != "/oauth/consent" {
			t.Fatalf("%d %s", resp.Code, loc)
		}
	})
	t.Run("first-party clients skip consent: the code, with state and iss", func(t *testing.T) {
		r.t = t
		resp := r.get(authorizeURL("client_id", "first"), session)
		q := resp.location(t).Query()
		if q.Get("code") == "" || q.Get("state") != "st-1" || q.Get("iss") != testIssuer {
			t.Fatalf("%d %s", resp.Code, resp.Header().Get("Location"))
		}
	})
	t.Run("OIDC §3.1.2.1: POST with a form is accepted", func(t *testing.T) {
		r.t = t
		u, _ := url.Parse(authorizeURL("client_id", "first"))
		req := httptest.NewRequest(http.MethodPost, "/oauth/authorize", strings.NewReader(u.RawQuery))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(session)
		resp := r.do(req)
		if q := resp.location(t).Query(); q.Get("code") == "" {
			t.Fatalf("%d %s", resp.Code, resp.Header().Get("Location"))
		}
	})
	t.Run("other methods are 405", func(t *testing.T) {
		r.t = t
		resp := r.do(httptest.NewRequest(http.MethodDelete, authorizeURL(), nil))
		if resp.Code != http.StatusMethodNotAllowed || resp.Header().Get("Allow") != "GET, POST" {
			t.Fatalf("%d Allow %q", resp.Code, resp.Header().Get("Allow"))
		}
	})
}

// consentForm finds the consent form's hidden fields (the page may hold
// other forms, such as sign-out, with their own CSRF token).
var consentForm = regexp.MustCompile(`name="request" value="([^"]+)">\s*<input type="hidden" name="csrf_token" value="([^"]+)"`)

// TestConsentDecision: the consent page, Allow (the code, and the consent
// remembered), Deny (access_denied), and the form's checks.
func TestConsentDecision(t *testing.T) {
	r := newRig(t, Config{})
	session := r.signIn()
	// page opens the consent page of a fresh request and returns its form
	// values and the browser's CSRF cookie.
	page := func(t *testing.T, target string) (url.Values, *http.Cookie) {
		t.Helper()
		loc := r.get(target, session).location(t)
		resp := r.get(loc.String(), session)
		if resp.Code != http.StatusOK {
			t.Fatalf("consent page: %d %s", resp.Code, resp.Body)
		}
		body := resp.Body.String()
		m := consentForm.FindStringSubmatch(body)
		if m == nil || !strings.Contains(body, "B One") || !strings.Contains(body, "read:invoices") {
			t.Fatalf("consent page lacks the form, businesses or scopes:\n%s", body)
		}
		// The browser has no CSRF cookie yet: the page sets exactly one,
		// whatever forms it holds.
		var cookie *http.Cookie
		for _, c := range resp.Result().Cookies() {
			if c.Name == r.s.cookieName(csrfCookie) {
				if cookie != nil {
					t.Fatal("the page sets the CSRF cookie twice")
				}
				cookie = c
			}
		}
		if cookie == nil {
			t.Fatal("no CSRF cookie")
		}
		return url.Values{"request": {m[1]}, "csrf_token": {m[2]}}, cookie
	}
	post := func(form url.Values, cookies ...*http.Cookie) response {
		req := httptest.NewRequest(http.MethodPost, "/oauth/consent", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		return r.do(req)
	}

	t.Run("Deny is access_denied at the redirect URI", func(t *testing.T) {
		r.t = t
		form, csrf := page(t, authorizeURL())
		form.Set("decision", "deny")
		q := post(form, session, csrf).location(t).Query()
		if q.Get("error") != "access_denied" || q.Get("state") != "st-1" || q.Get("iss") != testIssuer {
			t.Fatalf("%v", q)
		}
	})
	for _, tc := range []struct {
		rule   string
		edit   func(url.Values)
		status int
	}{
		{"a wrong CSRF token is refused", func(f url.Values) { f.Set("csrf_token", "x"+f.Get("csrf_token")) }, http.StatusForbidden},
		{"a tampered request handle is refused", func(f url.Values) { f.Set("request", f.Get("request")+"x") }, http.StatusBadRequest},
		{"a business the user does not administer is refused", func(f url.Values) { f.Set("business_id", "b9") }, http.StatusBadRequest},
		{"a decision other than allow or deny is refused", func(f url.Values) { f.Set("decision", "maybe") }, http.StatusBadRequest},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			form, csrf := page(t, authorizeURL())
			form.Set("decision", "allow")
			form.Set("business_id", "b2")
			tc.edit(form)
			if resp := post(form, session, csrf); resp.Code != tc.status || resp.Header().Get("Location") != "" {
				t.Fatalf("%d Location %q, want %d", resp.Code, resp.Header().Get("Location"), tc.status)
			}
		})
	}
	t.Run("the form without the CSRF cookie is refused", func(t *testing.T) {
		r.t = t
		form, _ := page(t, authorizeURL())
		form.Set("decision", "allow")
		form.Set("business_id", "b1")
		if resp := post(form, session); resp.Code != http.StatusForbidden {
			t.Fatalf("%d", resp.Code)
		}
	})
	t.Run("signed out meanwhile, the form is refused", func(t *testing.T) {
		r.t = t
		form, csrf := page(t, authorizeURL())
		form.Set("decision", "allow")
		form.Set("business_id", "b1")
		if resp := post(form, csrf); resp.Code != http.StatusForbidden {
			t.Fatalf("%d", resp.Code)
		}
	})
	t.Run("Allow issues a code for the business chosen, and is remembered", func(t *testing.T) {
		r.t = t
		form, csrf := page(t, authorizeURL())
		form.Set("decision", "allow")
		form.Set("business_id", "b2")
		q := post(form, session, csrf).location(t).Query()
		if q.Get("code") == "" || q.Get("iss") != testIssuer || q.Get("state") != "st-1" {
			t.Fatalf("%v", q)
		}
		resp := r.exchange(q.Get("code"))
		if resp.Code != 200 {
			t.Fatalf("exchange: %d %v", resp.Code, resp.body)
		}
		claims, err := r.s.tokens.Verify(resp.body["access_token"].(string))
		if err != nil || claims.BusinessID != "b2" {
			t.Fatalf("claims %+v, %v", claims, err)
		}
		// The same request now skips the screen, also under prompt=none.
		if q := r.get(authorizeURL("prompt", "none"), session).location(t).Query(); q.Get("code") == "" {
			t.Fatalf("remembered consent: %v", q)
		}
		// prompt=consent asks again.
		if loc := r.get(authorizeURL("prompt", "consent"), session).location(t); loc.Path != "/oauth/consent" {
			t.Fatalf("prompt=consent: %s", loc)
		}
	})
	t.Run("signed out, the consent page starts the request over", func(t *testing.T) {
		r.t = t
		loc := r.get(authorizeURL("scope", "write:invoices"), session).location(t)
		other := r.get(loc.String())
		if other.Code != http.StatusSeeOther || other.location(t).Path != "/oauth/authorize" {
			t.Fatalf("%d %s", other.Code, other.Header().Get("Location"))
		}
	})
	t.Run("an expired consent request is refused", func(t *testing.T) {
		r.t = t
		loc := r.get(authorizeURL("scope", "write:invoices"), session).location(t)
		r.clock.Advance(pendingTTL + time.Minute)
		defer r.clock.Advance(-(pendingTTL + time.Minute))
		if resp := r.get(loc.String(), session); resp.Code != http.StatusBadRequest {
			t.Fatalf("%d", resp.Code)
		}
	})
}
