package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// portal is a rig with the developer portal on, the rig's user u@example.com
// (businesses b1, b2) as one developer, other@example.com as another, and
// root@example.com as a platform admin.
type portal struct {
	*rig
	other, root *tokenstore.User
}

var portalCatalogue = []Scope{{Name: "read:invoices", Description: "View invoices"},
	{Name: "write:invoices", Description: "Change invoices"}, {Name: "admin:billing", Description: "Change billing"}}

func newPortal(t *testing.T, dp DeveloperPortal) *portal {
	t.Helper()
	dp.PlatformAdmins = append(dp.PlatformAdmins, "ROOT@example.com")
	r := newRig(t, Config{DeveloperPortal: &dp, Scopes: portalCatalogue, ClientIDPrefix: "yion_", SecretPrefix: "ysk_",
		ThirdPartyScopes: []string{"openid", "offline_access", "read:invoices", "write:invoices"}})
	p := &portal{rig: r}
	ctx := context.Background()
	for _, e := range []string{"other@example.com", "root@example.com"} {
		if err := r.s.EnsureUser(ctx, UserSpec{Email: e, PasswordHash: rigPasswordHash(), Name: "Someone Else",
			Businesses: []BusinessSpec{{ID: "b9", Name: "B Nine"}}}); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if p.other, err = r.s.store.GetUserByEmail(ctx, "other@example.com"); err != nil {
		t.Fatal(err)
	}
	if p.root, err = r.s.store.GetUserByEmail(ctx, "root@example.com"); err != nil {
		t.Fatal(err)
	}
	return p
}

// browser is one signed-in user agent: session and CSRF cookies.
type browser struct {
	p       *portal
	cookies []*http.Cookie
}

func (p *portal) browserOf(userID string) *browser {
	p.t.Helper()
	rec := httptest.NewRecorder()
	if err := p.s.startSession(rec, userID, p.clock.Now()); err != nil {
		p.t.Fatal(err)
	}
	return &browser{p: p, cookies: rec.Result().Cookies()}
}

func (b *browser) send(req *http.Request) response {
	b.p.t.Helper()
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	resp := b.p.do(req)
	for _, c := range resp.Result().Cookies() {
		b.cookies = append(b.cookies, c)
	}
	return resp
}

func (b *browser) get(path string) response {
	b.p.t.Helper()
	return b.send(httptest.NewRequest(http.MethodGet, path, nil))
}

func (b *browser) post(path string, f url.Values) response {
	b.p.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.send(req)
}

// registration opens the registration form and returns its hidden fields
// with good values for every other field.
func (b *browser) registration() url.Values {
	b.p.t.Helper()
	resp := b.get("/oauth/developer/new")
	if resp.Code != http.StatusOK {
		b.p.t.Fatalf("registration form: %d %s", resp.Code, resp.Body)
	}
	f := portalFields(resp.Body.String())
	f.Set("name", "Ledgerly")
	f.Set("redirect_uris", "https://ledgerly.example/callback\r\nhttp://127.0.0.1:8400/cb\r\n")
	f.Set("client_type", "confidential")
	f["scope"] = []string{"openid", "read:invoices"}
	f.Set("business_id", "b2")
	return f
}

// csrf is a valid CSRF token of the browser's portal forms.
func (b *browser) csrf() string {
	b.p.t.Helper()
	return portalFields(b.get("/oauth/developer/new").Body.String()).Get("csrf_token")
}

// register registers the default app and returns its client id and secret
// as the page shows them.
func (b *browser) register() (id, secret string) {
	b.p.t.Helper()
	resp := b.post("/oauth/developer/new", b.registration())
	if resp.Code != http.StatusCreated {
		b.p.t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	return inputValue(resp.Body.String(), "client-id"), inputValue(resp.Body.String(), "client-secret")
}

// inputValue is the value of the input with the id.
func inputValue(body, id string) string {
	_, rest, ok := strings.Cut(body, `id="`+id+`"`)
	if !ok {
		return ""
	}
	tag, _, _ := strings.Cut(rest, ">")
	return attr(tag, "value")
}

func (p *portal) owned(owner string) []*tokenstore.Client {
	p.t.Helper()
	cs, err := p.s.store.ListClientsByOwner(context.Background(), owner)
	if err != nil {
		p.t.Fatal(err)
	}
	return cs
}

func TestPortalRegister(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	dev := p.browserOf(p.user.ID)
	f := dev.registration()
	resp := dev.post("/oauth/developer/new", f)
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	body := resp.Body.String()
	id, secret := inputValue(body, "client-id"), inputValue(body, "client-secret")
	if !strings.HasPrefix(id, "yion_") || !strings.HasPrefix(secret, "ysk_") || len(secret) < 40 {
		t.Fatalf("credentials shown: %q %q", id, secret)
	}
	if !strings.Contains(body, "shown only this once") {
		t.Error("the reveal does not say the secret is shown once")
	}
	c, err := p.s.store.GetClient(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.OwnerID != p.user.ID || c.OwnerBusinessID != "b2" || c.Name != "Ledgerly" || c.Public || c.FirstParty ||
		strings.Join(c.RedirectURIs, " ") != "https://ledgerly.example/callback http://127.0.0.1:8400/cb" ||
		strings.Join(c.Scopes, " ") != "openid read:invoices" ||
		strings.Join(c.GrantTypes, " ") != "authorization_code refresh_token" {
		t.Fatalf("stored client: %+v", c)
	}
	if string(c.SecretHash) != string(tokens.HashSecret(secret)) {
		t.Fatal("the secret shown is not the one stored")
	}

	// A second submit of the same form (a double click, a reload) makes
	// nothing and shows no secret.
	again := dev.post("/oauth/developer/new", f)
	if again.Code != http.StatusConflict || !strings.Contains(again.Body.String(), "already registered") {
		t.Fatalf("second submit: %d %s", again.Code, again.Body)
	}
	if strings.Contains(again.Body.String(), secret) || inputValue(again.Body.String(), "client-secret") != "" {
		t.Fatal("the second submit shows a secret")
	}
	if n := len(p.owned(p.user.ID)); n != 1 {
		t.Fatalf("%d apps after a double submit, want 1", n)
	}

	// The list shows the app, and never its secret.
	list := dev.get("/oauth/developer")
	for _, want := range []string{"Ledgerly", id, "https://ledgerly.example/callback", "read:invoices", "B Two", "Confidential"} {
		if !strings.Contains(list.Body.String(), want) {
			t.Errorf("list lacks %q", want)
		}
	}
	if strings.Contains(list.Body.String(), secret) || strings.Contains(dev.get("/oauth/developer/apps/"+id).Body.String(), secret) {
		t.Error("the secret is shown again")
	}
	// A fresh form registers a second app.
	if id2, _ := dev.register(); id2 == id {
		t.Fatal("a new form made the same client id")
	}
}

func TestPortalPublicApp(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	dev := p.browserOf(p.user.ID)
	f := dev.registration()
	f.Set("client_type", "public")
	f.Set("redirect_uris", "com.ledgerly.app:/oauth")
	resp := dev.post("/oauth/developer/new", f)
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	id := inputValue(resp.Body.String(), "client-id")
	if inputValue(resp.Body.String(), "client-secret") != "" {
		t.Fatal("a public app was shown a secret")
	}
	c, _ := p.s.store.GetClient(context.Background(), id)
	if c == nil || !c.Public || c.SecretHash != nil {
		t.Fatalf("stored: %+v", c)
	}
	if resp := dev.post("/oauth/developer/apps/"+id+"/secret", url.Values{"csrf_token": {dev.csrf()}}); resp.Code != http.StatusBadRequest {
		t.Fatalf("rotating a public app's secret: %d", resp.Code)
	}
}

// TestPortalRejections: one row per bad input of the registration form;
// each gets its message next to the field and makes no app.
func TestPortalRejections(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	dev := p.browserOf(p.user.ID)
	tests := []struct {
		name  string
		edit  func(url.Values)
		field string // id of the message
		want  string
	}{
		{"RFC 9700 §2.1: http on a non-loopback host", func(f url.Values) { f.Set("redirect_uris", "http://ledgerly.example/cb") }, "redirect-uris-error", "use https"},
		{"RFC 6749 §3.1.2: fragment", func(f url.Values) { f.Set("redirect_uris", "https://ledgerly.example/cb#x") }, "redirect-uris-error", "fragment"},
		{"RFC 6749 §3.1.2: relative", func(f url.Values) { f.Set("redirect_uris", "/callback") }, "redirect-uris-error", "absolute"},
		{"RFC 9700 §4.1.3: wildcard", func(f url.Values) { f.Set("redirect_uris", "https://*.ledgerly.example/cb") }, "redirect-uris-error", "wildcard"},
		{"RFC 8252 §7.1: custom scheme on a confidential app", func(f url.Values) { f.Set("redirect_uris", "com.ledgerly.app:/cb") }, "redirect-uris-error", "public client"},
		{"duplicate redirect URIs", func(f url.Values) { f.Set("redirect_uris", "https://a.example/cb\nhttps://a.example/cb") }, "redirect-uris-error", "listed twice"},
		{"no redirect URI", func(f url.Values) { f.Set("redirect_uris", " \n ") }, "redirect-uris-error", "at least one redirect URI"},
		{"unknown scope", func(f url.Values) { f["scope"] = []string{"read:payroll"} }, "scopes-error", "is not a scope of"},
		{"scope outside the third-party set", func(f url.Values) { f["scope"] = []string{"read:invoices", "admin:billing"} }, "scopes-error", "not available to third-party apps"},
		{"no scope", func(f url.Values) { delete(f, "scope") }, "scopes-error", "at least one scope"},
		{"empty name", func(f url.Values) { f.Set("name", "   ") }, "name-error", "Give your app a name"},
		{"over-long name", func(f url.Values) { f.Set("name", strings.Repeat("x", maxAppNameLen+1)) }, "name-error", "too long"},
		{"control character in the name", func(f url.Values) { f.Set("name", "Led\x07gerly") }, "name-error", "control characters"},
		{"a right-to-left override in the name", func(f url.Values) { f.Set("name", "Ledgerly \u202eyltneS") }, "name-error", "invisible formatting"},
		{"a zero-width space in the name", func(f url.Values) { f.Set("name", "Led\u200bgerly") }, "name-error", "invisible formatting"},
		{"a no-break space inside a redirect URI line", func(f url.Values) { f.Set("redirect_uris", "https://ledgerly.example/c\u00a0b") }, "redirect-uris-error", "plain ASCII"},
		{"a look-alike host", func(f url.Values) { f.Set("redirect_uris", "https://ledg\u0435rly.example/cb") }, "redirect-uris-error", "plain ASCII"},
		{"no app type", func(f url.Values) { f.Del("client_type") }, "client-type-error", "keep a secret"},
		{"a business the developer does not administer", func(f url.Values) { f.Set("business_id", "b9") }, "business-error", "businesses you administer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := dev.registration()
			tt.edit(f)
			resp := dev.post("/oauth/developer/new", f)
			body := resp.Body.String()
			if resp.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.Code)
			}
			_, msg, ok := strings.Cut(body, `id="`+tt.field+`">`)
			if !ok {
				t.Fatalf("no message with id %s:\n%s", tt.field, body)
			}
			msg, _, _ = strings.Cut(msg, "<")
			if !strings.Contains(msg, tt.want) && !strings.Contains(msg, htmlEscaped(tt.want)) {
				t.Fatalf("message %q does not say %q", msg, tt.want)
			}
			if !strings.Contains(body, "was not registered") {
				t.Error("the page does not say the app was not registered")
			}
			// What was typed comes back, under the same one-time form.
			if portalFields(body).Get("form_id") != f.Get("form_id") {
				t.Error("the form id changed")
			}
			if n := len(p.owned(p.user.ID)); n != 0 {
				t.Fatalf("%d apps made", n)
			}
		})
	}
	t.Run("the corrected form registers once", func(t *testing.T) {
		f := dev.registration()
		f.Set("redirect_uris", "http://ledgerly.example/cb")
		if resp := dev.post("/oauth/developer/new", f); resp.Code != http.StatusBadRequest {
			t.Fatalf("bad: %d", resp.Code)
		}
		f.Set("redirect_uris", "https://ledgerly.example/cb")
		if resp := dev.post("/oauth/developer/new", f); resp.Code != http.StatusCreated {
			t.Fatalf("corrected: %d %s", resp.Code, resp.Body)
		}
		f.Set("redirect_uris", "http://ledgerly.example/cb")
		if resp := dev.post("/oauth/developer/new", f); resp.Code != http.StatusConflict {
			t.Fatalf("the used form sent again with a bad field: %d", resp.Code)
		}
		if n := len(p.owned(p.user.ID)); n != 1 {
			t.Fatalf("%d apps", n)
		}
	})
}

