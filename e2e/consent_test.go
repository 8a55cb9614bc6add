package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// consentPage signs ua in (if needed) and returns the consent page of an
// authorization request.
func consentPage(t *testing.T, ua *userAgent, authURL, email, password string) *page {
	t.Helper()
	next := authURL
	for range 4 {
		p := ua.get(next)
		if p.StatusCode == 200 && p.Request.URL.Path == "/oauth/consent" {
			return p
		}
		if p.StatusCode == 200 && p.Request.URL.Path == "/oauth/sign-in" {
			p = ua.signIn(p, email, password)
		}
		if p.Location == nil {
			t.Fatalf("%s: %d without redirect\n%s", p.Request.URL, p.StatusCode, p.Body)
		}
		next = p.Location.String()
	}
	t.Fatalf("no consent page for %s", authURL)
	return nil
}

// TestConsentForm: the consent POST is checked again server side — CSRF
// token bound to the sign-in, the signed request bound to the user, the
// business among the user's — and Deny sends access_denied back.
func TestConsentForm(t *testing.T) {
	n := startNode(t, nodeOptions{})
	c := n.registerClient(map[string]any{"name": "Forms", "scopes": []string{"read:invoices"}, "redirect_uris": []string{"http://127.0.0.1/cb"}})
	other := map[string]any{"email": "other@example.com", "password": "other-password", "name": "Other",
		"businesses": []map[string]string{{"id": "biz_other", "name": "Other Co"}}}
	if code := n.adminJSON("POST", "/oauthgate/users", other, nil); code != http.StatusCreated {
		t.Fatalf("creating user: %d", code)
	}
	authURL := n.URL + "/oauth/authorize?" + url.Values{"response_type": {"code"}, "client_id": {c.ClientID},
		"redirect_uri": {"http://127.0.0.1/cb"}, "scope": {"read:invoices"}, "state": {"st"}}.Encode()

	ua := newUserAgent(t)
	p := consentPage(t, ua, authURL, demoEmail, demoPassword)
	f := parseForm(t, p.Body)
	if f.Action != "/oauth/consent" || f.Fields.Get("request") == "" || f.Fields.Get("csrf_token") == "" {
		t.Fatalf("consent form %+v", f)
	}
	mallory := newUserAgent(t)
	mp := consentPage(t, mallory, authURL, "other@example.com", "other-password")
	mf := parseForm(t, mp.Body)

	post := func(ua *userAgent, vals url.Values) *page { return ua.post(n.URL+"/oauth/consent", vals) }
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range f.Fields {
			v[k] = vs
		}
		v.Set("decision", "allow")
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		ua     *userAgent
		form   url.Values
		status int
	}{
		{"CSRF token missing", ua, with("csrf_token", ""), 403},
		{"CSRF token wrong", ua, with("csrf_token", "AAAA"+f.Fields.Get("csrf_token")[4:]), 403},
		{"CSRF token of another sign-in", ua, with("csrf_token", mf.Fields.Get("csrf_token")), 403},
		{"another user's request", mallory, with("csrf_token", mf.Fields.Get("csrf_token")), 403},
		{"no session (cross-site post without cookies)", newUserAgent(t), with(), 403},
		{"request handle tampered", ua, with("request", f.Fields.Get("request")+"x"), 400},
		{"request handle missing", ua, with("request", ""), 400},
		{"business the user does not administer", ua, with("business_id", "biz_other"), 400},
		{"no decision", ua, with("decision", "maybe"), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := post(tc.ua, tc.form)
			if p.StatusCode != tc.status || p.Header.Get("Location") != "" {
				t.Fatalf("got %d (Location %q), want %d", p.StatusCode, p.Header.Get("Location"), tc.status)
			}
			checkPageHeaders(t, "refusal", p.Header)
		})
	}
	// Nothing above issued a code or remembered a consent.
	if p := ua.get(authURL); p.Location == nil || p.Location.Path != "/oauth/consent" {
		t.Fatalf("after refused posts, want the consent page again: %d %v", p.StatusCode, p.Location)
	}

	// Deny: access_denied, with state and iss, and no code.
	p = post(ua, with("decision", "deny"))
	if p.StatusCode != http.StatusSeeOther || p.Location == nil {
		t.Fatalf("deny: %d\n%s", p.StatusCode, p.Body)
	}
	if q := p.Location.Query(); q.Get("error") != "access_denied" || q.Get("state") != "st" || q.Get("iss") != n.URL || q.Get("code") != "" ||
		!strings.HasPrefix(p.Location.String(), "http://127.0.0.1/cb?") {
		t.Errorf("deny redirect %s", p.Location)
	}
	// Denying remembers nothing.
	if p := ua.get(authURL); p.Location == nil || p.Location.Path != "/oauth/consent" {
		t.Errorf("after deny, want the consent page again: %v", p.Location)
	}
	// The page cannot be framed and is not cached (checked on the page
	// itself), and a GET of the POST-only decision does nothing.
	if p := ua.get(n.URL + "/oauth/consent"); p.StatusCode != 400 {
		t.Errorf("GET consent without a request: %d", p.StatusCode)
	}
}

