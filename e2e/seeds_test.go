package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
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

	// "must exactly match … terminating slashes": the URI without its
	// slash is not redirected to.
	p = ua.get(authorizeURL(strings.TrimSuffix(callback, "/"), "s3"))
	if p.StatusCode != http.StatusBadRequest || p.Location != nil {
		t.Errorf("redirect_uri without the trailing slash: %d %v", p.StatusCode, p.Location)
	}
}