// portalFields are the hidden fields of a page's first form (the footer's
// sign-out form has a csrf_token of its own).
func portalFields(body string) url.Values {
	out := url.Values{}
	for k, v := range hiddenFields(body[:max(strings.Index(body, "</form>"), 0)]) {
		out[k] = v
	}
	return out
}

func htmlEscaped(s string) string {
	return strings.NewReplacer(`"`, "&#34;", "'", "&#39;").Replace(s)
}

// TestPortalRequestRules: forms are CSRF-bound, mutations are POSTs, pages
// carry the consent page's headers, a signed-out developer signs in first.
func TestPortalRequestRules(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	dev := p.browserOf(p.user.ID)
	id, _ := dev.register()
	app := "/oauth/developer/apps/" + id

	page := dev.get("/oauth/developer")
	h := page.Header()
	if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers: %v", h)
	}

	noCSRF := dev.registration()
	noCSRF.Del("csrf_token")
	badCSRF := dev.registration()
	badCSRF.Set("csrf_token", flipChar(badCSRF.Get("csrf_token")[:1])+badCSRF.Get("csrf_token")[1:])
	noForm := dev.registration()
	noForm.Del("form_id")
	good := url.Values{"csrf_token": {dev.csrf()}, "name": {"Renamed"}, "redirect_uris": {"https://ledgerly.example/cb"}}
	tests := []struct {
		name   string
		method string
		path   string
		form   url.Values
		status int
	}{
		{"register without a CSRF token", "POST", "/oauth/developer/new", noCSRF, http.StatusForbidden},
		{"register with a wrong CSRF token", "POST", "/oauth/developer/new", badCSRF, http.StatusForbidden},
		{"register without the one-time form id", "POST", "/oauth/developer/new", noForm, http.StatusBadRequest},
		{"edit without a CSRF token", "POST", app, url.Values{"name": {"Renamed"}, "redirect_uris": {"https://x.example/cb"}}, http.StatusForbidden},
		{"rotate without a CSRF token", "POST", app + "/secret", url.Values{}, http.StatusForbidden},
		{"delete without a CSRF token", "POST", app + "/delete", url.Values{}, http.StatusForbidden},
		{"rotate by GET", "GET", app + "/secret", nil, http.StatusMethodNotAllowed},
		{"first-party by GET", "GET", app + "/first-party", nil, http.StatusMethodNotAllowed},
		{"delete by PUT", "PUT", app + "/delete", nil, http.StatusMethodNotAllowed},
		{"the list by POST", "POST", "/oauth/developer", good, http.StatusMethodNotAllowed},
		{"first-party by a developer who is not a platform admin", "POST", app + "/first-party", url.Values{"csrf_token": {dev.csrf()}, "first_party": {"on"}}, http.StatusForbidden},
		{"an unknown app", "GET", "/oauth/developer/apps/yion_nope", nil, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if resp := dev.send(req); resp.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Code, tt.status, resp.Body)
			}
		})
	}
	c, err := p.s.store.GetClient(context.Background(), id)
	if err != nil || c.Name != "Ledgerly" || c.FirstParty {
		t.Fatalf("the refused requests changed the app: %+v %v", c, err)
	}
	if n := len(p.owned(p.user.ID)); n != 1 {
		t.Fatalf("%d apps", n)
	}

	// Signed out: to sign-in, and the sign-in page takes the portal as its
	// return address.
	for _, path := range []string{"/oauth/developer", "/oauth/developer/new", app} {
		resp := p.get(path)
		loc := resp.location(t)
		if resp.Code != http.StatusSeeOther || loc.Path != "/oauth/sign-in" || loc.Query().Get("return_to") != path {
			t.Fatalf("%s signed out: %d %s", path, resp.Code, loc)
		}
		if si := p.get(loc.String()); si.Code != http.StatusOK || portalFields(si.Body.String()).Get("return_to") != path {
			t.Fatalf("sign-in page for %s: %d", path, si.Code)
		}
	}
	if resp := p.postForm("/oauth/developer/new", dev.registration(), ""); resp.Code != http.StatusSeeOther {
		t.Fatalf("a signed-out POST: %d", resp.Code)
	}
	// A signed-out POST to an address that only takes POST comes back,
	// after sign-in, to the app's page where its form is (not to a 405).
	for _, path := range []string{app + "/secret", app + "/first-party"} {
		resp := p.postForm(path, url.Values{}, "")
		if loc := resp.location(t); resp.Code != http.StatusSeeOther || loc.Query().Get("return_to") != app {
			t.Fatalf("signed-out POST %s: %d, back to %q", path, resp.Code, loc.Query().Get("return_to"))
		}
	}
}

