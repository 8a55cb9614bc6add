package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// do sends one request the way a seed guide's curl line does.
func do(t *testing.T, method, url string, headers map[string]string, body string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, resp.Header
}

// TestSeedYionStack replays the YionStack guides' requests against
// examples/yionstack/Caddyfile: yion_/ysk_ credentials, JSON bodies under
// /api/v1/oauth, revocation with only the token, x-business-id.
func TestSeedYionStack(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yionstack/Caddyfile"})
	c := n.registerClient(map[string]any{
		"name": "Acme Books", "grant_types": []string{"client_credentials"},
		"scopes": []string{"read:invoices", "read:contacts"}, "businesses": []string{"business_uuid"},
	})
	if !strings.HasPrefix(c.ClientID, "yion_") || !strings.HasPrefix(c.ClientSecret, "ysk_") {
		t.Fatalf("credentials lack the configured prefixes: %s", c.ClientID)
	}
	body, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "client_id": c.ClientID, "client_secret": c.ClientSecret})
	code, tok, _ := do(t, "POST", n.URL+"/api/v1/oauth/token", map[string]string{"Content-Type": "application/json"}, string(body))
	if code != 200 || tok["expires_in"] != float64(3600) || tok["scope"] != "read:invoices read:contacts" {
		t.Fatalf("token: %d %v", code, tok)
	}
	access := tok["access_token"].(string)
	hdr := map[string]string{"Authorization": "Bearer " + access, "x-business-id": "business_uuid"}
	if code, _, _ := do(t, "GET", n.URL+"/api/v1/accounting/invoices", hdr, ""); code != 200 {
		t.Fatalf("first API call: %d", code)
	}
	if code, _, _ := do(t, "GET", n.URL+"/api/v1/crm/deals", hdr, ""); code != 403 {
		t.Errorf("deals without read:deals: %d", code)
	}
	// The guide's revoke: JSON with only the token, no client credentials.
	code, _, _ = do(t, "POST", n.URL+"/api/v1/oauth/revoke", map[string]string{"Content-Type": "application/json"}, `{ "token": "`+access+`" }`)
	if code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _, _ := do(t, "GET", n.URL+"/api/v1/accounting/invoices", hdr, ""); code != 401 {
		t.Errorf("revoked token: %d", code)
	}
	// Credentials that are sent are still checked.
	code, _, _ = do(t, "POST", n.URL+"/api/v1/oauth/revoke", map[string]string{"Content-Type": "application/json"},
		`{"token":"x","client_id":"`+c.ClientID+`","client_secret":"wrong"}`)
	if code != 401 {
		t.Errorf("revoke with a wrong secret: %d", code)
	}
	// Discovery points at the configured base path.
	_, md, _ := do(t, "GET", n.URL+"/.well-known/openid-configuration", nil, "")
	if md["token_endpoint"] != n.URL+"/api/v1/oauth/token" || md["authorization_endpoint"] != n.URL+"/api/v1/oauth/authorize" {
		t.Errorf("metadata: %v", md)
	}
}

// TestSeedYuvo replays the Yuvo guide's client-credentials requests against
// examples/yuvo/Caddyfile: Basic credentials, form body, trailing slash.
func TestSeedYuvo(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yuvo/Caddyfile"})
	c := n.registerClient(map[string]any{"name": "HR Push", "scopes": []string{"companies:read", "companies:write"}, "businesses": []string{"5fe01282e44241328a84e7c5cc169165"}})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret))
	// curl -H "Authorization: Basic …" -d grant_type=client_credentials https://…/oauth/token/
	code, tok, hdr := do(t, "POST", n.URL+"/oauth/token/", map[string]string{"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}, "grant_type=client_credentials")
	if code != 200 || !strings.EqualFold(tok["token_type"].(string), "bearer") || tok["expires_in"] != float64(3600) || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %v", code, tok)
	}
	access := tok["access_token"].(string)
	code, company, _ := do(t, "GET", n.URL+"/companies", map[string]string{"Authorization": "Bearer " + access, "x-company-id": "5fe01282e44241328a84e7c5cc169165"}, "")
	if code != 200 || company["company"] != "5fe01282e44241328a84e7c5cc169165" {
		t.Fatalf("companies: %d %v", code, company)
	}
	if code, _, _ := do(t, "GET", n.URL+"/companies", map[string]string{"Authorization": "Bearer " + access, "x-company-id": "another"}, ""); code != 403 {
		t.Errorf("another company: %d", code)
	}
	// The alternative: client_id and client_secret in the body.
	code, _, _ = do(t, "POST", n.URL+"/oauth/token/", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		"grant_type=client_credentials&client_id="+c.ClientID+"&client_secret="+c.ClientSecret)
	if code != 200 {
		t.Errorf("body credentials: %d", code)
	}
	// The guide's answer has no refresh token: the app asks again.
	if _, ok := tok["refresh_token"]; ok {
		t.Errorf("a refresh token for client credentials: %v", tok)
	}
}

