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
)

// regRig is a rig with dynamic registration on under policy, a scope
// catalogue whose admin:all is not a third-party scope.
func regRig(t *testing.T, policy RegistrationPolicy) *rig {
	t.Helper()
	return newRig(t, Config{
		Scopes:           []Scope{{Name: "read:invoices"}, {Name: "write:invoices"}, {Name: "admin:all"}},
		ThirdPartyScopes: []string{"openid", "offline_access", "read:invoices", "write:invoices"},
		Registration:     &policy,
	})
}

// send sends a registration-endpoint request: body as JSON (a string is
// sent as is), with the bearer token when not empty, from addr when not
// empty.
func (r *rig) send(method, path string, body any, token, addr string) response {
	r.t.Helper()
	var text string
	switch b := body.(type) {
	case nil:
	case string:
		text = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			r.t.Fatal(err)
		}
		text = string(raw)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(text))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if addr != "" {
		req.RemoteAddr = addr + ":40000"
	}
	return r.do(req)
}

func publicMetadata() map[string]any {
	return map[string]any{
		"client_name": "Agent", "redirect_uris": []string{"http://127.0.0.1:33418/callback"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": "none", "scope": "read:invoices offline_access",
		"client_uri": "https://agent.example", "contacts": []string{"dev@agent.example"}, "software_id": "agent",
		"unknown_member": map[string]any{"ignored": true},
	}
}

func with(md map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range md {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestRegisterLifecycle(t *testing.T) {
	r := regRig(t, RegistrationPolicy{})
	resp := r.send(http.MethodPost, "/oauth/register", publicMetadata(), "", "")
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	if resp.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", resp.Header().Get("Cache-Control"))
	}
	b := resp.body
	id, _ := b["client_id"].(string)
	rat, _ := b["registration_access_token"].(string)
	uri, _ := b["registration_client_uri"].(string)
	if id == "" || len(rat) < 40 || uri != testIssuer+"/oauth/register/"+id || resp.Header().Get("Location") != uri {
		t.Fatalf("registration response %v", b)
	}
	if _, ok := b["client_secret"]; ok {
		t.Errorf("a public client got a secret: %v", b)
	}
	if b["scope"] != "read:invoices offline_access" || b["token_endpoint_auth_method"] != "none" ||
		b["client_uri"] != "https://agent.example" || b["software_id"] != "agent" || b["unknown_member"] != nil {
		t.Errorf("registered metadata %v", b)
	}
	c, err := r.s.tokens.Client(context.Background(), id)
	if err != nil || !c.Public || c.FirstParty || len(c.Businesses) != 0 {
		t.Fatalf("stored client %+v, %v", c, err)
	}
	// The admin API marks it; an operator's client is not marked.
	admin := func(method, path, body string) map[string]any {
		rec := httptest.NewRecorder()
		r.s.AdminHandler().ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code >= 300 {
			t.Fatalf("admin %s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		return v
	}
	operators := admin(http.MethodPost, "/oauthgate/clients", `{"name":"Ops","scopes":["read:invoices"]}`)
	for view, want := range map[string]bool{id: true, operators["client_id"].(string): false} {
		if got := admin(http.MethodGet, "/oauthgate/clients/"+view, "")["dynamically_registered"]; got != want {
			t.Fatalf("admin %s: dynamically_registered %v, want %v", view, got, want)
		}
	}
	reg, err := r.s.store.GetRegistration(context.Background(), id)
	if err != nil || string(reg.TokenHash) != string(tokens.HashSecret(rat)) {
		t.Fatalf("the registration stores the token's hash: %+v, %v", reg, err)
	}

	path := "/oauth/register/" + id
	got := r.send(http.MethodGet, path, nil, rat, "")
	// RFC 7592 §3: registration_access_token and registration_client_uri
	// are REQUIRED in the client information response.
	if got.Code != http.StatusOK || got.body["client_id"] != id || got.body["registration_access_token"] != rat ||
		got.body["registration_client_uri"] != uri || got.body["client_secret"] != nil || got.body["client_uri"] != "https://agent.example" {
		t.Fatalf("read: %d %v", got.Code, got.body)
	}

	// Update: from public to confidential issues a secret, once.
	upd := with(publicMetadata(), "client_id", id, "client_name", "Agent 2", "token_endpoint_auth_method", "client_secret_post")
	got = r.send(http.MethodPut, path, upd, rat, "")
	secret, _ := got.body["client_secret"].(string)
	if got.Code != http.StatusOK || got.body["client_name"] != "Agent 2" || secret == "" || got.body["client_secret_expires_at"] != float64(0) ||
		got.body["registration_access_token"] != rat {
		t.Fatalf("update: %d %v", got.Code, got.body)
	}
	if c, _ := r.s.tokens.Client(context.Background(), id); c.Public || !tokens.SecretMatches(c.SecretHash, secret) || c.Name != "Agent 2" {
		t.Fatalf("updated client %+v", c)
	}
	// The same token still manages it; a second update keeps the secret.
	got = r.send(http.MethodPut, path, with(upd, "client_secret", secret, "client_name", "Agent 3"), rat, "")
	if got.Code != http.StatusOK || got.body["client_secret"] != nil {
		t.Fatalf("second update: %d %v", got.Code, got.body)
	}
	if c, _ := r.s.tokens.Client(context.Background(), id); !tokens.SecretMatches(c.SecretHash, secret) {
		t.Fatal("a second update changed the secret")
	}

	got = r.send(http.MethodDelete, path, nil, rat, "")
	if got.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", got.Code, got.Body)
	}
	if _, err := r.s.tokens.Client(context.Background(), id); err == nil {
		t.Fatal("the client survived its deletion")
	}
	got = r.send(http.MethodGet, path, nil, rat, "")
	if got.Code != http.StatusUnauthorized || got.errorCode() != "invalid_token" {
		t.Fatalf("read after delete: %d %v", got.Code, got.body)
	}
}

// A self-registered client runs the code flow like any other.
func TestRegisteredClientGetsTokens(t *testing.T) {
	r := regRig(t, RegistrationPolicy{})
	resp := r.send(http.MethodPost, "/oauth/register", with(publicMetadata(), "redirect_uris", []string{rigRedirect}), "", "")
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	id := resp.body["client_id"].(string)
	code := r.code(id, []string{"read:invoices"}, rigChallenge, true)
	tok := r.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rigRedirect},
		"client_id": {id}, "code_verifier": {rigVerifier}}, "")
	if tok.Code != http.StatusOK || tok.body["access_token"] == nil {
		t.Fatalf("token: %d %v", tok.Code, tok.body)
	}
}