func TestPortalReturnTarget(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	for _, tt := range []struct {
		returnTo string
		ok       bool
	}{
		{"/oauth/developer", true},
		{"/oauth/developer/new", true},
		{"/oauth/developer/apps/yion_1?notice=saved", true},
		{"/oauth/authorize?client_id=app", true},
		{"/oauth/developerx", false},
		{"/oauth/token", false},
		{"//evil.example/oauth/developer", false},
		{"https://evil.example/oauth/developer", false},
		{"/oauth/developer/../token", false},
		{"/oauth/developer\r\nX: y", false},
		{"/oauth/developer#x", false},
		{"oauth/developer", false},
	} {
		if _, ok := p.s.returnTarget(tt.returnTo); ok != tt.ok {
			t.Errorf("returnTarget(%q) = %v, want %v", tt.returnTo, ok, tt.ok)
		}
	}
	off := newRig(t, Config{})
	if _, ok := off.s.returnTarget("/oauth/developer"); ok {
		t.Error("the portal is a return address while it is off")
	}
}

// TestPortalOwnership: a developer never sees or touches another
// developer's app; a platform admin sees every app and marks one
// first-party.
func TestPortalOwnership(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	dev := p.browserOf(p.user.ID)
	id, _ := dev.register()
	app := "/oauth/developer/apps/" + id

	other := p.browserOf(p.other.ID)
	if strings.Contains(other.get("/oauth/developer").Body.String(), id) {
		t.Fatal("another developer's list shows the app")
	}
	csrf := other.csrf()
	for _, tt := range []struct {
		method, path string
		form         url.Values
	}{
		{"GET", app, nil},
		{"POST", app, url.Values{"csrf_token": {csrf}, "name": {"Mine now"}, "redirect_uris": {"https://evil.example/cb"}}},
		{"POST", app + "/secret", url.Values{"csrf_token": {csrf}}},
		{"GET", app + "/delete", nil},
		{"POST", app + "/delete", url.Values{"csrf_token": {csrf}}},
		{"POST", app + "/first-party", url.Values{"csrf_token": {csrf}, "first_party": {"on"}}},
	} {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp := other.send(req)
		if resp.Code != http.StatusNotFound || strings.Contains(resp.Body.String(), "Ledgerly") {
			t.Errorf("%s %s by another developer: %d", tt.method, tt.path, resp.Code)
		}
		// The refusal is a page of the signed-in portal: a way back to
		// one's own apps, and the footer's Sign out.
		if b := resp.Body.String(); !strings.Contains(b, `href="/oauth/developer">Back to your apps`) || !strings.Contains(b, `action="/oauth/sign-out"`) {
			t.Errorf("%s %s by another developer: no way back or no Sign out:\n%s", tt.method, tt.path, b)
		}
	}
	before, err := p.s.store.GetClient(context.Background(), id)
	if err != nil || before.Name != "Ledgerly" || before.FirstParty || len(before.RedirectURIs) != 2 {
		t.Fatalf("another developer changed the app: %+v %v", before, err)
	}

	// A self-registered app (RFC 7591) is shown to the platform admin as
	// unverified, an operator's as the operator's.
	selfReg := &tokenstore.Client{ID: "dyn1", Name: "Self Registered", GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"https://dyn.example/cb"}, Public: true}
	if err := p.s.store.RegisterClient(context.Background(), selfReg, &tokenstore.Registration{ClientID: "dyn1",
		TokenHash: tokens.HashSecret("rat"), Metadata: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if err := p.s.store.CreateClient(context.Background(), &tokenstore.Client{ID: "ops1", Name: "Operator App"}); err != nil {
		t.Fatal(err)
	}
	root := p.browserOf(p.root.ID)
	list := root.get("/oauth/developer").Body.String()
	if !strings.Contains(list, id) || !strings.Contains(list, "u@example.com") {
		t.Fatal("the platform admin's list lacks the app or its owner")
	}
	_, dynRow, _ := strings.Cut(list, "Self Registered")
	dynRow, _, _ = strings.Cut(dynRow, "</li>")
	_, opsRow, _ := strings.Cut(list, "Operator App")
	opsRow, _, _ = strings.Cut(opsRow, "</li>")
	if !strings.Contains(dynRow, "Unverified") || !strings.Contains(dynRow, "Registered itself") ||
		strings.Contains(opsRow, "Unverified") || !strings.Contains(opsRow, "Operator (admin API") {
		t.Fatalf("owners of the other apps:\n%s\n---\n%s", dynRow, opsRow)
	}
	if strings.Contains(dev.get("/oauth/developer").Body.String(), "Self Registered") {
		t.Fatal("a developer sees the other apps")
	}
	// The platform admin sees the app but neither rotates its secret
	// (the new one would be theirs to read) nor edits its redirect URIs.
	page := root.get(app).Body.String()
	if !strings.Contains(page, "Ledgerly") || strings.Contains(page, app+"/secret") || strings.Contains(page, `name="redirect_uris"`) {
		t.Fatal("the platform admin's view of another developer's app offers rotate or edit")
	}
	for _, tt := range []struct {
		path string
		form url.Values
	}{
		{app + "/secret", url.Values{"csrf_token": {root.csrf()}}},
		{app, url.Values{"csrf_token": {root.csrf()}, "name": {"Ledgerly"}, "redirect_uris": {"https://admin.example/cb"}}},
	} {
		if resp := root.post(tt.path, tt.form); resp.Code != http.StatusForbidden || strings.Contains(resp.Body.String(), "ysk_") {
			t.Errorf("POST %s by a platform admin: %d", tt.path, resp.Code)
		}
	}
	if c, _ := p.s.store.GetClient(context.Background(), id); !bytes.Equal(c.SecretHash, before.SecretHash) || len(c.RedirectURIs) != 2 {
		t.Fatal("the platform admin changed the secret or the redirect URIs")
	}
	resp := root.post(app+"/first-party", url.Values{"csrf_token": {root.csrf()}, "first_party": {"on"}})
	if resp.Code != http.StatusSeeOther {
		t.Fatalf("mark first-party: %d %s", resp.Code, resp.Body)
	}
	if c, _ := p.s.store.GetClient(context.Background(), id); !c.FirstParty || c.OwnerID != p.user.ID {
		t.Fatalf("after marking: %+v", c)
	}
	if c, _ := p.s.tokens.Client(context.Background(), id); !c.FirstParty {
		t.Fatal("the token service still has the third-party client")
	}
}

// TestPortalManage: edit, rotate and delete, and what each does to the
// app's credentials and tokens.
func TestPortalManage(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	dev := p.browserOf(p.user.ID)
	id, secret := dev.register()
	app := "/oauth/developer/apps/" + id
	ctx := context.Background()

	resp := dev.post(app, url.Values{"csrf_token": {dev.csrf()}, "name": {"Ledgerly Books"}, "redirect_uris": {"https://ledgerly.example/v2/cb"}})
	if resp.Code != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", resp.Code, resp.Body)
	}
	if c, _ := p.s.tokens.Client(ctx, id); c.Name != "Ledgerly Books" || strings.Join(c.RedirectURIs, " ") != "https://ledgerly.example/v2/cb" {
		t.Fatalf("after edit: %+v", c)
	}
	bad := dev.post(app, url.Values{"csrf_token": {dev.csrf()}, "name": {"Ledgerly Books"}, "redirect_uris": {"http://ledgerly.example/cb"}})
	if bad.Code != http.StatusBadRequest || !strings.Contains(bad.Body.String(), `id="redirect-uris-error"`) {
		t.Fatalf("bad edit: %d", bad.Code)
	}

	// A code, tokens, then a rotation: the old secret stops working.
	code := p.portalCode(id, "https://ledgerly.example/v2/cb")
	tok := p.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://ledgerly.example/v2/cb"}}, id+":"+secret)
	if tok.Code != http.StatusOK {
		t.Fatalf("code exchange: %d %v", tok.Code, tok.body)
	}
	// The button says what rotating does to the secret in use.
	if page := dev.get(app).Body.String(); !strings.Contains(page, "The current secret stops working at once") {
		t.Error("the app's page does not say that rotating ends the current secret")
	}
	rot := dev.post(app+"/secret", url.Values{"csrf_token": {dev.csrf()}})
	fresh := inputValue(rot.Body.String(), "client-secret")
	if rot.Code != http.StatusOK || !strings.HasPrefix(fresh, "ysk_") || fresh == secret {
		t.Fatalf("rotate: %d %q", rot.Code, fresh)
	}
	refresh := func(secret string) response {
		return p.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.body["refresh_token"].(string)}}, id+":"+secret)
	}
	if r := refresh(secret); r.Code != http.StatusUnauthorized {
		t.Fatalf("refresh with the old secret: %d %v", r.Code, r.body)
	}
	next := refresh(fresh)
	if next.Code != http.StatusOK {
		t.Fatalf("refresh with the new secret: %d %v", next.Code, next.body)
	}
	access := next.body["access_token"].(string)
	if _, err := p.s.tokens.Verify(access); err != nil {
		t.Fatalf("access token before delete: %v", err)
	}

	// Delete asks first, then revokes every token at once.
	if ask := dev.get(app + "/delete"); ask.Code != http.StatusOK || !strings.Contains(ask.Body.String(), "cannot be undone") {
		t.Fatalf("delete question: %d", ask.Code)
	}
	del := dev.post(app+"/delete", url.Values{"csrf_token": {dev.csrf()}})
	if del.Code != http.StatusSeeOther || del.location(t).Query().Get("notice") != "deleted" {
		t.Fatalf("delete: %d", del.Code)
	}
	if _, err := p.s.store.GetClient(ctx, id); err == nil {
		t.Fatal("the app is still stored")
	}
	if _, err := p.s.tokens.Verify(access); err == nil {
		t.Fatal("the app's access token is accepted after delete")
	}
	if r := p.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.body["refresh_token"].(string)}}, id+":"+fresh); r.Code == http.StatusOK {
		t.Fatal("the app's refresh token works after delete")
	}
	if !strings.Contains(dev.get("/oauth/developer?notice=deleted").Body.String(), "was deleted") {
		t.Error("no notice after delete")
	}
}

