package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// accountRig is the rig with a signed-in browser and a CSRF cookie.
type accountRig struct {
	*rig
	session, csrf *http.Cookie
}

func newAccountRig(t *testing.T) *accountRig {
	return newAccountRigWith(t, Config{})
}

func newAccountRigWith(t *testing.T, cfg Config) *accountRig {
	r := newRig(t, cfg)
	return &accountRig{rig: r, session: r.signIn(), csrf: &http.Cookie{Name: r.s.cookieName(csrfCookie), Value: testCSRFSecret}}
}

// grant runs the code flow of "app" for business b1 and returns the new
// grant's id and tokens.
func (r *accountRig) grant(scopes ...string) (gid, access, refresh string) {
	r.t.Helper()
	resp := r.exchange(r.code("app", scopes, "", true))
	if resp.Code != http.StatusOK {
		r.t.Fatalf("exchange: %d %v", resp.Code, resp.body)
	}
	access, _ = resp.body["access_token"].(string)
	refresh, _ = resp.body["refresh_token"].(string)
	claims, err := r.s.tokens.Verify(access)
	if err != nil {
		r.t.Fatal(err)
	}
	return claims.GrantID, access, refresh
}

// page GETs the connected-apps page (query appended) from the browser.
func (r *accountRig) page(query string, signedIn bool) response {
	r.t.Helper()
	cookies := []*http.Cookie{r.csrf}
	if signedIn {
		cookies = append(cookies, r.session)
	}
	return r.get("/oauth/account"+query, cookies...)
}