// TestSeedYuvoCreatesCompanies replays the guide's client-credentials
// flow as its note describes it ("With this access token you can create
// companies and push employee's data from your application. You get full
// update access to these companies data") against examples/yuvo/Caddyfile,
// with only the app registered beforehand, owning nothing: POST /companies
// with no company header, then, with the same token and the id from the
// answer, GET and PUT the company and POST its employees. Access to a
// company the app did not create "could only be done via Authorization
// Code": another app's, or the admin's existing one, is refused.
func TestSeedYuvoCreatesCompanies(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yuvo/Caddyfile"})
	app := newYuvoApp(t, n, "HR Push")
	id := createCompany(t, n, app)
	useCompany(t, n, app, id)
	ownedOnAdmin(t, n, app.ClientID, id)
	refusedFor(t, n, newYuvoApp(t, n, "Other Payroll"), id)
	refusedFor(t, n, app, yuvoCompany)
	// A header is still needed on ordinary routes: the app may own several.
	if code, body, _ := do(t, "POST", n.URL+"/employees", app.auth("Content-Type", "application/json"), `[]`); code != 400 || body["error"] != "invalid_request" {
		t.Errorf("employees without the company header: %d %v", code, body)
	}
}

// TestSeedYAppointment: JSON revocation with client credentials in the body,
// and an API whose reads are POSTs.
func TestSeedYAppointment(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yappointment/Caddyfile"})
	c := n.registerClient(map[string]any{"name": "Scheduler", "scopes": []string{"bookings:read", "services:read"}, "businesses": []string{"company_1"}})
	body, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "client_id": c.ClientID, "client_secret": c.ClientSecret})
	code, tok, _ := do(t, "POST", n.URL+"/oauth/token", map[string]string{"Content-Type": "application/json"}, string(body))
	if code != 200 {
		t.Fatalf("token: %d %v", code, tok)
	}
	access := tok["access_token"].(string)
	hdr := map[string]string{"Authorization": "Bearer " + access, "x-business-id": "company_1", "Content-Type": "application/json"}
	if code, _, _ := do(t, "POST", n.URL+"/api/v1/bookings", hdr, `{"filter":{"status":"confirmed"}}`); code != 200 {
		t.Fatalf("bookings: %d", code)
	}
	if code, _, _ := do(t, "POST", n.URL+"/api/v1/customers", hdr, `{}`); code != 403 {
		t.Errorf("customers without customers:read: %d", code)
	}
	rev, _ := json.Marshal(map[string]string{"token": access, "client_id": c.ClientID, "client_secret": c.ClientSecret})
	if code, _, _ := do(t, "POST", n.URL+"/oauth/revoke", map[string]string{"Content-Type": "application/json"}, string(rev)); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	// "After revocation, the token no longer works"
	if code, _, _ := do(t, "POST", n.URL+"/api/v1/bookings", hdr, `{}`); code != 401 {
		t.Errorf("after revocation: %d", code)
	}
	// Without credentials revocation is refused here (no public_revocation).
	if code, _, _ := do(t, "POST", n.URL+"/oauth/revoke", map[string]string{"Content-Type": "application/json"}, `{"token":"`+access+`"}`); code != 401 {
		t.Errorf("unauthenticated revoke: %d", code)
	}
}

// The company admin declared in examples/yuvo/Caddyfile.
const (
	yuvoAdmin         = "admin@acme.example"
	yuvoAdminPassword = "company-admin-password"
	yuvoCompany       = "5fe01282e44241328a84e7c5cc169165"
)