// portalCode mints a code for a portal app, as /authorize does after
// consent.
func (p *portal) portalCode(id, redirect string) string {
	p.t.Helper()
	c, err := p.s.tokens.Client(context.Background(), id)
	if err != nil {
		p.t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.s.issueCode(rec, context.Background(), &authzRequest{client: c, redirectURI: redirect, redirectSent: true,
		scopes: []string{"openid", "read:invoices"}, state: "s"}, &account{ID: p.user.ID, AuthTime: p.clock.Now()}, "b1")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if loc.Query().Get("code") == "" {
		p.t.Fatalf("issueCode: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	return loc.Query().Get("code")
}

func TestPortalWhoMayRegister(t *testing.T) {
	p := newPortal(t, DeveloperPortal{Register: "business_admins"})
	ctx := context.Background()
	loner := &tokenstore.User{ID: "usr_loner", Email: "loner@example.com", Name: "Lone Developer"}
	if err := p.s.store.CreateUser(ctx, loner); err != nil {
		t.Fatal(err)
	}
	b := p.browserOf(loner.ID)
	if resp := b.get("/oauth/developer/new"); resp.Code != http.StatusForbidden || !strings.Contains(resp.Body.String(), "Only administrators of a business") {
		t.Fatalf("form for a user without a business: %d", resp.Code)
	}
	f := url.Values{"csrf_token": {portalFields(b.get("/oauth/developer").Body.String()).Get("csrf_token")}}
	if resp := b.post("/oauth/developer/new", f); resp.Code != http.StatusForbidden {
		t.Fatalf("register by a user without a business: %d", resp.Code)
	}
	if resp := b.get("/oauth/developer"); resp.Code != http.StatusOK || strings.Contains(resp.Body.String(), `id="register-app"`) {
		t.Fatalf("list for a user without a business: %d", resp.Code)
	}
	// Administrators register.
	p.browserOf(p.user.ID).register()

	// With register anyone, the same user registers an app of no business.
	q := newPortal(t, DeveloperPortal{})
	if err := q.s.store.CreateUser(ctx, loner); err != nil {
		t.Fatal(err)
	}
	lb := q.browserOf(loner.ID)
	f = lb.registration()
	f.Del("business_id")
	if resp := lb.post("/oauth/developer/new", f); resp.Code != http.StatusCreated {
		t.Fatalf("register anyone: %d %s", resp.Code, resp.Body)
	}
}

func TestPortalOff(t *testing.T) {
	r := newRig(t, Config{})
	for _, path := range []string{"/oauth/developer", "/oauth/developer/new"} {
		if r.s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil)) {
			t.Errorf("%s is served with the portal off", path)
		}
	}
	if _, err := New(Config{Issuer: testIssuer, DeveloperPortal: &DeveloperPortal{Register: "everyone"}}, nil, nil); err == nil {
		t.Error("register everyone accepted")
	}
}

// TestPortalDelegated: under delegated identity the platform says who the
// developer is, and a signed-out one goes to the platform's sign-in and back.
func TestPortalDelegated(t *testing.T) {
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("platform_session")
		if err != nil || c.Value != "ada" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "usr_ada", "email": "ada@platform.example", "name": "Ada Lovelace",
			"sid": "s1", "businesses": []map[string]string{{"id": "biz_ae", "name": "Analytical Engines"}}})
	}))
	defer platform.Close()
	dp := &DeveloperPortal{}
	s := openServer(t, Config{Issuer: testIssuer, DeveloperPortal: dp, Scopes: portalCatalogue,
		Delegated: &DelegatedIdentity{SessionURL: platform.URL, SignInURL: "https://platform.example/sign-in"}}, tokens.Config{})
	p := &portal{rig: &rig{t: t, s: s}}

	resp := p.get("/oauth/developer/new")
	loc := resp.location(t)
	if resp.Code != http.StatusSeeOther || loc.Host != "platform.example" || loc.Query().Get("return_to") != testIssuer+"/oauth/developer/new" {
		t.Fatalf("signed out: %d %s", resp.Code, loc)
	}
	b := &browser{p: p, cookies: []*http.Cookie{{Name: "platform_session", Value: "ada"}}}
	f := b.registration()
	f.Set("business_id", "biz_ae")
	resp = b.post("/oauth/developer/new", f)
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	c, err := s.store.GetClient(context.Background(), inputValue(resp.Body.String(), "client-id"))
	if err != nil || c.OwnerID != "usr_ada" || c.OwnerBusinessID != "biz_ae" {
		t.Fatalf("stored: %+v %v", c, err)
	}
	if !strings.Contains(b.get("/oauth/developer").Body.String(), "Analytical Engines") {
		t.Error("the list lacks the business's name")
	}
}

