package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const (
	resCRM  = "https://api.example.test/crm"
	resAcct = "https://api.example.test/accounting"
)

func resourceRig(t *testing.T) *rig {
	return newRig(t, Config{Resources: []string{resCRM, resAcct}})
}

// audOf is the aud claim of a JWT access token.
func audOf(t *testing.T, raw string) any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Aud any `json:"aud"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Aud
}

// TestCanonicalResource: RFC 8707 §2's rules for a resource identifier
// (absolute URI, no fragment) plus oauthgate's (http or https, a host, no
// query or user info), and the one spelling kept.
func TestCanonicalResource(t *testing.T) {
	ok := []struct{ in, want string }{
		{"https://api.example.com", "https://api.example.com/"},
		{"https://api.example.com/", "https://api.example.com/"},
		{"HTTPS://API.Example.com/api/v1", "https://api.example.com/api/v1"},
		{"http://localhost:8080/api/v1/", "http://localhost:8080/api/v1/"},
		// The scheme's default port is dropped, as URL.href drops it: a
		// JavaScript client sends https://api.example.com/crm back for a
		// document naming https://api.example.com:443/crm.
		{"https://api.example.com:443/crm", "https://api.example.com/crm"},
		{"HTTP://API.example.com:80", "http://api.example.com/"},
		{"http://[::1]:80/api", "http://[::1]/api"},
		{"https://api.example.com:/crm", "https://api.example.com/crm"},
		{"http://api.example.com:443/crm", "http://api.example.com:443/crm"},
		{"https://api.example.com:8443/crm", "https://api.example.com:8443/crm"},
	}
	for _, tc := range ok {
		got, err := CanonicalResource(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("CanonicalResource(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, why string }{
		{"/api/v1", "not an absolute URI"},
		{"api.example.com/v1", "not an absolute URI"},
		{"https://api.example.com/v1#frag", "has a fragment"},
		{"https://api.example.com/v1#", "has a fragment"},
		{"https://api.example.com/v1?x=1", "has a query"},
		{"https://api.example.com/v1?", "has a query"},
		{"urn:example:crm", "scheme is not http or https"},
		{"ftp://api.example.com/", "scheme is not http or https"},
		{"https:///v1", "has no host"},
		{"https://user:pw@api.example.com/", "has user info"},
		{"https://api.example.com/%zz", "not a URI"},
		{"https://api.example.com/a\nb", "not a URI"},
		{"", "not an absolute URI"},
	}
	for _, tc := range bad {
		if got, err := CanonicalResource(tc.in); err == nil || err.Error() != tc.why {
			t.Errorf("CanonicalResource(%q) = %q, %v; want error %q", tc.in, got, err, tc.why)
		}
	}
}

// TestAuthorizeResource: RFC 8707 §2 at the authorization endpoint: each
// resource value must be an absolute URI without fragment naming a
// resource of the configuration, else invalid_target at the redirect URI;
// the parameter may repeat.
func TestAuthorizeResource(t *testing.T) {
	r := resourceRig(t)
	session := r.signIn()
	for _, tc := range []struct {
		rule      string
		resources []string
		code      string
	}{
		{"an unknown resource", []string{"https://api.example.test/hr"}, "invalid_target"},
		{"a resource with a fragment", []string{resCRM + "#x"}, "invalid_target"},
		{"a relative resource", []string{"/crm"}, "invalid_target"},
		{"a resource with a query", []string{resCRM + "?a=b"}, "invalid_target"},
		{"one bad among good", []string{resCRM, "https://evil.example/"}, "invalid_target"},
		{"too many", strings.Split(strings.Repeat(resCRM+" ", maxResources+1), " ")[:maxResources+1], "invalid_target"},
		{"one known resource", []string{resCRM}, ""},
		{"two, repeated", []string{resCRM, resAcct}, ""},
		{"another spelling of a known one", []string{"HTTPS://API.EXAMPLE.TEST/crm"}, ""},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			target := authorizeURL()
			for _, v := range tc.resources {
				target += "&resource=" + url.QueryEscape(v)
			}
			loc := r.get(target, session).location(t)
			q := loc.Query()
			if tc.code != "" {
				if q.Get("error") != tc.code || q.Get("state") != "st-1" || q.Get("iss") != testIssuer {
					t.Fatalf("answer %v, want error %s", loc, tc.code)
				}
				return
			}
			if loc.Path != "/oauth/consent" {
				t.Fatalf("answer %v, want the consent page", loc)
			}
		})
	}
}

// TestConsentCarriesResources: the consent page names the resources, and
// the code issued on Allow carries them into the token's aud.
func TestConsentCarriesResources(t *testing.T) {
	r := resourceRig(t)
	session := r.signIn()
	loc := r.get(authorizeURL()+"&resource="+url.QueryEscape(resCRM), session).location(t)
	resp := r.get(loc.String(), session)
	body := resp.Body.String()
	if !regexp.MustCompile(`id="resources">Only at the API <code>` + regexp.QuoteMeta(resCRM) + `</code>`).MatchString(body) {
		t.Fatalf("consent page does not name the resource:\n%s", body)
	}
	m := consentForm.FindStringSubmatch(body)
	var csrf *http.Cookie
	for _, c := range resp.Result().Cookies() {
		if c.Name == r.s.cookieName(csrfCookie) {
			csrf = c
		}
	}
	if m == nil || csrf == nil {
		t.Fatal("no consent form")
	}
	form := url.Values{"request": {m[1]}, "csrf_token": {m[2]}, "decision": {"allow"}, "business_id": {"b1"}}
	req := httptest.NewRequest(http.MethodPost, "/oauth/consent", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(session)
	req.AddCookie(csrf)
	code := r.do(req).location(t).Query().Get("code")
	if code == "" {
		t.Fatal("no code")
	}
	tok := r.exchange(code)
	if tok.Code != 200 || audOf(t, tok.body["access_token"].(string)) != resCRM {
		t.Fatalf("exchange: %d %v", tok.Code, tok.body)
	}
}

// codeFor mints a code of "app" for the given resources, as /authorize does.
func (r *rig) codeFor(resources ...string) string {
	r.t.Helper()
	c, err := r.s.tokens.Client(context.Background(), "app")
	if err != nil {
		r.t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.s.issueCode(rec, context.Background(), &authzRequest{client: c, redirectURI: rigRedirect, redirectSent: true,
		scopes: []string{"read:invoices"}, state: "s", resources: resources}, &account{ID: r.user.ID, AuthTime: r.clock.Now()}, "b1")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	return loc.Query().Get("code")
}

// TestTokenResource: RFC 8707 §2 at the token endpoint, one row per rule:
// client credentials take any known resource; a code or a refresh may
// narrow what was granted, never widen it; without resource the token
// keeps what it had (the default audience when nothing was asked).
func TestTokenResource(t *testing.T) {
	r := resourceRig(t)
	cc := func(res ...string) response {
		return r.token(url.Values{"grant_type": {"client_credentials"}, "resource": res}, "svc:svc-secret")
	}
	for _, tc := range []struct {
		rule      string
		resources []string
		code      string
		aud       any
	}{
		{"no resource: the default audience", nil, "", testIssuer},
		{"one resource", []string{resCRM}, "", resCRM},
		{"two resources: an array", []string{resCRM, resAcct}, "", []any{resCRM, resAcct}},
		{"repeated value counted once", []string{resCRM, resCRM}, "", resCRM},
		{"unknown resource", []string{"https://api.example.test/hr"}, "invalid_target", nil},
		{"fragment", []string{resCRM + "#frag"}, "invalid_target", nil},
		{"relative URI", []string{"crm"}, "invalid_target", nil},
		{"query", []string{resCRM + "?x"}, "invalid_target", nil},
		// One value holding two identifiers is no URI (as at /authorize),
		// not two values.
		{"line break inside a value", []string{resCRM + "\n" + resAcct}, "invalid_target", nil},
		{"line break alone", []string{resCRM, "\n"}, "invalid_target", nil},
	} {
		t.Run("client_credentials: "+tc.rule, func(t *testing.T) {
			r.t = t
			resp := cc(tc.resources...)
			if tc.code != "" {
				if resp.Code != 400 || resp.errorCode() != tc.code {
					t.Fatalf("%d %v, want 400 %s", resp.Code, resp.body, tc.code)
				}
				return
			}
			if resp.Code != 200 {
				t.Fatalf("%d %v", resp.Code, resp.body)
			}
			if got := audOf(t, resp.body["access_token"].(string)); !reflect.DeepEqual(got, tc.aud) {
				t.Errorf("aud %v, want %v", got, tc.aud)
			}
		})
	}

	t.Run("JSON body: resource as an array", func(t *testing.T) {
		r.t = t
		req := httptest.NewRequest(http.MethodPost, "/oauth/token",
			strings.NewReader(`{"grant_type":"client_credentials","client_id":"svc","client_secret":"svc-secret","resource":["`+resCRM+`","`+resAcct+`"]}`))
		req.Header.Set("Content-Type", "application/json")
		resp := r.do(req)
		if resp.Code != 200 || !reflect.DeepEqual(audOf(t, resp.body["access_token"].(string)), []any{resCRM, resAcct}) {
			t.Fatalf("%d %v", resp.Code, resp.body)
		}
		req = httptest.NewRequest(http.MethodPost, "/oauth/token",
			strings.NewReader(`{"grant_type":"client_credentials","client_id":"svc","client_secret":"svc-secret","resource":"`+resCRM+`\n`+resAcct+`"}`))
		req.Header.Set("Content-Type", "application/json")
		if resp := r.do(req); resp.Code != 400 || resp.errorCode() != "invalid_target" {
			t.Fatalf("a line break inside a JSON value: %d %v", resp.Code, resp.body)
		}
	})

	exchange := func(code string, res ...string) response {
		return r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rigRedirect}, "resource": res}, "app:app-secret")
	}
	refresh := func(rt string, res ...string) response {
		return r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": res}, "app:app-secret")
	}
	t.Run("code: widening is invalid_target and spends nothing", func(t *testing.T) {
		r.t = t
		code := r.codeFor(resCRM)
		if resp := exchange(code, resAcct); resp.Code != 400 || resp.errorCode() != "invalid_target" {
			t.Fatalf("%d %v", resp.Code, resp.body)
		}
		if resp := exchange(code); resp.Code != 200 || audOf(t, resp.body["access_token"].(string)) != resCRM {
			t.Fatalf("retry: %d %v", resp.Code, resp.body)
		}
	})
	t.Run("code and refresh: narrow, keep, never widen", func(t *testing.T) {
		r.t = t
		resp := exchange(r.codeFor(resCRM, resAcct), resAcct)
		if resp.Code != 200 || audOf(t, resp.body["access_token"].(string)) != resAcct {
			t.Fatalf("narrowed exchange: %d %v", resp.Code, resp.body)
		}
		rt := resp.body["refresh_token"].(string)
		// The grant keeps what the code carried: a refresh without
		// resource gets both back.
		resp = refresh(rt)
		if resp.Code != 200 || !reflect.DeepEqual(audOf(t, resp.body["access_token"].(string)), []any{resCRM, resAcct}) {
			t.Fatalf("refresh: %d %v", resp.Code, resp.body)
		}
		rt = resp.body["refresh_token"].(string)
		resp = refresh(rt, resCRM)
		if resp.Code != 200 || audOf(t, resp.body["access_token"].(string)) != resCRM {
			t.Fatalf("narrowed refresh: %d %v", resp.Code, resp.body)
		}
		rt = resp.body["refresh_token"].(string)
		if resp := refresh(rt, "https://api.example.test/hr"); resp.Code != 400 || resp.errorCode() != "invalid_target" {
			t.Fatalf("unknown resource at refresh: %d %v", resp.Code, resp.body)
		}
		if resp := refresh(rt, resCRM+"#x"); resp.Code != 400 || resp.errorCode() != "invalid_target" {
			t.Fatalf("fragment at refresh: %d %v", resp.Code, resp.body)
		}
		// The refused refreshes spent nothing.
		if resp := refresh(rt); resp.Code != 200 {
			t.Fatalf("refresh after refusals: %d %v", resp.Code, resp.body)
		}
	})
	t.Run("refresh narrows beyond the grant: invalid_target", func(t *testing.T) {
		r.t = t
		resp := exchange(r.codeFor(resCRM))
		if resp := refresh(resp.body["refresh_token"].(string), resAcct); resp.Code != 400 || resp.errorCode() != "invalid_target" {
			t.Fatalf("%d %v", resp.Code, resp.body)
		}
	})
	t.Run("a grant without resources keeps the default audience and may narrow to any", func(t *testing.T) {
		r.t = t
		resp := exchange(r.codeFor())
		if resp.Code != 200 || audOf(t, resp.body["access_token"].(string)) != testIssuer {
			t.Fatalf("%d %v", resp.Code, resp.body)
		}
		resp = refresh(resp.body["refresh_token"].(string), resAcct)
		if resp.Code != 200 || audOf(t, resp.body["access_token"].(string)) != resAcct {
			t.Fatalf("%d %v", resp.Code, resp.body)
		}
	})
	t.Run("introspection shows aud", func(t *testing.T) {
		r.t = t
		tok := cc(resCRM, resAcct).body["access_token"].(string)
		resp := r.postForm("/oauth/introspect", url.Values{"token": {tok}}, "svc:svc-secret")
		if resp.Code != 200 || resp.body["active"] != true || !reflect.DeepEqual(resp.body["aud"], []any{resCRM, resAcct}) {
			t.Fatalf("%d %v", resp.Code, resp.body)
		}
		tok = cc().body["access_token"].(string)
		resp = r.postForm("/oauth/introspect", url.Values{"token": {tok}}, "svc:svc-secret")
		if resp.body["aud"] != testIssuer {
			t.Fatalf("default audience: %v", resp.body)
		}
	})
}
