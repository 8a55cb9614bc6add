package e2e

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// get calls the gateway with a bearer token and an optional business header.
func get(t *testing.T, method, url, token, business string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if business != "" {
		req.Header.Set("X-Business-Id", business)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// errorBody is an RFC 6749 / RFC 6750 JSON error.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Scope       string `json:"scope"`
}

func decodeError(t *testing.T, body []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e
}

// TestQuickStart is the README's quick start: register a client, get a
// token with golang.org/x/oauth2/clientcredentials, call the demo routes.
func TestQuickStart(t *testing.T) {
	n := startNode(t, nodeOptions{})
	c := n.registerClient(map[string]any{
		"name":        "Payroll Sync",
		"grant_types": []string{"client_credentials"},
		"scopes":      []string{"read:invoices", "read:contacts"},
		"businesses":  []string{"biz_acme"},
	})
	if c.ClientID == "" || c.ClientSecret == "" {
		t.Fatalf("registration answered %+v", c)
	}

	cc := clientcredentials.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		TokenURL:     n.URL + "/oauth/token",
		Scopes:       []string{"read:invoices"},
	}
	tok, err := cc.Token(ctx(t))
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
		t.Errorf("token type %q, expiry %v", tok.TokenType, tok.Expiry)
	}
	if got, _ := tok.Extra("scope").(string); got != "read:invoices" {
		t.Errorf("scope = %q, want read:invoices", got)
	}

	// The accounting upstream sees the business and identity, not the token.
	// Called by the name a user types, so the upstream's own site must not
	// depend on the gateway's Host header.
	viaLocalhost := strings.Replace(n.URL, "127.0.0.1", "localhost", 1)
	resp, body := get(t, "GET", viaLocalhost+"/api/v1/accounting/invoices", tok.AccessToken, "biz_acme")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET invoices: %d %s", resp.StatusCode, body)
	}
	var invoices []struct {
		Business string            `json:"business"`
		Seen     map[string]string `json:"seen_by_upstream"`
	}
	if err := json.Unmarshal(body, &invoices); err != nil || len(invoices) != 1 {
		t.Fatalf("upstream body %s: %v", body, err)
	}
	if inv := invoices[0]; inv.Business != "biz_acme" || inv.Seen["x-auth-subject"] != c.ClientID ||
		inv.Seen["x-auth-client-id"] != c.ClientID || inv.Seen["x-auth-scopes"] != "read:invoices" || inv.Seen["authorization"] != "" {
		t.Errorf("upstream saw %+v", inv)
	}

	// The oauth2 client's own transport works too.
	hc := cc.Client(ctx(t))
	req, _ := http.NewRequest("GET", n.URL+"/api/v1/accounting/invoices/inv_abc123", nil)
	req.Header.Set("x-business-id", "biz_acme")
	r2, err := hc.Do(req)
	if err != nil || r2.StatusCode != http.StatusOK {
		t.Fatalf("oauth2 transport: %v %v", err, r2)
	}
	r2.Body.Close()

	// A business the client does not own: a distinct 403.
	resp, body = get(t, "GET", n.URL+"/api/v1/accounting/invoices", tok.AccessToken, "biz_other")
	if e := decodeError(t, body); resp.StatusCode != http.StatusForbidden || e.Error != "business_not_allowed" {
		t.Errorf("foreign business: %d %+v", resp.StatusCode, e)
	}
	// A scope the token lacks: 403 insufficient_scope naming it.
	resp, body = get(t, "POST", n.URL+"/api/v1/accounting/invoices", tok.AccessToken, "biz_acme")
	e := decodeError(t, body)
	if resp.StatusCode != http.StatusForbidden || e.Error != "insufficient_scope" || e.Scope != "write:invoices" ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="write:invoices"`) {
		t.Errorf("missing scope: %d %+v %q", resp.StatusCode, e, resp.Header.Get("WWW-Authenticate"))
	}
	// CRM needs read:contacts, which this token did not ask for.
	resp, _ = get(t, "GET", n.URL+"/api/v1/crm/contacts", tok.AccessToken, "biz_acme")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("crm with invoices token: %d", resp.StatusCode)
	}

	// Secrets and tokens never reach the log.
	n.Stop()
	logs := n.Logs()
	for _, secret := range []string{c.ClientSecret, tok.AccessToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret or token")
		}
	}
}

// TestTokenEndpointStyles exercises every request shape the seed guides
// show: Basic or body credentials, form (with charset) or JSON bodies, and
// the Yuvo guide's trailing slash.
func TestTokenEndpointStyles(t *testing.T) {
	n := startNode(t, nodeOptions{})
	c := n.registerClient(map[string]any{"name": "Styles", "scopes": []string{"read:invoices"}, "businesses": []string{"b1"}})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ClientID)+":"+url.QueryEscape(c.ClientSecret)))
	jsonBody, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "client_id": c.ClientID, "client_secret": c.ClientSecret})
	form := "grant_type=client_credentials"
	formCreds := form + "&client_id=" + url.QueryEscape(c.ClientID) + "&client_secret=" + url.QueryEscape(c.ClientSecret)
	cases := []struct {
		name, path, ctype, auth, body string
	}{
		{"basic+form (Yuvo)", "/oauth/token", "application/x-www-form-urlencoded", basic, form},
		{"basic+form trailing slash (Yuvo)", "/oauth/token/", "application/x-www-form-urlencoded", basic, form},
		{"form charset", "/oauth/token", "application/x-www-form-urlencoded;charset=UTF-8", basic, form},
		{"body credentials form (Yoco)", "/oauth/token", "application/x-www-form-urlencoded", "", formCreds},
		{"JSON body credentials (YionStack)", "/oauth/token", "application/json", "", string(jsonBody)},
		{"JSON with Basic", "/oauth/token", "application/json", basic, `{"grant_type":"client_credentials"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", n.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var tr struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int    `json:"expires_in"`
			}
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&tr) != nil || tr.AccessToken == "" {
				t.Fatalf("status %d, %+v", resp.StatusCode, tr)
			}
			if tr.ExpiresIn < 3590 || tr.ExpiresIn > 3600 || !strings.EqualFold(tr.TokenType, "bearer") {
				t.Errorf("response %+v", tr)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			r, body := get(t, "GET", n.URL+"/api/v1/accounting/invoices", tr.AccessToken, "b1")
			if r.StatusCode != 200 {
				t.Errorf("using token: %d %s", r.StatusCode, body)
			}
		})
	}
	_ = oauth2.AuthStyleInHeader
}