// TestPortalDPoP: the registration and the settings say whether the app's
// tokens must be DPoP-bound; a bound app gets no bearer token.
func TestPortalDPoP(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	dev := p.browserOf(p.user.ID)
	f := dev.registration()
	f.Set("dpop_bound", "on")
	resp := dev.post("/oauth/developer/new", f)
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d", resp.Code)
	}
	id, secret := inputValue(resp.Body.String(), "client-id"), inputValue(resp.Body.String(), "client-secret")
	ctx := context.Background()
	if c, _ := p.s.tokens.Client(ctx, id); c == nil || !c.DPoPBoundAccessTokens {
		t.Fatalf("stored: %+v", c)
	}
	if !strings.Contains(dev.get("/oauth/developer").Body.String(), "DPoP-bound") {
		t.Error("the list does not say the app is DPoP-bound")
	}
	code := p.portalCode(id, "https://ledgerly.example/callback")
	tok := p.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://ledgerly.example/callback"}}, id+":"+secret)
	if tok.Code != http.StatusBadRequest || tok.errorCode() != "invalid_dpop_proof" {
		t.Fatalf("a bearer token request of a DPoP-bound app: %d %v", tok.Code, tok.body)
	}

	// Settings turn it off (the checkbox unticked) and on again.
	app := "/oauth/developer/apps/" + id
	page := dev.get(app).Body.String()
	if !strings.Contains(page, `name="dpop_bound" value="on" checked`) {
		t.Fatal("the settings do not show the binding")
	}
	for _, on := range []bool{false, true} {
		form := url.Values{"csrf_token": {dev.csrf()}, "name": {"Ledgerly"}, "redirect_uris": {"https://ledgerly.example/callback"}}
		if on {
			form.Set("dpop_bound", "on")
		}
		if resp := dev.post(app, form); resp.Code != http.StatusSeeOther {
			t.Fatalf("save (dpop %v): %d", on, resp.Code)
		}
		if c, _ := p.s.tokens.Client(ctx, id); c.DPoPBoundAccessTokens != on {
			t.Fatalf("after saving dpop %v: %v", on, c.DPoPBoundAccessTokens)
		}
	}
}

