package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// platform is a small stand-in for a platform with its own accounts: a
// sign-in page that sets its session cookie and returns to the address it
// was given, and the session endpoint oauthgate asks.
type platform struct {
	*httptest.Server
	down atomic.Bool // the session endpoint fails
	// bizDown makes the businesses endpoint fail; withdrawn is a business
	// the platform no longer grants Alice there.
	bizDown   atomic.Bool
	withdrawn atomic.Value
	bizAsked  atomic.Int64
	sid       atomic.Bool // the session endpoint names the sign-in (sid)
	mu        sync.Mutex
	// sessions are the platform's live sign-ins, by cookie value; each
	// sign-in makes a new one.
	sessions map[string]bool
	// cookies are the Cookie headers the session endpoint received.
	cookies []string
	// signIns are the query strings the sign-in page received.
	signIns []url.Values
}

func newPlatform(t *testing.T) *platform {
	p := &platform{sessions: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sign-in", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.signIns = append(p.signIns, r.URL.Query())
		value := fmt.Sprintf("alice-session-%d", len(p.signIns))
		p.sessions[value] = true
		p.mu.Unlock()
		// The user signs in here (credentials are the platform's business).
		http.SetCookie(w, &http.Cookie{Name: "platform_session", Value: value, Path: "/", HttpOnly: true})
		http.Redirect(w, r, r.URL.Query().Get("next"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /sign-out", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("platform_session"); err == nil {
			p.mu.Lock()
			delete(p.sessions, c.Value)
			p.mu.Unlock()
		}
		http.SetCookie(w, &http.Cookie{Name: "platform_session", Path: "/", MaxAge: -1})
		w.WriteHeader(http.StatusNoContent)
	})
	// A cookie that has nothing to do with the sign-in.
	mux.HandleFunc("GET /theme", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: r.URL.Query().Get("v"), Path: "/"})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/session", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.cookies = append(p.cookies, r.Header.Get("Cookie"))
		p.mu.Unlock()
		if p.down.Load() {
			http.Error(w, "database is down", http.StatusInternalServerError)
			return
		}
		c, err := r.Cookie("platform_session")
		p.mu.Lock()
		live := err == nil && p.sessions[c.Value]
		p.mu.Unlock()
		if !live {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ps := map[string]any{
			"id": "plat_alice", "email": "alice@platform.example", "name": "Alice Example",
			"businesses":       []map[string]string{{"id": "biz_alpha", "name": "Alpha Ltd"}, {"id": "biz_beta", "name": "Beta GmbH"}},
			"current_business": "biz_alpha",
		}
		if p.sid.Load() {
			ps["sid"] = "sid-" + c.Value
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ps)
	})
	mux.HandleFunc("GET /api/businesses", func(w http.ResponseWriter, r *http.Request) {
		p.bizAsked.Add(1)
		if p.bizDown.Load() {
			http.Error(w, "database is down", http.StatusInternalServerError)
			return
		}
		if r.URL.Query().Get("user_id") != "plat_alice" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var bs []map[string]string
		for _, b := range []map[string]string{{"id": "biz_alpha", "name": "Alpha Ltd"}, {"id": "biz_beta", "name": "Beta GmbH"}} {
			if w, _ := p.withdrawn.Load().(string); w != b["id"] {
				bs = append(bs, b)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"businesses": bs})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

// TestDelegatedIdentity: with `identity delegated`, a signed-out browser
// goes to the platform's sign-in page with the full OAuth URL as the
// return address; the platform's session endpoint, asked with the
// browser's cookies, says who is signed in and which businesses they
// administer.
func TestDelegatedIdentity(t *testing.T) {
	plat := newPlatform(t)
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/delegated.Caddyfile", Env: []string{
		"PLATFORM_SESSION_URL=" + plat.URL + "/api/session",
		"PLATFORM_SIGN_IN_URL=" + plat.URL + "/sign-in?from=oauth",
	}})
	c := n.registerClient(map[string]any{"name": "Partner App", "scopes": []string{"openid", "read:invoices"},
		"redirect_uris": []string{"http://127.0.0.1/cb"}})
	provider, err := oidc.NewProvider(ctx(t), n.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: "http://127.0.0.1/cb", Scopes: []string{"openid", "read:invoices"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-1"))

	ua := newUserAgent(t)
	p := ua.get(authURL)
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasPrefix(p.Location.String(), plat.URL+"/sign-in?") {
		t.Fatalf("signed out: %d %v, want the platform's sign-in page", p.StatusCode, p.Location)
	}
	if p.Location.Query().Get("from") != "oauth" || p.Location.Query().Get("next") != authURL {
		t.Fatalf("sign-in address %s does not carry the full OAuth URL %s", p.Location, authURL)
	}
	// The platform signs the user in and sends the browser back.
	p = ua.get(p.Location.String())
	if p.Location == nil || p.Location.String() != authURL {
		t.Fatalf("platform sign-in returned to %v", p.Location)
	}
	p = ua.get(authURL)
	if p.Location == nil || p.Location.Path != "/oauth/consent" {
		t.Fatalf("signed in at the platform: %d %v\n%s", p.StatusCode, p.Location, p.Body)
	}
	p = ua.get(p.Location.String())
	for _, want := range []string{"Alice Example", "alice@platform.example", "Alpha Ltd", "Beta GmbH", "Example Platform", "Partner App"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(p.Body, "Not you?") {
		t.Error("the consent page offers oauthgate's own sign-in under delegated identity")
	}
	p = ua.submit(p, url.Values{"decision": {"allow"}, "business_id": {"biz_beta"}})
	tok, err := conf.Exchange(ctx(t), codeFrom(t, p.Location, "st", n.URL), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: c.ClientID}).Verify(ctx(t), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims idClaims
	_ = idt.Claims(&claims)
	if claims.Sub != "plat_alice" || claims.UserName != "Alice Example" || claims.DefaultBusinessID != "biz_alpha" ||
		!slices.Equal(claims.BusinessIDs, []string{"biz_alpha", "biz_beta"}) || claims.AuthorizedBusinessID != "biz_beta" || idt.Nonce != "n-1" {
		t.Errorf("id_token claims %+v", claims)
	}
	if resp, body := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok.AccessToken, "biz_beta"); resp.StatusCode != 200 ||
		!strings.Contains(string(body), `"subject":"plat_alice"`) {
		t.Errorf("gateway: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok.AccessToken, "biz_alpha"); resp.StatusCode != 403 {
		t.Errorf("the other business: %d", resp.StatusCode)
	}
	if ui, err := provider.UserInfo(ctx(t), oauth2.StaticTokenSource(tok)); err != nil || ui.Email != "alice@platform.example" {
		t.Errorf("userinfo: %v %+v", err, ui)
	}

	// The platform saw its own cookie and none of oauthgate's.
	plat.mu.Lock()
	seen := slices.Clone(plat.cookies)
	plat.mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("the session endpoint was never asked")
	}
	for _, h := range seen[1:] {
		if !strings.Contains(h, "platform_session=alice-session") || strings.Contains(h, "oauthgate_") {
			t.Errorf("session endpoint got Cookie %q", h)
		}
	}

	// prompt=login sends the user to the platform again, asking it to
	// authenticate afresh, and the return address no longer asks.
	p = ua.get(conf.AuthCodeURL("st2", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login")))
	if p.Location == nil || !strings.HasPrefix(p.Location.String(), plat.URL+"/sign-in?") || p.Location.Query().Get("prompt") != "login" ||
		strings.Contains(p.Location.Query().Get("next"), "prompt=login") {
		t.Errorf("prompt=login: %v", p.Location)
	}
	// The platform's sign-in page is the only one: oauthgate serves none.
	if p := ua.get(n.URL + "/oauth/sign-in"); p.StatusCode != 404 {
		t.Errorf("built-in sign-in page under delegated identity: %d", p.StatusCode)
	}
	// The platform failing is a temporary error for the client, not a
	// sign-in prompt.
	plat.down.Store(true)
	p = ua.get(authURL)
	if p.Location == nil || p.Location.Query().Get("error") != "temporarily_unavailable" || p.Location.Query().Get("iss") != n.URL {
		t.Errorf("platform down: %d %v", p.StatusCode, p.Location)
	}
	plat.down.Store(false)
	// Signed out at the platform: back to its sign-in page.
	if p := newUserAgent(t).get(authURL); p.Location == nil || !strings.HasPrefix(p.Location.String(), plat.URL+"/sign-in?") {
		t.Errorf("signed out: %v", p.Location)
	}
}

// TestDelegatedConsentBoundToSignIn: with `identity delegated` the consent
// form is bound to the platform sign-in it was shown to, as it is to the
// session with the built-in directory. A form loaded before a sign-out
// and a new sign-in of the same user is refused after them; a cookie that
// has nothing to do with the sign-in changes nothing when the platform
// names its sign-ins (sid).
func TestDelegatedConsentBoundToSignIn(t *testing.T) {
	plat := newPlatform(t)
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/delegated.Caddyfile", Env: []string{
		"PLATFORM_SESSION_URL=" + plat.URL + "/api/session",
		"PLATFORM_SIGN_IN_URL=" + plat.URL + "/sign-in",
	}})
	signIn := func(t *testing.T, ua *userAgent) {
		t.Helper()
		if p := ua.get(plat.URL + "/sign-in?next=/"); p.StatusCode != http.StatusSeeOther {
			t.Fatalf("platform sign-in: %d", p.StatusCode)
		}
	}
	signOutAndIn := func(t *testing.T, ua *userAgent) {
		t.Helper()
		if p := ua.get(plat.URL + "/sign-out"); p.StatusCode != http.StatusNoContent {
			t.Fatalf("platform sign-out: %d", p.StatusCode)
		}
		signIn(t, ua)
	}
	// consentForm loads the consent page for a new client, which the user
	// has not allowed yet.
	consentForm := func(t *testing.T, ua *userAgent) *page {
		t.Helper()
		c := n.registerClient(map[string]any{"name": "Partner App", "scopes": []string{"read:invoices"},
			"grant_types": []string{"authorization_code"}, "redirect_uris": []string{"http://127.0.0.1/cb"}})
		p := ua.get(n.URL + "/oauth/authorize?" + url.Values{"response_type": {"code"}, "client_id": {c.ClientID},
			"redirect_uri": {"http://127.0.0.1/cb"}, "scope": {"read:invoices"}, "state": {"st"}}.Encode())
		if p.Location == nil || p.Location.Path != "/oauth/consent" {
			t.Fatalf("authorize: %d %v", p.StatusCode, p.Location)
		}
		if p = ua.get(p.Location.String()); p.StatusCode != 200 || !strings.Contains(p.Body, "csrf_token") {
			t.Fatalf("consent page: %d", p.StatusCode)
		}
		return p
	}
	allow := func(ua *userAgent, form *page) *page {
		return ua.submit(form, url.Values{"decision": {"allow"}, "business_id": {"biz_alpha"}})
	}
	granted := func(p *page) bool {
		return p.StatusCode == http.StatusSeeOther && p.Location != nil && p.Location.Host == "127.0.0.1" && p.Location.Query().Get("code") != ""
	}

	for _, withSID := range []bool{false, true} {
		name := "cookies"
		if withSID {
			name = "sid"
		}
		t.Run(name, func(t *testing.T) {
			plat.sid.Store(withSID)
			ua := newUserAgent(t)
			signIn(t, ua)
			stale := consentForm(t, ua)
			signOutAndIn(t, ua)
			if p := allow(ua, stale); p.StatusCode != http.StatusForbidden || granted(p) {
				t.Errorf("a form of the previous sign-in: %d %v, want 403", p.StatusCode, p.Location)
			}
			// The form of the current sign-in works.
			if p := allow(ua, consentForm(t, ua)); !granted(p) {
				t.Errorf("the current sign-in's form: %d %v", p.StatusCode, p.Location)
			}
			if withSID {
				// A cookie unrelated to the sign-in does not matter when the
				// platform names the sign-in.
				form := consentForm(t, ua)
				ua.get(plat.URL + "/theme?v=dark")
				if p := allow(ua, form); !granted(p) {
					t.Errorf("after an unrelated cookie changed: %d %v", p.StatusCode, p.Location)
				}
			}
		})
	}
}