func TestRegisterRejections(t *testing.T) {
	open := RegistrationPolicy{RateLimit: -1}
	publicOnly := RegistrationPolicy{RateLimit: -1, ClientTypes: []string{"public"}}
	confOnly := RegistrationPolicy{RateLimit: -1, ClientTypes: []string{"confidential"}}
	narrow := RegistrationPolicy{RateLimit: -1, Scopes: []string{"read:invoices"}}
	md := publicMetadata()
	conf := with(md, "token_endpoint_auth_method", "client_secret_basic")
	many := make([]string, MaxRedirectURIs+1)
	for i := range many {
		many[i] = "https://agent.example/cb" + strings.Repeat("x", i)
	}
	for _, tc := range []struct {
		name        string
		policy      RegistrationPolicy
		body        any
		contentType string
		status      int
		code        string
	}{
		{"redirect URI with a fragment", open, with(md, "redirect_uris", []string{"https://agent.example/cb#x"}), "", 400, "invalid_redirect_uri"},
		{"redirect URI with a wildcard", open, with(md, "redirect_uris", []string{"https://*.agent.example/cb"}), "", 400, "invalid_redirect_uri"},
		{"plain http off loopback", open, with(md, "redirect_uris", []string{"http://agent.example/cb"}), "", 400, "invalid_redirect_uri"},
		{"relative redirect URI", open, with(md, "redirect_uris", []string{"/cb"}), "", 400, "invalid_redirect_uri"},
		{"private-use scheme for a confidential client", open, with(conf, "redirect_uris", []string{"com.agent.app:/cb"}), "", 400, "invalid_redirect_uri"},
		{"no redirect URI for the code grant", open, with(md, "redirect_uris", nil), "", 400, "invalid_redirect_uri"},
		{"too many redirect URIs", open, with(md, "redirect_uris", many), "", 400, "invalid_redirect_uri"},
		{"the same redirect URI twice", open, with(md, "redirect_uris", []string{"https://a.example/cb", "https://a.example/cb"}), "", 400, "invalid_redirect_uri"},
		{"post-logout URI with a fragment", open, with(md, "post_logout_redirect_uris", []string{"https://a.example/out#x"}), "", 400, "invalid_client_metadata"},
		{"a scope outside third_party_scopes", open, with(md, "scope", "read:invoices admin:all"), "", 400, "invalid_client_metadata"},
		{"a scope not in the catalogue", open, with(md, "scope", "delete:everything"), "", 400, "invalid_client_metadata"},
		{"a scope outside the policy", narrow, with(md, "scope", "write:invoices"), "", 400, "invalid_client_metadata"},
		{"client_credentials not allowed", open, with(conf, "grant_types", []string{"client_credentials"}, "response_types", []string{}), "", 400, "invalid_client_metadata"},
		{"an unknown grant type", open, with(md, "grant_types", []string{"password"}), "", 400, "invalid_client_metadata"},
		{"implicit response type", open, with(md, "response_types", []string{"token"}), "", 400, "invalid_client_metadata"},
		{"grant and response types disagree", open, with(md, "grant_types", []string{"refresh_token"}), "", 400, "invalid_client_metadata"},
		{"private_key_jwt", open, with(md, "token_endpoint_auth_method", "private_key_jwt"), "", 400, "invalid_client_metadata"},
		{"a public client where only confidential may register", confOnly, md, "", 400, "invalid_client_metadata"},
		{"a confidential client where only public may register", publicOnly, conf, "", 400, "invalid_client_metadata"},
		{"an id_token algorithm the server lacks", open, with(md, "id_token_signed_response_alg", "HS256"), "", 400, "invalid_client_metadata"},
		{"a name too long", open, with(md, "client_name", strings.Repeat("n", 201)), "", 400, "invalid_client_metadata"},
		{"a name with a right-to-left override", open, with(md, "client_name", "Acme \u202eppa"), "", 400, "invalid_client_metadata"},
		{"a name with a zero-width space", open, with(md, "client_name", "Pay\u200bPal"), "", 400, "invalid_client_metadata"},
		{"a name with a line break", open, with(md, "client_name", "Agent\nOfficial"), "", 400, "invalid_client_metadata"},
		{"client_uri not a web URL", open, with(md, "client_uri", "javascript:alert(1)"), "", 400, "invalid_client_metadata"},
		{"logo_uri with a fragment", open, with(md, "logo_uri", "https://a.example/logo.png#x"), "", 400, "invalid_client_metadata"},
		{"too many contacts", open, with(md, "contacts", strings.Split(strings.Repeat("a@b.example ", 11)[:131], " ")), "", 400, "invalid_client_metadata"},
		{"redirect_uris not an array", open, with(md, "redirect_uris", "https://a.example/cb"), "", 400, "invalid_client_metadata"},
		{"scope not a string", open, with(md, "scope", []string{"read:invoices"}), "", 400, "invalid_client_metadata"},
		{"not JSON", open, `{"redirect_uris": [`, "", 400, "invalid_client_metadata"},
		{"a JSON array", open, `[{"redirect_uris": ["https://a.example/cb"]}]`, "", 400, "invalid_client_metadata"},
		{"JSON null", open, `null`, "", 400, "invalid_client_metadata"},
		{"a form instead of JSON", open, `redirect_uris=https://a.example/cb`, "application/x-www-form-urlencoded", 415, "invalid_client_metadata"},
		{"a body too large", open, `{"client_name": "` + strings.Repeat("x", maxRegistrationBody) + `"}`, "", 413, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := regRig(t, tc.policy)
			var text string
			if s, ok := tc.body.(string); ok {
				text = s
			} else {
				raw, _ := json.Marshal(tc.body)
				text = string(raw)
			}
			req := httptest.NewRequest(http.MethodPost, "/oauth/register", strings.NewReader(text))
			ct := tc.contentType
			if ct == "" {
				ct = "application/json; charset=utf-8"
			}
			req.Header.Set("Content-Type", ct)
			resp := r.do(req)
			if resp.Code != tc.status || resp.errorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", resp.Code, resp.Body, tc.status, tc.code)
			}
			if d, _ := resp.body["error_description"].(string); d == "" {
				t.Error("no error_description")
			}
			if cs, _ := r.s.store.ListClients(context.Background()); len(cs) != 0 {
				t.Fatalf("a refused registration stored %d clients", len(cs))
			}
		})
	}
}