// TestCodeExchangeErrors: the token endpoint's side of the code — RFC 6749
// §4.1.3 and §10.5, RFC 7636 §4.6 — and of refresh tokens (§6, RFC 9700
// §4.14). One code per row; a failed exchange spends it unless the client
// failed to authenticate.
func TestCodeExchangeErrors(t *testing.T) {
	n := startNode(t, nodeOptions{})
	reg := func(name string) registeredClient {
		return n.registerClient(map[string]any{"name": name, "scopes": []string{"openid", "read:invoices", "read:contacts"},
			"redirect_uris": []string{"http://127.0.0.1/cb", "http://127.0.0.1/other"}})
	}
	a, b := reg("A"), reg("B")
	ua := newUserAgent(t)
	endpoint := oauth2.Endpoint{AuthURL: n.URL + "/oauth/authorize", TokenURL: n.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}
	confA := oauth2.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret, Endpoint: endpoint,
		RedirectURL: "http://127.0.0.1/cb", Scopes: []string{"read:invoices", "read:contacts"}}

	// code runs an authorization; pkce adds an S256 challenge and returns
	// its verifier.
	code := func(pkce bool, opts ...oauth2.AuthCodeOption) (string, string) {
		t.Helper()
		var verifier string
		if pkce {
			verifier = oauth2.GenerateVerifier()
			opts = append(opts, oauth2.S256ChallengeOption(verifier))
		}
		cb := ua.authorize(confA.AuthCodeURL("s", opts...), "")
		return codeFrom(t, cb, "s", n.URL), verifier
	}
	exchange := func(c registeredClient, vals url.Values) (int, errorBody, map[string]any) {
		t.Helper()
		vals.Set("grant_type", "authorization_code")
		st, raw := postForm(t, n, "/oauth/token", c, vals)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return st, decodeError(t, raw), m
	}
	wantError := func(name string, st int, e errorBody, status int, code string) {
		t.Helper()
		if st != status || e.Error != code {
			t.Errorf("%s: %d %+v, want %d %s", name, st, e, status, code)
		}
	}
	redirect := "http://127.0.0.1/cb"

	t.Run("client authenticated before the code is spent", func(t *testing.T) {
		c, _ := code(false)
		st, e, _ := exchange(registeredClient{ClientID: a.ClientID, ClientSecret: "wrong"}, url.Values{"code": {c}, "redirect_uri": {redirect}})
		wantError("wrong secret", st, e, 401, "invalid_client")
		st, e, _ = exchange(registeredClient{ClientID: a.ClientID}, url.Values{"code": {c}, "redirect_uri": {redirect}})
		wantError("no secret", st, e, 401, "invalid_client")
		if st, _, m := exchange(a, url.Values{"code": {c}, "redirect_uri": {redirect}}); st != 200 || m["access_token"] == nil {
			t.Errorf("the code was spent by a failed client authentication: %d %v", st, m)
		}
	})
	t.Run("code reuse revokes what the code issued", func(t *testing.T) {
		c, _ := code(false, oauth2.SetAuthURLParam("scope", "openid read:invoices"))
		st, _, first := exchange(a, url.Values{"code": {c}, "redirect_uri": {redirect}})
		if st != 200 {
			t.Fatalf("first exchange: %d %v", st, first)
		}
		at := first["access_token"].(string)
		if resp, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", at, "biz_acme"); resp.StatusCode != 200 {
			t.Fatalf("first token: %d", resp.StatusCode)
		}
		// An identical exchange right after the winner is a duplicate
		// submission (two requests of one client racing): refused, and the
		// winner's tokens keep working (docs/deployment.md, "Faults").
		st, e, _ := exchange(a, url.Values{"code": {c}, "redirect_uri": {redirect}})
		wantError("duplicate exchange within the race leeway", st, e, 400, "invalid_grant")
		if resp, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", at, "biz_acme"); resp.StatusCode != 200 {
			t.Fatalf("a duplicate within the leeway revoked the winner's token: %d", resp.StatusCode)
		}
		// After the leeway (500 ms) the same request is a replay (RFC 6749
		// §4.1.2): refused, and it revokes everything the code issued.
		time.Sleep(600 * time.Millisecond)
		st, e, _ = exchange(a, url.Values{"code": {c}, "redirect_uri": {redirect}})
		wantError("replayed code", st, e, 400, "invalid_grant")
		resp, body := get(t, "GET", n.URL+"/api/v1/accounting/invoices", at, "biz_acme")
		if e := decodeError(t, body); resp.StatusCode != 401 || e.Error != "invalid_token" {
			t.Errorf("token of a replayed code: %d %+v", resp.StatusCode, e)
		}
		st, raw := postForm(t, n, "/oauth/token", a, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
		wantError("refresh token of a replayed code", st, decodeError(t, raw), 400, "invalid_grant")
	})
	for _, tc := range []struct {
		name   string
		pkce   bool
		opts   []oauth2.AuthCodeOption
		client registeredClient
		vals   func(verifier string) url.Values
	}{
		{name: "redirect_uri differs", vals: func(string) url.Values { return url.Values{"redirect_uri": {"http://127.0.0.1/other"}} }},
		{name: "redirect_uri missing though sent at authorize", vals: func(string) url.Values { return url.Values{} }},
		{name: "code of another client", client: b, vals: func(string) url.Values { return url.Values{"redirect_uri": {redirect}} }},
		{name: "wrong verifier", pkce: true, vals: func(string) url.Values {
			return url.Values{"redirect_uri": {redirect}, "code_verifier": {oauth2.GenerateVerifier()}}
		}},
		{name: "verifier missing", pkce: true, vals: func(string) url.Values { return url.Values{"redirect_uri": {redirect}} }},
		{name: "verifier without challenge (downgrade)", vals: func(string) url.Values {
			return url.Values{"redirect_uri": {redirect}, "code_verifier": {oauth2.GenerateVerifier()}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, verifier := code(tc.pkce, tc.opts...)
			client := tc.client
			if client.ClientID == "" {
				client = a
			}
			vals := tc.vals(verifier)
			vals.Set("code", c)
			st, e, _ := exchange(client, vals)
			wantError(tc.name, st, e, 400, "invalid_grant")
		})
	}
	t.Run("redirect_uri not registered, none sent at authorize", func(t *testing.T) {
		// Registered with one redirect URI, which the request may omit.
		one := n.registerClient(map[string]any{"name": "One", "scopes": []string{"read:invoices"}, "redirect_uris": []string{"http://127.0.0.1/cb"}})
		cb := ua.authorize(n.URL+"/oauth/authorize?"+url.Values{"response_type": {"code"}, "client_id": {one.ClientID}, "state": {"s"}}.Encode(), "")
		c := codeFrom(t, cb, "s", n.URL)
		st, e, _ := exchange(one, url.Values{"code": {c}, "redirect_uri": {"http://127.0.0.1/cb3"}})
		wantError("unregistered redirect_uri", st, e, 400, "invalid_grant")
	})
	t.Run("right verifier", func(t *testing.T) {
		c, verifier := code(true)
		if _, err := confA.Exchange(ctx(t), c, oauth2.VerifierOption(verifier)); err != nil {
			t.Errorf("exchange with the right verifier: %v", err)
		}
	})
	t.Run("unknown code", func(t *testing.T) {
		st, e, _ := exchange(a, url.Values{"code": {"not-a-code"}, "redirect_uri": {redirect}})
		wantError("unknown code", st, e, 400, "invalid_grant")
	})

	t.Run("refresh narrows, never widens", func(t *testing.T) {
		c, _ := code(false)
		tok, err := confA.Exchange(ctx(t), c)
		if err != nil {
			t.Fatal(err)
		}
		refresh := func(client registeredClient, rt, scope string) (int, []byte) {
			v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
			if scope != "" {
				v.Set("scope", scope)
			}
			return postForm(t, n, "/oauth/token", client, v)
		}
		st, raw := refresh(a, tok.RefreshToken, "read:invoices openid")
		wantError("widening", st, decodeError(t, raw), 400, "invalid_scope")
		st, raw = refresh(b, tok.RefreshToken, "")
		wantError("another client's refresh token", st, decodeError(t, raw), 400, "invalid_grant")
		// Neither refusal spent the token.
		st, raw = refresh(a, tok.RefreshToken, "read:invoices")
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		if st != 200 || m["scope"] != "read:invoices" || m["refresh_token"] == nil {
			t.Fatalf("narrowing refresh: %d %s", st, raw)
		}
		narrowed := m["access_token"].(string)
		if resp, _ := get(t, "GET", n.URL+"/api/v1/crm/contacts", narrowed, "biz_acme"); resp.StatusCode != 403 {
			t.Errorf("narrowed token reads contacts: %d", resp.StatusCode)
		}
		// The next refresh may ask for the original scopes again.
		st, raw = refresh(a, m["refresh_token"].(string), "")
		_ = json.Unmarshal(raw, &m)
		if st != 200 || m["scope"] != "read:invoices read:contacts" {
			t.Errorf("refresh after narrowing: %d %s", st, raw)
		}
	})
}