// post sends the Disconnect form with the cookies given.
func (r *accountRig) post(method string, form url.Values, cookies ...*http.Cookie) response {
	r.t.Helper()
	req := httptest.NewRequest(method, "/oauth/account", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return r.do(req)
}

// csrfToken is the page's Disconnect token for the rig's session.
func (r *accountRig) csrfToken() string {
	r.t.Helper()
	body := r.page("", true).Body.String()
	// The Disconnect forms', not the footer's sign-out form's.
	f := hiddenFields(body[:strings.Index(body, "<footer")])
	if f.Get("csrf_token") == "" {
		r.t.Fatal("no CSRF token on the connected-apps page")
	}
	return f.Get("csrf_token")
}

func (r *accountRig) live(gid string) bool {
	r.t.Helper()
	g, err := r.s.store.GetGrant(context.Background(), gid)
	if err != nil {
		r.t.Fatal(err)
	}
	return g.RevokedAt.IsZero()
}

// TestAccountPage: a signed-in user sees each app with a live grant once
// per business, with its scopes, when it was connected and last
// refreshed; revoked, expired and other users' grants are not shown; the
// page has the consent page's headers and the footer's links.
func TestAccountPage(t *testing.T) {
	r := newAccountRig(t)
	ctx := context.Background()

	empty := r.page("", true)
	if empty.Code != http.StatusOK || !strings.Contains(empty.Body.String(), "No connected apps") {
		t.Fatalf("no grants: %d\n%s", empty.Code, empty.Body)
	}

	gid, _, refresh := r.grant("openid", "read:invoices")
	r.grant("read:invoices", "write:invoices") // the same app again: one row
	r.clock.Advance(3 * time.Hour)
	if resp := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, "app:app-secret"); resp.Code != http.StatusOK {
		t.Fatalf("refresh: %d %v", resp.Code, resp.body)
	}
	r.clock.Advance(2 * time.Hour)
	// (The store stamps the refresh with its own clock, the real one, so
	// the page says it happened 5 fake hours ago, like the grant.)
	// Not shown: revoked, expired, another user's, a client's own.
	now := r.clock.Now()
	for _, g := range []*tokenstore.Grant{
		{ID: "g-revoked", ClientID: "spa", UserID: r.user.ID, BusinessID: "b2", CreatedAt: now, ExpiresAt: now.Add(time.Hour), RevokedAt: now},
		{ID: "g-expired", ClientID: "spa", UserID: r.user.ID, BusinessID: "b2", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
		{ID: "g-other", ClientID: "multi", UserID: "usr_other", BusinessID: "b1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: "g-cc", ClientID: "svc", BusinessID: "b1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: "g-b2", ClientID: "first", UserID: r.user.ID, BusinessID: "b2", Scopes: []string{"read:invoices"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := r.s.store.CreateGrant(ctx, g, nil); err != nil {
			t.Fatal(err)
		}
	}

	p := r.page("", true)
	body := p.Body.String()
	if p.Code != http.StatusOK {
		t.Fatalf("page: %d\n%s", p.Code, body)
	}
	if got := strings.Count(body, `name="grant_id"`); got != 2 {
		t.Errorf("%d Disconnect forms, want 2 (App for B One, First for B Two)", got)
	}
	for _, want := range []string{
		"<h1>Connected apps</h1>", "B One", "B Two", `<h3 class="app-name">App</h3>`, `<h3 class="app-name">First</h3>`,
		"read:invoices", "write:invoices", "openid", "Connected <time", "Last refreshed <time", "5 hours ago", "Not refreshed yet",
		`aria-label="Disconnect App"`, `href="/oauth/account" aria-current="page"`, "Sign out",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, hidden := range []string{"Service", "Multi", "SPA"} {
		if strings.Contains(body, `<h3 class="app-name">`+hidden+`</h3>`) {
			t.Errorf("page shows %s", hidden)
		}
	}
	// B One, the current business, comes first.
	if i, j := strings.Index(body, "B One"), strings.Index(body, "B Two"); i < 0 || j < 0 || i > j {
		t.Error("the current business is not listed first")
	}
	if !r.live(gid) {
		t.Error("showing the page changed a grant")
	}
	h := p.Header()
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || csp != r.s.pages.csp {
		t.Errorf("CSP %q, want the consent page's %q", csp, r.s.pages.csp)
	}

	// Signed out: to sign-in, and back here.
	out := r.page("", false)
	loc := out.location(t)
	if out.Code != http.StatusSeeOther || loc.Path != "/oauth/sign-in" || loc.Query().Get("return_to") != "/oauth/account" {
		t.Fatalf("signed out: %d %s, want 303 to sign-in returning to /oauth/account", out.Code, loc)
	}
	signIn := r.get(loc.String(), r.csrf)
	if signIn.Code != http.StatusOK {
		t.Fatalf("sign-in page for the account page: %d", signIn.Code)
	}
	f := hiddenFields(signIn.Body.String())
	f.Set("email", "u@example.com")
	f.Set("password", rigPassword)
	req := httptest.NewRequest(http.MethodPost, "/oauth/sign-in", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(r.csrf)
	done := r.do(req)
	if done.Code != http.StatusSeeOther || done.Header().Get("Location") != "/oauth/account" {
		t.Fatalf("sign-in: %d %q, want 303 back to /oauth/account", done.Code, done.Header().Get("Location"))
	}
}

// TestDisconnectRejections: every refused Disconnect leaves the grant live
// and answers as the rule says.
func TestDisconnectRejections(t *testing.T) {
	r := newAccountRig(t)
	gid, _, _ := r.grant("read:invoices")
	token := r.csrfToken()
	now := r.clock.Now()
	ctx := context.Background()
	for _, g := range []*tokenstore.Grant{
		{ID: "g-other", ClientID: "app", UserID: "usr_other", BusinessID: "b1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: "g-cc", ClientID: "svc", BusinessID: "b1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := r.s.store.CreateGrant(ctx, g, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A session of the same user on another browser: its token is not
	// this one's.
	other := r.signIn()

	for _, tc := range []struct {
		name    string
		method  string
		form    url.Values
		cookies []*http.Cookie
		status  int
		// location, for redirects: the path it must go to.
		location string
		grant    string
	}{
		{"no session", http.MethodPost, url.Values{"grant_id": {gid}, "csrf_token": {token}}, []*http.Cookie{r.csrf},
			http.StatusSeeOther, "/oauth/sign-in", gid},
		{"no CSRF token", http.MethodPost, url.Values{"grant_id": {gid}}, []*http.Cookie{r.csrf, r.session},
			http.StatusForbidden, "", gid},
		{"wrong CSRF token", http.MethodPost, url.Values{"grant_id": {gid}, "csrf_token": {flipChar(token[:1]) + token[1:]}}, []*http.Cookie{r.csrf, r.session},
			http.StatusForbidden, "", gid},
		{"no CSRF cookie", http.MethodPost, url.Values{"grant_id": {gid}, "csrf_token": {token}}, []*http.Cookie{r.session},
			http.StatusForbidden, "", gid},
		{"CSRF token of another sign-in", http.MethodPost, url.Values{"grant_id": {gid}, "csrf_token": {token}}, []*http.Cookie{r.csrf, other},
			http.StatusForbidden, "", gid},
		{"another user's grant", http.MethodPost, url.Values{"grant_id": {"g-other"}, "csrf_token": {token}}, []*http.Cookie{r.csrf, r.session},
			http.StatusNotFound, "", "g-other"},
		{"a client-credentials grant", http.MethodPost, url.Values{"grant_id": {"g-cc"}, "csrf_token": {token}}, []*http.Cookie{r.csrf, r.session},
			http.StatusNotFound, "", "g-cc"},
		{"unknown grant", http.MethodPost, url.Values{"grant_id": {"g-nope"}, "csrf_token": {token}}, []*http.Cookie{r.csrf, r.session},
			http.StatusNotFound, "", gid},
		{"no grant id", http.MethodPost, url.Values{"csrf_token": {token}}, []*http.Cookie{r.csrf, r.session},
			http.StatusNotFound, "", gid},
		{"two grant ids", http.MethodPost, url.Values{"grant_id": {gid, "g-other"}, "csrf_token": {token}}, []*http.Cookie{r.csrf, r.session},
			http.StatusNotFound, "", gid},
		{"PUT", http.MethodPut, url.Values{"grant_id": {gid}, "csrf_token": {token}}, []*http.Cookie{r.csrf, r.session},
			http.StatusMethodNotAllowed, "", gid},
		{"DELETE", http.MethodDelete, url.Values{"grant_id": {gid}, "csrf_token": {token}}, []*http.Cookie{r.csrf, r.session},
			http.StatusMethodNotAllowed, "", gid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.post(tc.method, tc.form, tc.cookies...)
			if resp.Code != tc.status {
				t.Fatalf("%d, want %d\n%s", resp.Code, tc.status, resp.Body)
			}
			if tc.location != "" {
				if loc := resp.location(t); loc.Path != tc.location || loc.Query().Get("return_to") != "/oauth/account" {
					t.Errorf("Location %s, want %s returning to /oauth/account", loc, tc.location)
				}
			}
			if resp.Header().Get("X-Frame-Options") != "DENY" {
				t.Error("no anti-framing header")
			}
			if tc.status == http.StatusMethodNotAllowed && resp.Header().Get("Allow") != "GET, POST" {
				t.Errorf("Allow %q, want GET, POST", resp.Header().Get("Allow"))
			}
			if (tc.status == http.StatusForbidden || tc.status == http.StatusNotFound) &&
				!strings.Contains(resp.Body.String(), `href="/oauth/account">Back to connected apps</a>`) {
				t.Error("the error page has no way back to connected apps")
			}
			// A refusal to the signed-in user keeps the footer's Sign out.
			if tc.status == http.StatusNotFound && !strings.Contains(resp.Body.String(), `action="/oauth/sign-out"`) {
				t.Error("the error page to a signed-in user has no Sign out")
			}
			if !r.live(tc.grant) {
				t.Fatalf("grant %s revoked", tc.grant)
			}
		})
	}
	// GET never mutates, whatever it carries.
	t.Run("GET with the form's fields", func(t *testing.T) {
		resp := r.page("?"+url.Values{"grant_id": {gid}, "csrf_token": {token}}.Encode(), true)
		if resp.Code != http.StatusOK || !r.live(gid) {
			t.Fatalf("GET: %d, live %v", resp.Code, r.live(gid))
		}
	})
	// A notice names only a registered client: a link cannot put words on
	// the page.
	t.Run("notice from a crafted link", func(t *testing.T) {
		resp := r.page("?disconnected=Your+account+was+hacked", true)
		if strings.Contains(resp.Body.String(), "hacked") || strings.Contains(resp.Body.String(), "was disconnected") {
			t.Fatal("the page repeats the link's words")
		}
		// A registered app the user never disconnected (its name could be
		// any words a developer chose) is not announced either.
		resp = r.page("?disconnected=multi", true)
		if strings.Contains(resp.Body.String(), "Multi") || strings.Contains(resp.Body.String(), "was disconnected") {
			t.Fatal("the page announces an app the user never disconnected")
		}
	})
}

// TestDisconnectAudit: a Disconnect is logged at info with the app, the
// user and the business, once (a second submit ends nothing and logs
// nothing), and never with a token.
func TestDisconnectAudit(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	r := newAccountRigWith(t, Config{Logger: zap.New(core)})
	gid, access, refresh := r.grant("read:invoices")
	form := url.Values{"grant_id": {gid}, "csrf_token": {r.csrfToken()}}
	for range 2 {
		if resp := r.post(http.MethodPost, form, r.csrf, r.session); resp.Code != http.StatusSeeOther {
			t.Fatalf("disconnect: %d", resp.Code)
		}
	}
	var said []string
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, access) || strings.Contains(line, refresh) {
			t.Fatalf("a log line holds a token: %s", line)
		}
		if m := e.ContextMap(); m["client_id"] == "app" && m["user_id"] == r.user.ID && m["business_id"] == "b1" {
			said = append(said, e.Message)
		}
	}
	if strings.Join(said, "|") != "connected apps: app disconnected" {
		t.Fatalf("audit log: %q, want one \"connected apps: app disconnected\"", said)
	}
}

// TestDisconnect: Disconnect revokes every live grant of the app for that
// business (not its grants for another business), denies its tokens at
// once, forgets the consent, and the page then says so and no longer
// lists it. Sending the form twice is not an error.
func TestDisconnect(t *testing.T) {
	r := newAccountRig(t)
	ctx := context.Background()
	g1, access, refresh := r.grant("read:invoices")
	g2, _, _ := r.grant("read:invoices")
	now := r.clock.Now()
	if err := r.s.store.CreateGrant(ctx, &tokenstore.Grant{ID: "g-b2", ClientID: "app", UserID: r.user.ID, BusinessID: "b2",
		Scopes: []string{"read:invoices"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"b1", "b2"} {
		if err := r.s.store.SaveConsent(ctx, &tokenstore.Consent{UserID: r.user.ID, ClientID: "app", BusinessID: b, Scopes: []string{"read:invoices"}}); err != nil {
			t.Fatal(err)
		}
	}
	token := r.csrfToken()
	form := url.Values{"grant_id": {g1}, "csrf_token": {token}}
	resp := r.post(http.MethodPost, form, r.csrf, r.session)
	if resp.Code != http.StatusSeeOther || resp.Header().Get("Location") != "/oauth/account?disconnected=app" {
		t.Fatalf("disconnect: %d %q\n%s", resp.Code, resp.Header().Get("Location"), resp.Body)
	}
	if r.live(g1) || r.live(g2) {
		t.Error("a grant of the app for B One is still live")
	}
	if !r.live("g-b2") {
		t.Error("the app's grant for B Two was revoked too")
	}
	if _, err := r.s.tokens.Verify(access); err == nil {
		t.Error("the access token still verifies")
	}
	if resp := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, "app:app-secret"); resp.errorCode() != "invalid_grant" {
		t.Errorf("refresh after Disconnect: %d %v, want invalid_grant", resp.Code, resp.body)
	}
	if _, err := r.s.store.GetConsent(ctx, r.user.ID, "app", "b1"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("consent for B One: %v, want it forgotten", err)
	}
	if _, err := r.s.store.GetConsent(ctx, r.user.ID, "app", "b2"); err != nil {
		t.Errorf("consent for B Two: %v, want it kept", err)
	}

	p := r.page("?disconnected=app", true).Body.String()
	if !strings.Contains(p, "<strong>App</strong> was disconnected") {
		t.Error("no notice after Disconnect")
	}
	if strings.Contains(p, `value="`+g1+`"`) || strings.Contains(p, `value="`+g2+`"`) || !strings.Contains(p, `value="g-b2"`) {
		t.Error("the page still lists the disconnected app for B One, or lost it for B Two")
	}

	// The same form again: nothing left to end, the same answer.
	if again := r.post(http.MethodPost, form, r.csrf, r.session); again.Code != http.StatusSeeOther {
		t.Errorf("second Disconnect: %d, want 303", again.Code)
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"}, {59 * time.Second, "just now"}, {time.Minute, "1 minute ago"}, {45 * time.Minute, "45 minutes ago"},
		{time.Hour, "1 hour ago"}, {23 * time.Hour, "23 hours ago"}, {24 * time.Hour, "1 day ago"}, {6 * 24 * time.Hour, "6 days ago"},
		{30 * 24 * time.Hour, "on 2 November"}, {400 * 24 * time.Hour, "on 28 October 2025"},
	} {
		if got := ago(now.Add(-tc.d), now); got != tc.want {
			t.Errorf("ago(-%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
