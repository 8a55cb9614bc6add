package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRPInitiatedLogout drives OpenID Connect RP-Initiated Logout 1.0
// through the built binary: an app that got an id_token signs the user out
// with it and is sent back to its registered post-logout URI with its
// state; the next authorization request asks to sign in again. Requests
// that are wrong in any way sign nobody out and redirect nowhere.
func TestRPInitiatedLogout(t *testing.T) {
	n := startNode(t, nodeOptions{})
	const bye = "http://127.0.0.1/bye"
	c := n.registerClient(map[string]any{"name": "Logout App", "grant_types": []string{"authorization_code"},
		"scopes": []string{"openid", "read:invoices"}, "redirect_uris": []string{"http://127.0.0.1/cb"},
		"post_logout_redirect_uris": []string{bye}})
	var view map[string]any
	if st := n.adminJSON(http.MethodGet, "/oauthgate/clients/"+c.ClientID, nil, &view); st != 200 ||
		len(view["post_logout_redirect_uris"].([]any)) != 1 || view["post_logout_redirect_uris"].([]any)[0] != bye {
		t.Fatalf("admin API view: %d %v", st, view)
	}

	var md struct {
		EndSession string `json:"end_session_endpoint"`
	}
	resp, err := http.Get(n.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md.EndSession != n.URL+"/oauth/sign-out" {
		t.Fatalf("end_session_endpoint = %q", md.EndSession)
	}

	ua := newUserAgent(t)
	authURL := func(state string) string {
		return ua.authorizeURL(n, c.ClientID, "http://127.0.0.1/cb", "openid read:invoices", state)
	}
	code := codeFrom(t, ua.authorize(authURL("a1"), ""), "a1", n.URL)
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if st, err := postFormDecode(n.URL+"/oauth/token", c, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"http://127.0.0.1/cb"}}, &tok); err != nil || st != 200 || tok.IDToken == "" {
		t.Fatalf("token: %d %v", st, err)
	}
	// signedIn reports whether an authorization request goes straight
	// back to the app, without the sign-in page.
	signedIn := func() bool {
		t.Helper()
		p := ua.get(authURL("probe"))
		if p.Location == nil {
			t.Fatalf("authorize: %d\n%s", p.StatusCode, p.Body)
		}
		return !strings.HasSuffix(p.Location.Path, "/sign-in")
	}
	if !signedIn() {
		t.Fatal("not signed in after the flow")
	}

	hint := tok.IDToken
	tampered := hint[:len(hint)-10] + map[bool]string{true: "B", false: "A"}[hint[len(hint)-10] == 'A'] + hint[len(hint)-9:]
	for _, tc := range []struct {
		name   string
		params url.Values
	}{
		{"unregistered URI", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://127.0.0.1/elsewhere"}}},
		{"login redirect URI is not a logout one", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://127.0.0.1/cb"}}},
		{"URI without hint or client_id", url.Values{"post_logout_redirect_uri": {bye}}},
		{"mismatched client", url.Values{"id_token_hint": {hint}, "client_id": {demoClientID}, "post_logout_redirect_uri": {bye}}},
		{"tampered hint", url.Values{"id_token_hint": {tampered}, "post_logout_redirect_uri": {bye}}},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			var p *page
			if method == http.MethodGet {
				p = ua.get(md.EndSession + "?" + tc.params.Encode())
			} else {
				p = ua.post(md.EndSession, tc.params)
			}
			if p.StatusCode != http.StatusBadRequest || p.Location != nil || strings.Contains(strings.Join(p.Header.Values("Set-Cookie"), ";"), "oauthgate_session=;") {
				t.Errorf("%s (%s): %d %v; want 400, no redirect, no sign-out", tc.name, method, p.StatusCode, p.Location)
			}
			checkPageHeaders(t, tc.name, p.Header)
		}
		if !signedIn() {
			t.Fatalf("%s signed the user out", tc.name)
		}
	}

	// Without a hint the user is asked, and stays signed in until they
	// answer.
	q := ua.get(md.EndSession + "?" + url.Values{"client_id": {c.ClientID}, "post_logout_redirect_uri": {bye}, "state": {"q"}}.Encode())
	if q.StatusCode != 200 || !strings.Contains(q.Body, "Sign out of oauthgate?") || !strings.Contains(q.Body, "Logout App") {
		t.Fatalf("question: %d\n%s", q.StatusCode, q.Body)
	}
	if !signedIn() {
		t.Fatal("the question signed the user out")
	}

	// With the hint: out at once, back to the app with its state.
	out := ua.get(md.EndSession + "?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}, "state": {"st-1"}}.Encode())
	if out.StatusCode != http.StatusSeeOther || out.Location == nil || out.Location.String() != bye+"?state=st-1" {
		t.Fatalf("sign-out: %d %v\n%s", out.StatusCode, out.Location, out.Body)
	}
	if signedIn() {
		t.Fatal("still signed in after RP-initiated logout")
	}

	// Signed out, the same request with an expired-or-not hint still
	// redirects; without a registered URI it shows the signed-out page.
	if p := ua.get(md.EndSession + "?" + url.Values{"id_token_hint": {hint}}.Encode()); p.StatusCode != 200 || p.Location != nil || !strings.Contains(p.Body, "You are signed out") {
		t.Errorf("signed-out page: %d %v", p.StatusCode, p.Location)
	}
}

// TestSignOutButton: the consent page's sign-out form ends the sign-in;
// the form needs its CSRF token.
func TestSignOutButton(t *testing.T) {
	n := startNode(t, nodeOptions{})
	ua := newUserAgent(t)
	cp := consentPage(t, ua, ua.authorizeURL(n, demoClientID, n.URL+"/demo/callback", "read:invoices", "s")+"&prompt=consent", demoEmail, demoPassword)
	i := strings.Index(cp.Body, `class="signed-in"`)
	if i < 0 || !strings.Contains(cp.Body[i:], "Signed in as <strong>"+demoEmail+"</strong>") {
		t.Fatalf("no sign-out form on the consent page:\n%s", cp.Body)
	}
	f := parseForm(t, `<form action="/oauth/sign-out" `+cp.Body[i:])
	if f.Fields.Get("csrf_token") == "" {
		t.Fatalf("sign-out form fields: %v", f.Fields)
	}
	if p := ua.post(n.URL+"/oauth/sign-out", url.Values{"csrf_token": {wrongToken(f.Fields.Get("csrf_token"))}}); p.StatusCode != http.StatusForbidden {
		t.Errorf("wrong CSRF token: %d", p.StatusCode)
	}
	if p := ua.get(ua.authorizeURL(n, demoClientID, n.URL+"/demo/callback", "read:invoices", "s")); p.Location == nil || strings.HasSuffix(p.Location.Path, "/sign-in") {
		t.Fatal("a refused sign-out signed the user out")
	}
	p := ua.post(n.URL+"/oauth/sign-out", f.Fields)
	if p.StatusCode != 200 || !strings.Contains(p.Body, "You are signed out") {
		t.Fatalf("sign-out: %d\n%s", p.StatusCode, p.Body)
	}
	if p := ua.get(ua.authorizeURL(n, demoClientID, n.URL+"/demo/callback", "read:invoices", "s")); p.Location == nil || !strings.HasSuffix(p.Location.Path, "/sign-in") {
		t.Fatalf("after sign-out the authorization request does not ask to sign in: %d %v", p.StatusCode, p.Location)
	}
}