// TestDelegatedRefreshAsksPlatform is issue 9 item 16: with businesses_url
// set, every refresh asks the platform (server to server, cached 1s here)
// whether the user still administers the grant's business. A business
// the platform withdrew stops refreshing within the cache time and the
// grant is revoked; while the platform cannot answer, refreshes are 503
// temporarily_unavailable and spend nothing.
func TestDelegatedRefreshAsksPlatform(t *testing.T) {
	plat := newPlatform(t)
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/delegated.Caddyfile", Env: []string{
		"PLATFORM_SESSION_URL=" + plat.URL + "/api/session",
		"PLATFORM_SIGN_IN_URL=" + plat.URL + "/sign-in",
		"PLATFORM_BUSINESSES_URL=" + plat.URL + "/api/businesses",
	}})
	c := n.registerClient(map[string]any{"name": "Partner App", "scopes": []string{"read:invoices"},
		"redirect_uris": []string{"http://127.0.0.1/cb"}})
	conf := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: "http://127.0.0.1/cb",
		Scopes: []string{"read:invoices"}, Endpoint: oauth2.Endpoint{AuthURL: n.URL + "/oauth/authorize", TokenURL: n.URL + "/oauth/token"}}
	verifier := oauth2.GenerateVerifier()
	ua := newUserAgent(t)
	p := ua.get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	p = ua.get(p.Location.String()) // the platform signs Alice in
	p = ua.get(p.Location.String()) // authorize: to consent
	p = ua.submit(ua.get(p.Location.String()), url.Values{"decision": {"allow"}, "business_id": {"biz_beta"}})
	tok, err := conf.Exchange(ctx(t), codeFrom(t, p.Location, "st", n.URL), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt string) (int, map[string]any) {
		t.Helper()
		resp, err := fast.PostForm(n.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
			"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	asked := plat.bizAsked.Load()
	st, body := refresh(tok.RefreshToken)
	if st != http.StatusOK || plat.bizAsked.Load() == asked {
		t.Fatalf("refresh while the platform grants the business: %d %v (platform asked: %v)", st, body["error"], plat.bizAsked.Load() > asked)
	}
	rt := body["refresh_token"].(string)

	// The platform cannot answer: refused, 503, nothing spent.
	plat.bizDown.Store(true)
	time.Sleep(1100 * time.Millisecond) // past the cache
	if st, body := refresh(rt); st != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Errorf("refresh while the platform is down: %d %v, want 503 temporarily_unavailable", st, body)
	}
	plat.bizDown.Store(false)
	st, body = refresh(rt)
	if st != http.StatusOK {
		t.Fatalf("the same refresh once the platform is back: %d %v", st, body)
	}
	rt, access := body["refresh_token"].(string), body["access_token"].(string)

	// The platform withdraws the business: the refresh fails within the
	// cache time and the grant, with its access tokens, is revoked.
	plat.withdrawn.Store("biz_beta")
	withdrawn := time.Now()
	var took time.Duration
	for {
		st, body = refresh(rt)
		if st != http.StatusOK {
			took = time.Since(withdrawn)
			break
		}
		if time.Since(withdrawn) > 5*time.Second {
			t.Fatal("refreshes go on working 5s after the platform withdrew the business")
		}
		rt = body["refresh_token"].(string)
		time.Sleep(50 * time.Millisecond)
	}
	if st != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("refresh after the withdrawal: %d %v, want 400 invalid_grant", st, body)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("the withdrawn business refreshed for %v, past the 1s cache", took)
	}
	t.Logf("a business the platform withdrew stopped refreshing %v later (businesses_cache 1s)", took.Round(time.Millisecond))
	if _, ok := waitUntil(2*time.Second, func() bool {
		resp, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", access, "biz_beta")
		return resp.StatusCode == http.StatusUnauthorized
	}); !ok {
		t.Error("the grant's access token still works after the refresh found the business withdrawn")
	}
}
