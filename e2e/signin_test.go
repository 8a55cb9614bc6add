package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestSignInPage: one message for a wrong password and an unknown e-mail,
// a CSRF token on the form, and a return address that can only be this
// server's authorize endpoint.
func TestSignInPage(t *testing.T) {
	n := startNode(t, nodeOptions{})
	ua := newUserAgent(t)
	p := ua.get(ua.authorizeURL(n, demoClientID, n.URL+"/demo/callback", "read:invoices", "s"))
	signInURL := p.Location.String()
	sp := ua.get(signInURL)
	if sp.StatusCode != 200 || !strings.Contains(sp.Body, "Ledgerly") || !strings.Contains(sp.Body, `type="password"`) {
		t.Fatalf("sign-in page: %d\n%s", sp.StatusCode, sp.Body)
	}
	const msg = "The e-mail address or password is incorrect."
	wrongPassword := ua.signIn(sp, demoEmail, "not-the-password")
	unknownEmail := ua.signIn(sp, "nobody@example.com", demoPassword)
	for name, p := range map[string]*page{"wrong password": wrongPassword, "unknown e-mail": unknownEmail} {
		if p.StatusCode != http.StatusUnauthorized || !strings.Contains(p.Body, msg) || strings.Contains(strings.Join(p.Header.Values("Set-Cookie"), ";"), "oauthgate_session") {
			t.Errorf("%s: %d, want 401 with %q and no session", name, p.StatusCode, msg)
		}
	}
	if strings.Count(wrongPassword.Body, "incorrect") != strings.Count(unknownEmail.Body, "incorrect") {
		t.Error("the two failures read differently")
	}
	// E-mail case does not matter.
	if p := ua.signIn(sp, strings.ToUpper(demoEmail), demoPassword); p.StatusCode != http.StatusSeeOther {
		t.Errorf("upper-case e-mail: %d", p.StatusCode)
	}

	f := parseForm(t, sp.Body)
	post := func(ua *userAgent, vals url.Values) *page { return ua.post(n.URL+"/oauth/sign-in", vals) }
	creds := func(kv ...string) url.Values {
		v := url.Values{"email": {demoEmail}, "password": {demoPassword}, "return_to": {f.Fields.Get("return_to")}, "csrf_token": {f.Fields.Get("csrf_token")}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		ua     *userAgent
		form   url.Values
		status int
	}{
		{"CSRF token missing", ua, creds("csrf_token", ""), 403},
		{"CSRF token wrong", ua, creds("csrf_token", wrongToken(f.Fields.Get("csrf_token"))), 403},
		{"no CSRF cookie (cross-site login)", newUserAgent(t), creds(), 403},
		{"return_to elsewhere", ua, creds("return_to", "https://evil.example/oauth/authorize?x=1"), 400},
		{"return_to protocol-relative", ua, creds("return_to", "//evil.example/oauth/authorize?x=1"), 400},
		{"return_to another path", ua, creds("return_to", "/api/v1/accounting/invoices?x=1"), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p := post(tc.ua, tc.form); p.StatusCode != tc.status || p.Header.Get("Location") != "" {
				t.Errorf("got %d (Location %q), want %d", p.StatusCode, p.Header.Get("Location"), tc.status)
			}
		})
	}
	for _, q := range []string{"", "?return_to=https%3A%2F%2Fevil.example%2F"} {
		if p := newUserAgent(t).get(n.URL + "/oauth/sign-in" + q); p.StatusCode != 400 {
			t.Errorf("sign-in page%s: %d, want 400", q, p.StatusCode)
		}
	}
	if m := scrapeMetrics(t, n); !strings.Contains(m, `oauthgate_authserver_sign_ins_total{result="failure"} 2`) {
		t.Error("failed sign-ins are not counted")
	}
}

