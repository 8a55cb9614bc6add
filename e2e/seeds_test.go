package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
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