// TestSeedYuvoAuthorizationCode replays the Yuvo guide's authorization-code
// flow against examples/yuvo/Caddyfile: the authorize request as the guide
// writes it (trailing slash, no scope), the code exchange and the refresh
// with HTTP Basic and form bodies, and "curl -H 'Authorization: Bearer …'
// https://api.yuvohub.com/companies" with no company header (tenant
// inject): the token "gives only access to that particular company data".
func TestSeedYuvoAuthorizationCode(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yuvo/Caddyfile"})
	const callback = "https://developers.yuvohub.com/callback/"
	c := n.registerClient(map[string]any{"name": "Payroll Sync", "scopes": []string{"companies:read"},
		"grant_types":   []string{"authorization_code", "refresh_token", "client_credentials"},
		"redirect_uris": []string{callback}})
	basic := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret)),
		"Content-Type": "application/x-www-form-urlencoded"}
	authorizeURL := func(redirect, state string) string {
		// GET https://api.yuvohub.com/oauth/authorize/?client_id=…&response_type=code&redirect_uri=…&state=…
		return n.URL + "/oauth/authorize/?client_id=" + c.ClientID + "&response_type=code&redirect_uri=" +
			url.QueryEscape(redirect) + "&state=" + state
	}

	// "If the user has not accepted your request": error=access_denied
	// and the state. First, before a consent is remembered.
	deny := newUserAgent(t)
	p := deny.get(authorizeURL(callback, "STATE"))
	for range 6 {
		switch {
		case p.StatusCode == http.StatusOK && strings.Contains(p.Request.URL.Path, "/sign-in"):
			p = deny.signIn(p, yuvoAdmin, yuvoAdminPassword)
			continue
		case p.StatusCode == http.StatusSeeOther && p.Location != nil && !strings.HasPrefix(p.Location.String(), callback):
			p = deny.get(p.Location.String())
			continue
		}
		break
	}
	if p.StatusCode != http.StatusOK || !strings.Contains(p.Request.URL.Path, "/consent") {
		t.Fatalf("no consent page: %d %s\n%s", p.StatusCode, p.Request.URL, p.Body)
	}
	p = deny.submit(p, url.Values{"decision": {"deny"}})
	if p.Location == nil || !strings.HasPrefix(p.Location.String(), callback+"?") ||
		p.Location.Query().Get("error") != "access_denied" || p.Location.Query().Get("state") != "STATE" {
		t.Errorf("deny: %d %v", p.StatusCode, p.Location)
	}

	// 1–3: the admin signs in and allows; the browser comes back to the
	// callback with the code and the state.
	ua := newUserAgent(t)
	cb := ua.authorizeAs(authorizeURL(callback, "34fFs29kd09"), yuvoAdmin, yuvoAdminPassword, "")
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != callback {
		t.Fatalf("redirected to %s, want %s", cb, callback)
	}
	code := codeFrom(t, cb, "34fFs29kd09", n.URL)

	// 4–5: curl -H "Authorization: Basic …" -d grant_type=authorization_code -d code=… -d redirect_uri=… …/oauth/token/
	st, tok, hdr := do(t, "POST", n.URL+"/oauth/token/", basic,
		"grant_type=authorization_code&code="+url.QueryEscape(code)+"&redirect_uri="+url.QueryEscape(callback))
	if st != 200 || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(3600) || tok["scope"] != "companies:read" ||
		tok["access_token"] == nil || tok["refresh_token"] == nil || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("code exchange: %d %v", st, tok)
	}
	access := tok["access_token"].(string)

	// 6: curl -H "Authorization: Bearer …" https://api.yuvohub.com/companies
	st, company, _ := do(t, "GET", n.URL+"/companies", map[string]string{"Authorization": "Bearer " + access}, "")
	if st != 200 || company["company"] != yuvoCompany || company["name"] == nil {
		t.Fatalf("GET /companies with only the bearer token: %d %v", st, company)
	}
	// Naming its company changes nothing; naming another is refused.
	if st, company, _ := do(t, "GET", n.URL+"/companies", map[string]string{"Authorization": "Bearer " + access, "x-company-id": yuvoCompany}, ""); st != 200 || company["company"] != yuvoCompany {
		t.Errorf("its own company by header: %d %v", st, company)
	}
	st, e, _ := do(t, "GET", n.URL+"/companies", map[string]string{"Authorization": "Bearer " + access, "x-company-id": "another"}, "")
	if st != 403 || e["error"] != "business_not_allowed" {
		t.Errorf("another company: %d %v", st, e)
	}
	// The token reads; it does not write.
	if st, e, _ := do(t, "POST", n.URL+"/companies", map[string]string{"Authorization": "Bearer " + access}, ""); st != 403 || e["error"] != "insufficient_scope" {
		t.Errorf("POST /companies with companies:read: %d %v", st, e)
	}

	// 7: curl -H "Authorization: Basic …" -d grant_type=refresh_token -d refresh_token=… …/oauth/token/
	st, tok2, _ := do(t, "POST", n.URL+"/oauth/token/", basic, "grant_type=refresh_token&refresh_token="+url.QueryEscape(tok["refresh_token"].(string)))
	if st != 200 || tok2["token_type"] != "Bearer" || tok2["expires_in"] != float64(3600) || tok2["access_token"] == nil {
		t.Fatalf("refresh: %d %v", st, tok2)
	}
	if st, company, _ := do(t, "GET", n.URL+"/companies", map[string]string{"Authorization": "Bearer " + tok2["access_token"].(string)}, ""); st != 200 || company["company"] != yuvoCompany {
		t.Errorf("refreshed token without the header: %d %v", st, company)
	}

	// "An alternative way of sending the client id and secret is as request
	// parameters (client_id and client_secret) in the POST body".
	st, tok3, _ := do(t, "POST", n.URL+"/oauth/token/", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		"grant_type=refresh_token&refresh_token="+url.QueryEscape(tok2["refresh_token"].(string))+
			"&client_id="+url.QueryEscape(c.ClientID)+"&client_secret="+url.QueryEscape(c.ClientSecret))
	if st != 200 || tok3["access_token"] == nil {
		t.Errorf("refresh with the credentials in the body: %d %v", st, tok3)
	}

	// The same client's client-credentials token is bound to no company:
	// it names one, even when its client owns exactly one.
	if st := n.adminJSON("POST", "/oauthgate/clients/"+c.ClientID+"/businesses", map[string]any{"business_id": yuvoCompany}, nil); st >= 300 {
		t.Fatalf("linking the company: %d", st)
	}
	st, cc, _ := do(t, "POST", n.URL+"/oauth/token/", basic, "grant_type=client_credentials")
	if st != 200 {
		t.Fatalf("client credentials: %d %v", st, cc)
	}
	ccHdr := map[string]string{"Authorization": "Bearer " + cc["access_token"].(string)}
	if st, e, _ := do(t, "GET", n.URL+"/companies", ccHdr, ""); st != 400 || e["error"] != "invalid_request" {
		t.Errorf("client-credentials token without the header: %d %v", st, e)
	}
	ccHdr["x-company-id"] = yuvoCompany
	if st, company, _ := do(t, "GET", n.URL+"/companies", ccHdr, ""); st != 200 || company["company"] != yuvoCompany {
		t.Errorf("client-credentials token naming its company: %d %v", st, company)
	}

	// Creating companies is the client-credentials flow's: a company
	// admin's token, even with companies:write, may not (user_tokens
	// refuse, the example's default), and it still writes its own company.
	w := n.registerClient(map[string]any{"name": "Payroll Writer", "scopes": []string{"companies:read", "companies:write"},
		"redirect_uris": []string{callback}})
	wp := ua.get(n.URL + "/oauth/authorize/?client_id=" + w.ClientID + "&response_type=code&redirect_uri=" + url.QueryEscape(callback) + "&state=w")
	for wp.StatusCode == http.StatusSeeOther && wp.Location != nil && !strings.HasPrefix(wp.Location.String(), callback) {
		wp = ua.get(wp.Location.String())
	}
	if wp.StatusCode == http.StatusOK {
		wp = ua.submit(wp, url.Values{"decision": {"allow"}})
	}
	wq := callbackQuery(t, wp, callback)
	st, wt, _ := do(t, "POST", n.URL+"/oauth/token/", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		"grant_type=authorization_code&code="+url.QueryEscape(wq.Get("code"))+"&redirect_uri="+url.QueryEscape(callback)+
			"&client_id="+url.QueryEscape(w.ClientID)+"&client_secret="+url.QueryEscape(w.ClientSecret))
	if st != 200 {
		t.Fatalf("writer's code exchange: %d %v", st, wt)
	}
	writer := map[string]string{"Authorization": "Bearer " + wt["access_token"].(string), "Content-Type": "application/json"}
	if st, e, _ := do(t, "POST", n.URL+"/companies", writer, `{"name":"Another Pte Ltd"}`); st != 403 || e["error"] != "access_denied" {
		t.Errorf("a company admin's token creating a company: %d %v", st, e)
	}
	if st, company, _ := do(t, "PUT", n.URL+"/companies/"+yuvoCompany, writer, `{"sector":"Retail"}`); st != 200 || company["company"] != yuvoCompany {
		t.Errorf("a company admin's token updating its company without the header: %d %v", st, company)
	}

	// "must exactly match … terminating slashes": the URI without its
	// slash is not redirected to.
	p = ua.get(authorizeURL(strings.TrimSuffix(callback, "/"), "s3"))
	if p.StatusCode != http.StatusBadRequest || p.Location != nil {
		t.Errorf("redirect_uri without the trailing slash: %d %v", p.StatusCode, p.Location)
	}
}

