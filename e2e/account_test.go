package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestDelegatedConnectedApps: with `identity delegated` the connected-apps
// page is the platform user's: a signed-out browser goes to the platform's
// sign-in page with the page's absolute URL as the return address, then
// sees the apps it authorized and disconnects one; its tokens die and its
// consent is asked again. There is no oauthgate sign-out in the footer
// (the platform owns the sign-in), but the page's link is there.
func TestDelegatedConnectedApps(t *testing.T) {
	plat := newPlatform(t)
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/delegated.Caddyfile", Env: []string{
		"PLATFORM_SESSION_URL=" + plat.URL + "/api/session",
		"PLATFORM_SIGN_IN_URL=" + plat.URL + "/sign-in",
	}})
	const redirect = "http://127.0.0.1/cb"
	c := n.registerClient(map[string]any{"name": "Partner App", "scopes": []string{"read:invoices"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "redirect_uris": []string{redirect}})
	conf := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: redirect, Scopes: []string{"read:invoices"},
		Endpoint: oauth2.Endpoint{AuthURL: n.URL + "/oauth/authorize", TokenURL: n.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	ua := newUserAgent(t)
	account := n.URL + "/oauth/account"

	p := ua.get(account)
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasPrefix(p.Location.String(), plat.URL+"/sign-in?") ||
		p.Location.Query().Get("next") != account {
		t.Fatalf("signed out: %d %v, want the platform's sign-in returning to %s", p.StatusCode, p.Location, account)
	}
	if p = ua.get(p.Location.String()); p.Location == nil || p.Location.String() != account {
		t.Fatalf("platform sign-in returned to %v", p.Location)
	}
	p = ua.get(account)
	if p.StatusCode != http.StatusOK || !strings.Contains(p.Body, "No connected apps") || !strings.Contains(p.Body, "Alice Example") {
		t.Fatalf("signed in at the platform: %d\n%s", p.StatusCode, p.Body)
	}
	if strings.Contains(p.Body, "Sign out") || !strings.Contains(p.Body, `aria-current="page">Connected apps</a>`) {
		t.Error("footer under delegated identity: want the Connected apps link and no sign-out")
	}

	// The platform failing is a page that says so, not a sign-in prompt.
	plat.down.Store(true)
	if p := ua.get(account); p.StatusCode != http.StatusServiceUnavailable || !strings.Contains(p.Body, "Temporarily unavailable") {
		t.Errorf("platform down: %d, want 503 Temporarily unavailable", p.StatusCode)
	}
	plat.down.Store(false)

	verifier := oauth2.GenerateVerifier()
	p = ua.get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if p.Location == nil || p.Location.Path != "/oauth/consent" {
		t.Fatalf("authorize: %d %v", p.StatusCode, p.Location)
	}
	p = ua.get(p.Location.String())
	p = ua.submit(p, url.Values{"decision": {"allow"}, "business_id": {"biz_beta"}})
	tok, err := conf.Exchange(ctx(t), codeFrom(t, p.Location, "st", n.URL), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := tokenClaims(t, tok.AccessToken)["gid"].(string)

	p = ua.get(account)
	for _, want := range []string{"Beta GmbH", `<h3 class="app-name">Partner App</h3>`, `value="` + gid + `"`, "View invoices, line items, and payment status"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("connected apps lacks %q", want)
		}
	}
	if resp, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok.AccessToken, "biz_beta"); resp.StatusCode != http.StatusOK {
		t.Fatalf("gateway before Disconnect: %d", resp.StatusCode)
	}
	d := ua.post(account, url.Values{"csrf_token": {parseForm(t, p.Body).Fields.Get("csrf_token")}, "grant_id": {gid}})
	if d.StatusCode != http.StatusSeeOther || d.Location == nil || d.Location.String() != account+"?disconnected="+url.QueryEscape(c.ClientID) {
		t.Fatalf("Disconnect: %d %v\n%s", d.StatusCode, d.Location, d.Body)
	}
	if resp, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok.AccessToken, "biz_beta"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("gateway after Disconnect: %d, want 401", resp.StatusCode)
	}
	if _, err := conf.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh after Disconnect: %v, want invalid_grant", err)
	}
	p = ua.get(d.Location.String())
	if !strings.Contains(p.Body, "<strong>Partner App</strong> was disconnected") || strings.Contains(p.Body, `value="`+gid+`"`) {
		t.Errorf("page after Disconnect:\n%s", p.Body)
	}
	p = ua.get(conf.AuthCodeURL("again", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
	if p.Location == nil || p.Location.Query().Get("error") != "consent_required" {
		t.Errorf("prompt=none after Disconnect: %v, want consent_required", p.Location)
	}
}