func TestRegisterInitialAccessToken(t *testing.T) {
	r := regRig(t, RegistrationPolicy{InitialAccessTokenHashes: [][]byte{tokens.HashSecret("other"), tokens.HashSecret("iat-secret")}})
	for _, tc := range []struct {
		name, header string
		status       int
		code         string
	}{
		{"none", "", 401, "invalid_token"},
		{"wrong", "Bearer iat-wrong", 401, "invalid_token"},
		{"not bearer", "Basic aWF0LXNlY3JldA==", 400, "invalid_request"},
		{"right", "Bearer iat-secret", 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(publicMetadata())
			req := httptest.NewRequest(http.MethodPost, "/oauth/register", strings.NewReader(string(raw)))
			req.Header.Set("Content-Type", "application/json")
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp := r.do(req)
			if resp.Code != tc.status || resp.errorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", resp.Code, resp.Body, tc.status, tc.code)
			}
			if ch := resp.Header().Get("WWW-Authenticate"); tc.status == 401 && !strings.HasPrefix(ch, "Bearer ") {
				t.Errorf("challenge %q", ch)
			}
			if strings.Contains(resp.Body.String(), "iat-") {
				t.Error("the answer echoes the token")
			}
		})
	}
}

func TestRegisterRateLimit(t *testing.T) {
	r := regRig(t, RegistrationPolicy{RateLimit: 2, RateWindow: time.Minute})
	for i := 0; i < 2; i++ {
		// Refused registrations count too: a flood of bad ones is a flood.
		if resp := r.send(http.MethodPost, "/oauth/register", `{`, "", "198.51.100.7"); resp.Code != 400 {
			t.Fatalf("attempt %d: %d %s", i, resp.Code, resp.Body)
		}
	}
	resp := r.send(http.MethodPost, "/oauth/register", publicMetadata(), "", "198.51.100.7")
	if resp.Code != http.StatusTooManyRequests || resp.Header().Get("Retry-After") == "" || resp.errorCode() != "invalid_request" {
		t.Fatalf("third attempt: %d %v %s", resp.Code, resp.Header(), resp.Body)
	}
	// The same IPv6 /64 is one address; another address is not limited.
	for _, addr := range []string{"[2001:db8::1]", "[2001:db8::2]"} {
		resp = r.send(http.MethodPost, "/oauth/register", publicMetadata(), "", addr)
		if resp.Code != http.StatusCreated {
			t.Fatalf("%s: %d %s", addr, resp.Code, resp.Body)
		}
	}
	if resp = r.send(http.MethodPost, "/oauth/register", publicMetadata(), "", "[2001:db8::ffff]"); resp.Code != http.StatusTooManyRequests {
		t.Fatalf("third from the same /64: %d", resp.Code)
	}
	r.clock.Advance(time.Minute)
	if resp = r.send(http.MethodPost, "/oauth/register", publicMetadata(), "", "198.51.100.7"); resp.Code != http.StatusCreated {
		t.Fatalf("after the window: %d %s", resp.Code, resp.Body)
	}
}