// toStop follows a browser flow from start (signing in as email when the
// sign-in page comes) and returns the first page that is neither a sign-in
// page nor a redirect inside the authorization server: the consent page, a
// redirect to the client, or an error page.
func (ua *userAgent) toStop(start, email, password, callback string) *page {
	ua.t.Helper()
	p := ua.get(start)
	for range 8 {
		switch {
		case p.StatusCode == http.StatusOK && strings.HasSuffix(p.Request.URL.Path, "/sign-in"):
			p = ua.signIn(p, email, password)
		case p.StatusCode == http.StatusSeeOther && p.Location != nil && !strings.HasPrefix(p.Location.String(), callback):
			p = ua.get(p.Location.String())
		default:
			return p
		}
	}
	ua.t.Fatalf("%s: no end to the redirects", start)
	return nil
}

// callbackQuery returns the query of p's redirect to callback, failing the
// test when p is not one.
func callbackQuery(t *testing.T, p *page, callback string) url.Values {
	t.Helper()
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasPrefix(p.Location.String(), callback+"?") {
		t.Fatalf("want a 303 to %s, got %d %v\n%s", callback, p.StatusCode, p.Location, p.Body)
	}
	return p.Location.Query()
}

// The user declared in examples/yionstack/Caddyfile.
const (
	yionUser     = "owner@yourbusiness.example"
	yionPassword = "yionstack-password"
)