// TestFirstPartyClient: a platform-scoped client skips the consent screen,
// and its tenancy is the signing-in user's current business.
func TestFirstPartyClient(t *testing.T) {
	n := startNode(t, nodeOptions{})
	c := n.registerClient(map[string]any{"name": "Platform Mobile", "first_party": true, "public": true,
		"scopes": []string{"openid", "read:invoices"}, "redirect_uris": []string{"com.example.platform:/oauth"}})
	conf := oauth2.Config{ClientID: c.ClientID, RedirectURL: "com.example.platform:/oauth", Scopes: []string{"openid", "read:invoices"},
		Endpoint: oauth2.Endpoint{AuthURL: n.URL + "/oauth/authorize", TokenURL: n.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	ua := newUserAgent(t)
	verifier := oauth2.GenerateVerifier()
	cb := ua.authorize(conf.AuthCodeURL("fp", oauth2.S256ChallengeOption(verifier)), "biz_never_asked")
	if cb.Scheme != "com.example.platform" {
		t.Fatalf("redirect %s", cb)
	}
	tok, err := conf.Exchange(ctx(t), codeFrom(t, cb, "fp", n.URL), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok.AccessToken, "biz_acme"); resp.StatusCode != 200 {
		t.Errorf("current business: %d", resp.StatusCode)
	}
	if resp, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok.AccessToken, "biz_globex"); resp.StatusCode != 403 {
		t.Errorf("other business: %d", resp.StatusCode)
	}
	// Silent sign-in works once there is a session.
	p := ua.get(conf.AuthCodeURL("silent", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	if p.Location == nil || p.Location.Query().Get("code") == "" || p.Location.Query().Get("state") != "silent" {
		t.Errorf("prompt=none with a session: %d %v", p.StatusCode, p.Location)
	}
}

// TestPromptLoginAndMaxAge: prompt=login and an exceeded max_age send a
// signed-in user to the sign-in page again; afterwards the request goes on.
func TestPromptLoginAndMaxAge(t *testing.T) {
	n := startNode(t, nodeOptions{})
	ua := newUserAgent(t)
	base := url.Values{"response_type": {"code"}, "client_id": {demoClientID}, "redirect_uri": {n.URL + "/demo/callback"},
		"scope": {"read:invoices"}, "state": {"s"}}
	authURL := func(kv ...string) string {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return n.URL + "/oauth/authorize?" + q.Encode()
	}
	// Sign in and consent once.
	codeFrom(t, ua.authorize(authURL(), ""), "s", n.URL)

	if p := ua.get(authURL("max_age", "3600")); p.Location == nil || p.Location.Query().Get("code") == "" {
		t.Errorf("max_age=3600 just after signing in: %v", p.Location)
	}
	for _, kv := range [][]string{{"prompt", "login"}, {"max_age", "0"}, {"prompt", "login consent"}} {
		p := ua.get(authURL(kv...))
		if p.Location == nil || p.Location.Path != "/oauth/sign-in" {
			t.Errorf("%v: %d %v, want the sign-in page", kv, p.StatusCode, p.Location)
			continue
		}
		rt, _ := url.Parse(p.Location.Query().Get("return_to"))
		if rt.Query().Has("max_age") || strings.Contains(rt.Query().Get("prompt"), "login") || rt.Query().Get("state") != "s" {
			t.Errorf("%v: return address %s keeps what the sign-in satisfies, or lost the request", kv, rt)
		}
		// Once signed in again the request completes.
		cb := ua.authorize(p.Location.String(), "")
		if cb.Query().Get("code") == "" {
			t.Errorf("%v: after signing in again: %s", kv, cb)
		}
	}
}

// TestDemoWalkthrough is the README's browser walkthrough with the demo
// user and the demo app of the root Caddyfile, ending on the demo
// callback page and the token request it shows.
func TestDemoWalkthrough(t *testing.T) {
	n := startNode(t, nodeOptions{})
	ua := newUserAgent(t)
	demo := ua.get(n.URL + "/demo/")
	f := strings.Index(demo.Body, `id="connect" href="`)
	if demo.StatusCode != 200 || f < 0 {
		t.Fatalf("demo page: %d\n%s", demo.StatusCode, demo.Body)
	}
	href := demo.Body[f+len(`id="connect" href="`):]
	href = strings.ReplaceAll(href[:strings.IndexByte(href, '"')], "&amp;", "&")
	cb := ua.authorize(n.URL+href, "biz_acme")
	if cb.String() != n.URL+"/demo/callback?"+cb.RawQuery {
		t.Fatalf("redirected to %s", cb)
	}
	code := cb.Query().Get("code")
	cp := ua.get(cb.String())
	if cp.StatusCode != 200 || !strings.Contains(cp.Body, `<code id="code">`+code+`</code>`) || !strings.Contains(cp.Body, "-u demo-app:demo-app-secret") {
		t.Fatalf("callback page: %d\n%s", cp.StatusCode, cp.Body)
	}
	// The token request the page shows.
	req, _ := http.NewRequest("POST", n.URL+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"},
		"redirect_uri": {n.URL + "/demo/callback"}, "code": {code}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(demoClientID, demoClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode != 200 || tok["id_token"] == nil || tok["refresh_token"] == nil ||
		tok["scope"] != "openid offline_access read:invoices read:contacts" {
		t.Fatalf("token: %d %v", resp.StatusCode, tok)
	}
	at := tok["access_token"].(string)
	if resp, body := get(t, "GET", n.URL+"/api/v1/crm/contacts", at, "biz_acme"); resp.StatusCode != 200 {
		t.Errorf("contacts for Acme: %d %s", resp.StatusCode, body)
	}
	userinfo, _ := http.NewRequest("GET", n.URL+"/oauth/userinfo", nil)
	userinfo.Header.Set("Authorization", "Bearer "+at)
	uresp, err := http.DefaultClient.Do(userinfo)
	if err != nil {
		t.Fatal(err)
	}
	defer uresp.Body.Close()
	var ui map[string]any
	_ = json.NewDecoder(uresp.Body).Decode(&ui)
	if uresp.StatusCode != 200 || ui["email"] != demoEmail || ui["authorized_business_id"] != "biz_acme" {
		t.Errorf("userinfo: %d %v", uresp.StatusCode, ui)
	}
}

// wrongToken returns s with its first character changed: always a
// different string (prefixing "x" to s[1:] is s itself when s starts
// with x, one run in 64).
func wrongToken(s string) string {
	if strings.HasPrefix(s, "A") {
		return "B" + s[1:]
	}
	return "A" + strings.TrimPrefix(s, s[:min(1, len(s))])
}
