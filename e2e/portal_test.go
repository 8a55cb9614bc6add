package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The developer portal through the binary: an app registered on the portal
// gets tokens through consent, and deleting it on the portal refuses them
// at once, on every node (the admin API's DeleteClient path).

// TestPortalDeleteSQLite is portalDeleteRefused on the single-node default.
func TestPortalDeleteSQLite(t *testing.T) {
	n := startNode(t, nodeOptions{})
	newCodeFlow(t, n)
	portalDeleteRefused(t, n, n)
}

var credentialRE = regexp.MustCompile(`id="(client-id|client-secret)" class="credential[^"]*" type="text" readonly value="([^"]*)"`)

// portalRegister registers a confidential app on n's portal with the
// browser (signed in), and returns it as the reveal shows it.
func portalRegister(t *testing.T, f *codeFlow, n *node, name string) registeredClient {
	t.Helper()
	return portalRegisterAt(t, f.browser, n.URL+"/oauth", name)
}

// portalRegisterAt registers a confidential app for business b1 on the
// portal under base (the server's URL and base path).
func portalRegisterAt(t *testing.T, browser *http.Client, base, name string) registeredClient {
	t.Helper()
	resp, err := browser.Get(base + "/developer/new")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("registration form on %s: %d", base, resp.StatusCode)
	}
	form := url.Values{"csrf_token": {hiddenInput(page, "csrf_token")}, "form_id": {hiddenInput(page, "form_id")},
		"name": {name}, "redirect_uris": {flowRedirect}, "client_type": {"confidential"},
		"scope": {"read:invoices", "offline_access"}, "business_id": {"b1"}}
	resp, err = browser.PostForm(base+"/developer/new", form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("registering on %s: %d", base, resp.StatusCode)
	}
	c := registeredClient{Name: name}
	for _, m := range credentialRE.FindAllSubmatch(page, -1) {
		if string(m[1]) == "client-id" {
			c.ClientID = html.UnescapeString(string(m[2]))
		} else {
			c.ClientSecret = html.UnescapeString(string(m[2]))
		}
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		t.Fatalf("the reveal lacks the credentials:\n%s", page)
	}
	return c
}

// consentGrant runs the code flow for a third-party app (the browser is
// signed in): the consent page, Allow for b1, the code exchange.
func consentGrant(t *testing.T, f *codeFlow, n *node) (access, refresh string) {
	t.Helper()
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {f.client.ClientID}, "redirect_uri": {flowRedirect},
		"scope": {"read:invoices offline_access"}, "state": {"s"}, "code_challenge_method": {"S256"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}}
	resp, err := f.browser.Get(n.URL + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/oauth/consent") {
		t.Fatalf("authorize: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, err = f.browser.PostForm(n.URL+"/oauth/consent", url.Values{"request": {hiddenInput(page, "request")},
		"csrf_token": {hiddenInput(page, "csrf_token")}, "business_id": {"b1"}, "decision": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("consent: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	st, err := postFormDecode(n.URL+"/oauth/token", f.client, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {flowRedirect}, "code_verifier": {verifier}}, &tr)
	if err != nil || st != http.StatusOK {
		t.Fatalf("code exchange: %d %v", st, err)
	}
	return tr.AccessToken, tr.RefreshToken
}

// portalDeleteRefused: the developer registers an app on a's portal, the
// app gets tokens on a, the developer deletes it on a's portal, and b
// refuses its access token (gateway 401, introspection inactive) and its
// refresh token at once. The user newCodeFlow made must exist.
func portalDeleteRefused(t *testing.T, a, b *node) {
	t.Helper()
	f := newBrowserFlow(a)
	if _, _, err := f.grant(a); err != nil { // signs the browser in
		t.Fatal(err)
	}
	app := portalRegister(t, f, a, fmt.Sprintf("Portal app %s", rand.Text()[:6]))
	pf := &codeFlow{browser: f.browser, client: app}
	access, refresh := consentGrant(t, pf, a)
	introspector := f.client
	active := func(n *node) bool {
		var res struct{ Active bool }
		st, err := postFormDecode(n.URL+"/oauth/introspect", introspector, url.Values{"token": {access}}, &res)
		return err == nil && st == http.StatusOK && res.Active
	}
	if st := gateway(b, access); st != http.StatusOK || !active(b) {
		t.Fatalf("before the delete, %s: gateway %d, active %v", b.URL, st, active(b))
	}

	appPage := a.URL + "/oauth/developer/apps/" + url.PathEscape(app.ClientID)
	resp, err := f.browser.Get(appPage + "/delete")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete question: %d", resp.StatusCode)
	}
	resp, err = f.browser.PostForm(appPage+"/delete", url.Values{"csrf_token": {hiddenInput(page, "csrf_token")}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Query().Get("notice") != "deleted" {
		t.Fatalf("delete on the portal: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	d, ok := waitUntil(propagationBound, func() bool { return gateway(b, access) == http.StatusUnauthorized && !active(b) })
	if !ok {
		t.Fatalf("%s still accepts the deleted app's token after %v", b.URL, d)
	}
	t.Logf("portal delete on %s refused on %s after %v", a.URL, b.URL, d)
	var e errorBody
	resp, err = fast.PostForm(b.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh},
		"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || e.Error != "invalid_client" {
		t.Errorf("refresh of the deleted app on %s: %d %q, want 401 invalid_client", b.URL, resp.StatusCode, e.Error)
	}
}

// TestSeedYionStackDeveloper: "Go to Settings → Developer … and click
// Register app" (seed 001) on examples/yionstack/Caddyfile: a signed-out
// developer is sent to sign in under /api/v1/oauth and back, registers an
// app, and gets yion_/ysk_ credentials that authenticate.
func TestSeedYionStackDeveloper(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yionstack/Caddyfile"})
	if st := n.adminJSON(http.MethodPost, "/oauthgate/users", map[string]any{"email": flowEmail, "password": flowPassword, "name": "Kim",
		"businesses": []map[string]string{{"id": "b1", "name": "B1"}}}, nil); st != http.StatusCreated {
		t.Fatalf("creating a user: %d", st)
	}
	browser := newBrowserFlow(n).browser
	base := n.URL + "/api/v1/oauth"
	resp, err := browser.Get(base + "/developer")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/api/v1/oauth/sign-in" || hiddenInput(page, "return_to") != "/api/v1/oauth/developer" {
		t.Fatalf("signed out: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, err = browser.PostForm(base+"/sign-in", url.Values{"email": {flowEmail}, "password": {flowPassword},
		"csrf_token": {hiddenInput(page, "csrf_token")}, "return_to": {hiddenInput(page, "return_to")}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/api/v1/oauth/developer" {
		t.Fatalf("after sign-in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	c := portalRegisterAt(t, browser, base, "Acme Books")
	if !strings.HasPrefix(c.ClientID, "yion_") || !strings.HasPrefix(c.ClientSecret, "ysk_") {
		t.Fatalf("credentials lack the configured prefixes: %s", c.ClientID)
	}
	// The secret authenticates the app (revocation checks credentials that
	// are sent), and a wrong one does not.
	for secret, want := range map[string]int{c.ClientSecret: http.StatusOK, c.ClientSecret + "x": http.StatusUnauthorized} {
		resp, err := fast.PostForm(base+"/revoke", url.Values{"token": {"x"}, "client_id": {c.ClientID}, "client_secret": {secret}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("revoke with the app's credentials (right secret: %v): %d, want %d", secret == c.ClientSecret, resp.StatusCode, want)
		}
	}
}