// TestSeedYionStackAuthorizationCode replays the YionStack OAuth guide
// (seed 000) and its getting-started guide (001) request by request against
// examples/yionstack/Caddyfile: the authorize request with a 303 to the
// sign-in page keeping the whole OAuth URL, the consent screen (app name,
// scopes, current business and user), Allow and Deny with the state, the
// JSON code exchange and refresh with client_id/client_secret in the body,
// the API call with x-business-id, the token lifetimes, the single-use code,
// prompt=none and prompt=login, the first-party skip, the scope subset rule
// and the revocation with only the token.
func TestSeedYionStackAuthorizationCode(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yionstack/Caddyfile"})
	const callback = "https://yourapp.com/callback"
	c := n.registerClient(map[string]any{"name": "Ledger Sync", "scopes": []string{"read:invoices", "read:contacts"},
		"redirect_uris": []string{callback}})
	authorizeURL := func(clientID, state string, extra ...string) string {
		q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {callback},
			"scope": {"read:invoices read:contacts"}, "state": {state}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Set(extra[i], extra[i+1])
		}
		return n.URL + "/api/v1/oauth/authorize?" + q.Encode()
	}
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	post := func(path string, body map[string]string) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		st, m, _ := do(t, "POST", n.URL+path, jsonHdr, string(b))
		return st, m
	}

	// prompt=none without a session: back to the app with login_required,
	// never a login page.
	ua := newUserAgent(t)
	p := ua.get(authorizeURL(c.ClientID, "probe", "prompt", "none"))
	if q := callbackQuery(t, p, callback); q.Get("error") != "login_required" || q.Get("state") != "probe" {
		t.Errorf("prompt=none without a session: %v", p.Location)
	}

	// GET /api/v1/oauth/authorize?… → 303; not signed in, to /sign-in with
	// the full OAuth URL preserved.
	start := authorizeURL(c.ClientID, "random_csrf_token")
	p = ua.get(start)
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasSuffix(p.Location.Path, "/sign-in") {
		t.Fatalf("authorize: %d %v, want a 303 to the sign-in page", p.StatusCode, p.Location)
	}
	kept, err := url.Parse(p.Location.Query().Get("return_to"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := url.Parse(start)
	for _, k := range []string{"response_type", "client_id", "redirect_uri", "scope", "state"} {
		if kept.Query().Get(k) != want.Query().Get(k) {
			t.Errorf("sign-in return address %s lost %s", kept, k)
		}
	}

	// Signed in, the consent screen shows the app, the scopes, the current
	// business and the user; Deny goes back with access_denied and the state.
	p = ua.toStop(start, yionUser, yionPassword, callback)
	if p.StatusCode != http.StatusOK || !strings.HasSuffix(p.Request.URL.Path, "/consent") {
		t.Fatalf("want the consent page: %d %s\n%s", p.StatusCode, p.Request.URL, p.Body)
	}
	for _, s := range []string{"Ledger Sync", "View invoices, line items, and payment status", "View CRM contacts and companies",
		"Sam Owner", yionUser, "Your Business Ltd", "YionStack"} {
		if !strings.Contains(p.Body, s) {
			t.Errorf("consent page lacks %q", s)
		}
	}
	if f := parseForm(t, p.Body); f.Fields.Get("business_id") != "business_uuid" {
		t.Errorf("current business not preselected: %q", f.Fields.Get("business_id"))
	}
	denied := ua.submit(p, url.Values{"decision": {"deny"}})
	if q := callbackQuery(t, denied, callback); q.Get("error") != "access_denied" || q.Get("state") != "random_csrf_token" || q.Get("code") != "" {
		t.Errorf("deny: %v", denied.Location)
	}

	// Signed in, the authorize request answers "a 303 to the web consent
	// surface". Allow: https://yourapp.com/callback?code=…&state=random_csrf_token
	p = ua.get(start)
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasSuffix(p.Location.Path, "/consent") {
		t.Fatalf("authorize when signed in: %d %v, want a 303 to the consent page", p.StatusCode, p.Location)
	}
	p = ua.toStop(p.Location.String(), yionUser, yionPassword, callback)
	p = ua.submit(p, url.Values{"decision": {"allow"}})
	q := callbackQuery(t, p, callback)
	code := q.Get("code")
	if code == "" || q.Get("state") != "random_csrf_token" {
		t.Fatalf("allow: %v", p.Location)
	}

	// 04 Exchange the code: JSON, client_id and client_secret in the body.
	exchange := map[string]string{"grant_type": "authorization_code", "code": code, "client_id": c.ClientID,
		"client_secret": c.ClientSecret, "redirect_uri": callback}
	st, tok := post("/api/v1/oauth/token", exchange)
	if st != 200 || !strings.EqualFold(fmt.Sprint(tok["token_type"]), "bearer") || tok["expires_in"] != float64(3600) ||
		tok["scope"] != "read:invoices read:contacts" || tok["access_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("code exchange: %d %v", st, tok)
	}
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
	// "Single-use — exchange immediately"
	if st, e := post("/api/v1/oauth/token", exchange); st != 400 || e["error"] != "invalid_grant" {
		t.Errorf("the code a second time: %d %v", st, e)
	}

	// 05 Use the access token, with x-business-id.
	api := func(token, business string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", n.URL+"/api/v1/accounting/invoices", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if business != "" {
			req.Header.Set("x-business-id", business)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	st, body := api(access, "business_uuid")
	var invoices []map[string]any
	if err := json.Unmarshal(body, &invoices); st != 200 || err != nil || len(invoices) == 0 || invoices[0]["id"] != "inv_abc123" {
		t.Fatalf("first API call: %d %s", st, body)
	}
	if st, _ := api(access, "business_other"); st != 403 {
		t.Errorf("a business the user did not choose: %d", st)
	}
	if st, _ := api(access, ""); st != 400 {
		t.Errorf("no x-business-id: %d", st)
	}

	// Token lifecycle: access 1 hour (expires_in above), refresh 30 days.
	st, intro := post("/api/v1/oauth/introspect", map[string]string{"token": refresh, "client_id": c.ClientID, "client_secret": c.ClientSecret})
	if exp, iat := intro["exp"].(float64), intro["iat"].(float64); st != 200 || intro["active"] != true || exp-iat != 30*24*3600 {
		t.Errorf("refresh token lifetime: %d %v", st, intro)
	}

	// Refreshing tokens: JSON with the client's credentials; "Use the
	// refresh token to get a new pair" (001, step 5).
	st, tok = post("/api/v1/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": refresh,
		"client_id": c.ClientID, "client_secret": c.ClientSecret})
	if st != 200 || tok["access_token"] == nil || tok["access_token"] == access || tok["expires_in"] != float64(3600) ||
		tok["refresh_token"] == nil || tok["refresh_token"] == refresh {
		t.Fatalf("refresh, want a new pair: %d %v", st, tok)
	}
	if st, _ := api(tok["access_token"].(string), "business_uuid"); st != 200 {
		t.Errorf("refreshed access token: %d", st)
	}

	// prompt=none with a live session completes without UI.
	p = ua.get(authorizeURL(c.ClientID, "silent", "prompt", "none"))
	if q := callbackQuery(t, p, callback); q.Get("code") == "" || q.Get("state") != "silent" {
		t.Errorf("prompt=none with a session: %v", p.Location)
	}
	// prompt=login forces re-authentication although a session exists.
	p = ua.get(authorizeURL(c.ClientID, "again", "prompt", "login"))
	if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasSuffix(p.Location.Path, "/sign-in") {
		t.Errorf("prompt=login with a session: %d %v, want the sign-in page", p.StatusCode, p.Location)
	}

	// Scopes must be a subset of the registration's.
	p = ua.get(authorizeURL(c.ClientID, "too-much", "scope", "read:invoices write:invoices"))
	if q := callbackQuery(t, p, callback); q.Get("error") != "invalid_scope" || q.Get("state") != "too-much" {
		t.Errorf("a scope beyond the registration: %v", p.Location)
	}

	// Revoking tokens: curl -d '{ "token": "access_or_refresh_token" }', no
	// client credentials. The refresh token first, then an access token.
	refresh2 := tok["refresh_token"].(string)
	if st, _, _ := do(t, "POST", n.URL+"/api/v1/oauth/revoke", jsonHdr, `{ "token": "`+refresh2+`" }`); st != 200 {
		t.Fatalf("revoke the refresh token: %d", st)
	}
	if st, e := post("/api/v1/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": refresh2,
		"client_id": c.ClientID, "client_secret": c.ClientSecret}); st != 400 || e["error"] != "invalid_grant" {
		t.Errorf("refresh after revocation: %d %v", st, e)
	}

	// First-party (platform-scoped) apps skip consent; the token's business
	// is the signing-in user's current one, not the app owner's.
	fp := n.registerClient(map[string]any{"name": "YionStack Mobile", "first_party": true, "scopes": []string{"read:invoices", "read:contacts"},
		"redirect_uris": []string{callback}})
	fresh := newUserAgent(t)
	p = fresh.toStop(authorizeURL(fp.ClientID, "fp"), yionUser, yionPassword, callback)
	q = callbackQuery(t, p, callback)
	if q.Get("code") == "" || q.Get("state") != "fp" {
		t.Fatalf("first-party app: %v", p.Location)
	}
	st, tok = post("/api/v1/oauth/token", map[string]string{"grant_type": "authorization_code", "code": q.Get("code"),
		"client_id": fp.ClientID, "client_secret": fp.ClientSecret, "redirect_uri": callback})
	if st != 200 {
		t.Fatalf("first-party exchange: %d %v", st, tok)
	}
	fpAccess := tok["access_token"].(string)
	if st, _ := api(fpAccess, "business_uuid"); st != 200 {
		t.Errorf("first-party token, current business: %d", st)
	}
	if st, _ := api(fpAccess, "business_other"); st != 403 {
		t.Errorf("first-party token, another business: %d", st)
	}
	if st, _, _ := do(t, "POST", n.URL+"/api/v1/oauth/revoke", jsonHdr, `{ "token": "`+fpAccess+`" }`); st != 200 {
		t.Fatalf("revoke the access token: %d", st)
	}
	if st, _ := api(fpAccess, "business_uuid"); st != 401 {
		t.Errorf("revoked access token: %d", st)
	}
}