func TestPortalAppLimit(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	ctx := context.Background()
	for i := range maxAppsPerDeveloper {
		if err := p.s.store.CreateClient(ctx, &tokenstore.Client{ID: fmt.Sprintf("app%d", i), Name: "App", OwnerID: p.user.ID}); err != nil {
			t.Fatal(err)
		}
	}
	dev := p.browserOf(p.user.ID)
	resp := dev.post("/oauth/developer/new", dev.registration())
	if resp.Code != http.StatusBadRequest || !strings.Contains(resp.Body.String(), "the most one developer may") {
		t.Fatalf("registration past the limit: %d", resp.Code)
	}
	if n := len(p.owned(p.user.ID)); n != maxAppsPerDeveloper {
		t.Fatalf("%d apps", n)
	}
	// Another developer is not limited by the first one's apps.
	other := p.browserOf(p.other.ID)
	f := other.registration()
	f.Set("business_id", "b9")
	if resp := other.post("/oauth/developer/new", f); resp.Code != http.StatusCreated {
		t.Fatalf("the other developer's registration: %d", resp.Code)
	}
}

// TestPortalAudit: every change to an app is logged with its client_id and
// who made it, and no log line holds its secret.
func TestPortalAudit(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	dp := &DeveloperPortal{}
	r := newRig(t, Config{DeveloperPortal: dp, Scopes: portalCatalogue, Logger: zap.New(core)})
	p := &portal{rig: r}
	dev := p.browserOf(p.user.ID)
	f := dev.registration()
	f.Set("business_id", "b1")
	resp := dev.post("/oauth/developer/new", f)
	id, secret := inputValue(resp.Body.String(), "client-id"), inputValue(resp.Body.String(), "client-secret")
	if id == "" || secret == "" {
		t.Fatalf("register: %d", resp.Code)
	}
	rot := dev.post("/oauth/developer/apps/"+id+"/secret", url.Values{"csrf_token": {dev.csrf()}})
	fresh := inputValue(rot.Body.String(), "client-secret")
	dev.post("/oauth/developer/apps/"+id+"/delete", url.Values{"csrf_token": {dev.csrf()}})
	var said []string
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, secret) || strings.Contains(line, fresh) {
			t.Fatalf("a log line holds a secret: %s", line)
		}
		if e.ContextMap()["client_id"] == id && e.ContextMap()["user_id"] == p.user.ID {
			said = append(said, e.Message)
		}
	}
	want := []string{"developer portal: app registered", "developer portal: app secret rotated", "developer portal: app deleted"}
	if strings.Join(said, "|") != strings.Join(want, "|") {
		t.Fatalf("audit log: %q, want %q", said, want)
	}
}

func TestPortalPaths(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	for path, served := range map[string]bool{
		"/oauth/developer": true, "/oauth/developer/": true, "/oauth/developer/new": true,
		"/oauth/developer/apps/x": true, "/oauth/developer/apps/x/secret": true, "/oauth/developer/apps/x/delete": true,
		"/oauth/developer/apps/x/first-party": true,
		"/oauth/developer/apps":               false, "/oauth/developer/apps/": false, "/oauth/developer/apps/x/y": false,
		"/oauth/developer/apps/x/secret/y": false, "/oauth/developer/other": false, "/oauth/developers": false,
	} {
		// Signed out: a page of the portal sends the browser to sign in;
		// anything else is not the portal's.
		if got := p.s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil)); got != served {
			t.Errorf("%s served: %v, want %v", path, got, served)
		}
	}
}