func TestRegistrationManagementRejections(t *testing.T) {
	r := regRig(t, RegistrationPolicy{RateLimit: -1})
	register := func() (string, string) {
		resp := r.send(http.MethodPost, "/oauth/register", publicMetadata(), "", "")
		if resp.Code != http.StatusCreated {
			t.Fatalf("register: %d %s", resp.Code, resp.Body)
		}
		return resp.body["client_id"].(string), resp.body["registration_access_token"].(string)
	}
	id, rat := register()
	other, otherRAT := register()
	path := "/oauth/register/" + id
	upd := with(publicMetadata(), "client_id", id)
	for _, tc := range []struct {
		name, method, path string
		body               any
		token              string
		status             int
		code               string
	}{
		{"no token", "GET", path, nil, "", 401, "invalid_token"},
		{"a wrong token", "GET", path, nil, rat + "x", 401, "invalid_token"},
		{"another client's token", "GET", path, nil, otherRAT, 401, "invalid_token"},
		{"an operator's client", "GET", "/oauth/register/app", nil, rat, 401, "invalid_token"},
		{"an unknown client", "DELETE", "/oauth/register/nobody", nil, rat, 401, "invalid_token"},
		{"a wrong token deletes nothing", "DELETE", path, nil, otherRAT, 401, "invalid_token"},
		{"POST on a client", "POST", path, upd, rat, 405, "invalid_request"},
		{"update without client_id", "PUT", path, publicMetadata(), rat, 400, "invalid_client_metadata"},
		{"update naming another client", "PUT", path, with(upd, "client_id", other), rat, 400, "invalid_client_metadata"},
		{"update sending the access token", "PUT", path, with(upd, "registration_access_token", rat), rat, 400, "invalid_client_metadata"},
		{"update sending client_id_issued_at", "PUT", path, with(upd, "client_id_issued_at", 1), rat, 400, "invalid_client_metadata"},
		{"update with a secret for a public client", "PUT", path, with(upd, "client_secret", "guess"), rat, 400, "invalid_client_metadata"},
		{"update outside the policy", "PUT", path, with(upd, "redirect_uris", []string{"https://a.example/*"}), rat, 400, "invalid_redirect_uri"},
		{"update with a scope outside the policy", "PUT", path, with(upd, "scope", "admin:all"), rat, 400, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.send(tc.method, tc.path, tc.body, tc.token, "")
			if resp.Code != tc.status || resp.errorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", resp.Code, resp.Body, tc.status, tc.code)
			}
			if tc.status == 401 && !strings.Contains(resp.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("no Bearer challenge: %v", resp.Header())
			}
		})
	}
	// Nothing refused changed the client.
	got := r.send(http.MethodGet, path, nil, rat, "")
	if got.Code != 200 || got.body["client_name"] != "Agent" || got.body["scope"] != "read:invoices offline_access" {
		t.Fatalf("after the refusals: %d %v", got.Code, got.body)
	}
}