// The company admin declared in examples/yappointment/Caddyfile.
const (
	yappAdmin    = "admin@salon.example"
	yappPassword = "yappointment-password"
)

// TestSeedYAppointmentPKCE replays the yAppointment guide (seed 002) against
// examples/yappointment/Caddyfile: the authorize URL with state and an S256
// code challenge, the state echoed to the callback, the JSON code exchange
// with client_secret and code_verifier (axios posts an object as JSON), the
// API calls with only the bearer token (POST /api/v1/me without a body,
// POST /api/v1/bookings with a JSON filter), the refresh that returns a new
// refresh token and the retry with the new access token, and the
// revocation with the client's credentials, after which the token no
// longer works and the app must be authorised again.
func TestSeedYAppointmentPKCE(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yappointment/Caddyfile"})
	const callback = "https://myapp.com/callback"
	c := n.registerClient(map[string]any{"name": "Booking Bridge", "scopes": []string{"bookings:read", "services:read"},
		"redirect_uris": []string{callback}})
	postJSON := func(path string, body any, headers map[string]string) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		h := map[string]string{"Content-Type": "application/json"}
		for k, v := range headers {
			h[k] = v
		}
		st, m, _ := do(t, "POST", n.URL+path, h, string(b))
		return st, m
	}

	// generatePKCEChallenge: a base64url verifier of 32 random bytes and
	// its SHA-256, base64url.
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	verifier := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	state := fmt.Sprintf("%x", raw[:16])

	authURL, _ := url.Parse(n.URL + "/oauth/authorize")
	q := authURL.Query()
	q.Set("client_id", c.ClientID)
	q.Set("redirect_uri", callback)
	q.Set("response_type", "code")
	q.Set("scope", "bookings:read services:read")
	q.Set("state", state)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	authURL.RawQuery = q.Encode()

	ua := newUserAgent(t)
	p := ua.toStop(authURL.String(), yappAdmin, yappPassword, callback)
	if p.StatusCode != http.StatusOK || !strings.HasSuffix(p.Request.URL.Path, "/consent") {
		t.Fatalf("want the consent page: %d %s", p.StatusCode, p.Request.URL)
	}
	for _, s := range []string{"Booking Bridge", "View customer bookings", "View services and pricing", "yAppointment"} {
		if !strings.Contains(p.Body, s) {
			t.Errorf("consent page lacks %q", s)
		}
	}
	cb := callbackQuery(t, ua.submit(p, url.Values{"decision": {"allow"}}), callback)
	// if (returnedState !== sessionState) …
	if cb.Get("state") != state || cb.Get("code") == "" {
		t.Fatalf("callback: %v", cb)
	}

	// The exchange must carry the verifier of the challenge.
	exchange := map[string]string{"grant_type": "authorization_code", "code": cb.Get("code"), "client_id": c.ClientID,
		"client_secret": c.ClientSecret, "redirect_uri": callback, "code_verifier": verifier}
	wrong := maps.Clone(exchange)
	wrong["code_verifier"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	if st, e := postJSON("/oauth/token", wrong, nil); st != 400 || e["error"] != "invalid_grant" {
		t.Fatalf("a wrong code_verifier: %d %v", st, e)
	}
	// A wrong verifier spends the code (it has leaked): even the right one
	// is refused now, and the app starts again.
	if st, e := postJSON("/oauth/token", exchange, nil); st != 400 || e["error"] != "invalid_grant" {
		t.Fatalf("the code after a wrong code_verifier: %d %v", st, e)
	}
	p = ua.toStop(authURL.String(), yappAdmin, yappPassword, callback)
	if p.StatusCode == http.StatusOK {
		p = ua.submit(p, url.Values{"decision": {"allow"}})
	}
	cb = callbackQuery(t, p, callback)
	exchange["code"] = cb.Get("code")
	st, tok := postJSON("/oauth/token", exchange, nil)
	// Returns: { "access_token", "token_type": "Bearer", "expires_in": 3600, "refresh_token" }
	if st != 200 || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(3600) || tok["access_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("code exchange: %d %v", st, tok)
	}
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
	// "access_token": "yapp_at_...", "refresh_token": "yapp_rt_..."
	if !yappAccessRE.MatchString(access) || !yappRefreshRE.MatchString(refresh) {
		t.Errorf("token formats: access yapp_at_ %v, refresh yapp_rt_ %v; want both", yappAccessRE.MatchString(access), yappRefreshRE.MatchString(refresh))
	}

	// api.post('/api/v1/me'): no body, no company header; the token's
	// company is the one.
	bearer := map[string]string{"Authorization": "Bearer " + access}
	if st, me, _ := do(t, "POST", n.URL+"/api/v1/me", bearer, ""); st != 200 || me["company"] != "company_1" {
		t.Errorf("POST /api/v1/me: %d %v", st, me)
	}
	if st, b := postJSON("/api/v1/bookings", map[string]any{"filter": map[string]string{"status": "confirmed"}}, bearer); st != 200 || b["company"] != "company_1" {
		t.Errorf("POST /api/v1/bookings: %d %v", st, b)
	}
	if st, e := postJSON("/api/v1/customers", map[string]any{}, bearer); st != 403 || e["error"] != "insufficient_scope" {
		t.Errorf("customers without customers:read: %d %v", st, e)
	}

	// "When you get a 401 error, refresh the token": a bad access token is
	// 401 with a challenge; the refresh returns a new access token and a
	// new refresh token, and the retried request passes.
	stale := map[string]string{"Authorization": "Bearer " + access + "x"}
	st, _, hdr := do(t, "POST", n.URL+"/api/v1/bookings", stale, "")
	if st != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("a token that no longer works: %d %q", st, hdr.Get("WWW-Authenticate"))
	}
	st, tok = postJSON("/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": refresh,
		"client_id": c.ClientID, "client_secret": c.ClientSecret}, nil)
	if st != 200 || tok["access_token"] == nil || tok["refresh_token"] == nil || tok["refresh_token"] == refresh {
		t.Fatalf("refresh: %d %v", st, tok)
	}
	access = tok["access_token"].(string)
	if !yappAccessRE.MatchString(access) || !yappRefreshRE.MatchString(tok["refresh_token"].(string)) {
		t.Errorf("refreshed token formats: access yapp_at_ %v, refresh yapp_rt_ %v; want both", yappAccessRE.MatchString(access), yappRefreshRE.MatchString(tok["refresh_token"].(string)))
	}
	bearer["Authorization"] = "Bearer " + access
	if st, b := postJSON("/api/v1/bookings", map[string]any{"filter": map[string]string{"status": "confirmed"}}, bearer); st != 200 || b["company"] != "company_1" {
		t.Errorf("the retried request: %d %v", st, b)
	}

	// revokeToken: JSON with the token and the client's credentials.
	if st, e := postJSON("/oauth/revoke", map[string]string{"token": access, "client_id": c.ClientID, "client_secret": c.ClientSecret}, nil); st != 200 {
		t.Fatalf("revoke: %d %v", st, e)
	}
	// "After revocation, the token no longer works"
	if st, _, _ := do(t, "POST", n.URL+"/api/v1/me", bearer, ""); st != 401 {
		t.Errorf("revoked token: %d", st)
	}
	// "the customer will need to re-authorize your app": the refresh token
	// of the same grant is dead too.
	if st, e := postJSON("/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": tok["refresh_token"].(string),
		"client_id": c.ClientID, "client_secret": c.ClientSecret}, nil); st != 400 || e["error"] != "invalid_grant" {
		t.Errorf("refresh after revocation: %d %v", st, e)
	}
}
