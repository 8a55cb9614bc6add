package e2e

import (
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestRememberedConsentResources: against the built binary, a consent
// given for one resource ("limited to" it) is remembered for that
// resource only: a later request for it skips the consent page, also
// under prompt=none; a request for another resource, or without
// resource, shows the consent page again, and prompt=none answers
// consent_required.
func TestRememberedConsentResources(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/resources.Caddyfile"})
	crm, acct := n.URL+"/api/crm", n.URL+"/api/accounting"
	c := n.registerClient(map[string]any{"name": "Two APIs", "scopes": []string{"read:contacts", "read:invoices"},
		"grant_types":   []string{"authorization_code", "refresh_token"},
		"redirect_uris": []string{"http://127.0.0.1/cb"}})
	cfg := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: "http://127.0.0.1/cb",
		Scopes: []string{"read:invoices"}, Endpoint: oauth2.Endpoint{AuthURL: n.URL + "/oauth/authorize", TokenURL: n.URL + "/oauth/token"}}
	ua := newUserAgent(t)
	authURL := func(state string, opts ...oauth2.AuthCodeOption) string {
		return cfg.AuthCodeURL(state, opts...)
	}
	res := func(r string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam("resource", r) }
	none := oauth2.SetAuthURLParam("prompt", "none")

	// Consent for accounting only.
	codeFrom(t, ua.authorize(authURL("first", res(acct)), "biz_acme"), "first", n.URL)

	// The same resource: remembered, the code's token is for accounting.
	p := ua.get(authURL("again", res(acct), none))
	if p.Location == nil {
		t.Fatalf("prompt=none for accounting: %d\n%s", p.StatusCode, p.Body)
	}
	tok, err := cfg.Exchange(ctx(t), codeFrom(t, p.Location, "again", n.URL))
	if err != nil {
		t.Fatal(err)
	}
	if r, b := gwDo(t, "GET", acct+"/invoices", tok.AccessToken, "x-business-id", "biz_acme"); r.StatusCode != 200 {
		t.Fatalf("token at accounting: %d %s", r.StatusCode, b)
	}
	if r, _ := gwDo(t, "GET", crm+"/contacts", tok.AccessToken, "x-business-id", "biz_acme"); r.StatusCode != 401 {
		t.Fatalf("accounting token at crm: %d", r.StatusCode)
	}

	// Another resource, or none (the default audience, every resource):
	// not covered.
	for _, tc := range []struct {
		name string
		opts []oauth2.AuthCodeOption
	}{
		{"crm", []oauth2.AuthCodeOption{res(crm)}},
		{"without resource", nil},
	} {
		p := ua.get(authURL("none", append(tc.opts, none)...))
		if p.Location == nil || p.Location.Query().Get("error") != "consent_required" || p.Location.Query().Get("code") != "" {
			t.Errorf("prompt=none %s: %d %v", tc.name, p.StatusCode, p.Location)
		}
		p = ua.get(authURL("ask", tc.opts...))
		if p.Location == nil || p.Location.Path != "/oauth/consent" {
			t.Errorf("%s: %d %v, want the consent page", tc.name, p.StatusCode, p.Location)
			continue
		}
		if page := ua.get(p.Location.String()); page.StatusCode != 200 ||
			(tc.name == "crm" && !strings.Contains(page.Body, "<code>"+crm+"</code>")) {
			t.Errorf("%s consent page: %d\n%s", tc.name, page.StatusCode, page.Body)
		}
	}
}