func TestRegistrationOff(t *testing.T) {
	off := newRig(t, Config{})
	rec := httptest.NewRecorder()
	if off.s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/oauth/register", strings.NewReader("{}"))) {
		t.Fatalf("registration served while off: %d", rec.Code)
	}
	if md := off.get("/.well-known/oauth-authorization-server"); md.body["registration_endpoint"] != nil {
		t.Fatalf("registration_endpoint advertised while off: %v", md.body["registration_endpoint"])
	}
	on := regRig(t, RegistrationPolicy{})
	for _, doc := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		if md := on.get(doc); md.body["registration_endpoint"] != testIssuer+"/oauth/register" {
			t.Fatalf("%s: registration_endpoint %v", doc, md.body["registration_endpoint"])
		}
	}
	if resp := on.get("/oauth/register"); resp.Code != http.StatusMethodNotAllowed || resp.Header().Get("Allow") != "POST" {
		t.Fatalf("GET /oauth/register: %d %v", resp.Code, resp.Header())
	}
}

func TestRegistrationPolicyChecked(t *testing.T) {
	for _, p := range []RegistrationPolicy{
		{ClientTypes: []string{"native"}},
		{GrantTypes: []string{"password"}},
		{Scopes: []string{"admin:all"}},
		{InitialAccessTokenHashes: [][]byte{[]byte("short")}},
	} {
		cfg := Config{Issuer: testIssuer, Scopes: []Scope{{Name: "read:invoices"}, {Name: "admin:all"}},
			ThirdPartyScopes: []string{"read:invoices"}, Registration: &p}
		if _, err := New(cfg, nil, nil); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
}

// A self-registered app is shown as unverified on the consent page; an
// operator's client is not.
func TestConsentMarksUnverified(t *testing.T) {
	r := regRig(t, RegistrationPolicy{})
	resp := r.send(http.MethodPost, "/oauth/register", with(publicMetadata(), "redirect_uris", []string{rigRedirect}), "", "")
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	ctx := context.Background()
	acct := &account{ID: r.user.ID, Name: "U", Email: "u@example.com"}
	for _, tc := range []struct {
		id   string
		want bool
	}{{resp.body["client_id"].(string), true}, {"app", false}} {
		c, err := r.s.tokens.Client(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		v := r.s.consentView(ctx, &authzRequest{client: c, redirectURI: rigRedirect, scopes: []string{"read:invoices"}}, acct, "h", "csrf")
		if v.Unverified != tc.want {
			t.Fatalf("%s: Unverified %v, want %v", tc.id, v.Unverified, tc.want)
		}
		rec := httptest.NewRecorder()
		r.s.render(rec, http.StatusOK, "consent", pageData{Title: "t", Consent: v})
		if got := strings.Contains(rec.Body.String(), "Unverified app."); got != tc.want {
			t.Fatalf("%s: page says unverified: %v, want %v", tc.id, got, tc.want)
		}
	}
}
