package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauthgate/oauthgate/dpop/dpoptest"
)

// TestDPoPNonces: with `dpop { nonce <secret> }`, the token endpoint and
// the gateway ask for the server's nonce (400 and 401 use_dpop_nonce, with
// DPoP-Nonce), a proof carrying it passes, and a second node with the same
// secret hands out the same nonce, so a client moving between nodes keeps
// its nonce (the cross-node defence of docs/dpop.md).
func TestDPoPNonces(t *testing.T) {
	env := []string{"DPOP_NONCE_SECRET=e2e-shared-nonce-secret"}
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/dpop.Caddyfile", Env: env})
	c := n.registerClient(map[string]any{"name": "Nonce", "grant_types": []string{"client_credentials"}, "scopes": []string{"read:invoices"}})
	key, err := dpoptest.NewKey("EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(p dpoptest.Proof) string {
		s, err := key.Sign(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	do := func(req *http.Request) (*http.Response, string) {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	tokenURL := n.URL + "/oauth/token"
	tokenReq := func(proof string) *http.Request {
		req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ClientID, c.ClientSecret)
		req.Header.Set("DPoP", proof)
		return req
	}

	resp, body := do(tokenReq(sign(dpoptest.Proof{Method: "POST", URL: tokenURL})))
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != 400 || !strings.Contains(body, `"use_dpop_nonce"`) || nonce == "" {
		t.Fatalf("token request without the nonce: %d %s, DPoP-Nonce %q", resp.StatusCode, body, nonce)
	}
	resp, body = do(tokenReq(sign(dpoptest.Proof{Method: "POST", URL: tokenURL, Nonce: nonce})))
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	_ = json.Unmarshal([]byte(body), &tok)
	if resp.StatusCode != 200 || tok.TokenType != "DPoP" {
		t.Fatalf("token request with the nonce: %d %s", resp.StatusCode, body)
	}

	api := n.URL + "/api/v1/invoices"
	apiReq := func(nonce string) *http.Request {
		req, _ := http.NewRequest("GET", api, nil)
		req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		req.Header.Set("DPoP", sign(dpoptest.Proof{Method: "GET", URL: api, AccessToken: tok.AccessToken, Nonce: nonce}))
		return req
	}
	resp, body = do(apiReq(""))
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 401 || !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `error="use_dpop_nonce"`) ||
		!strings.Contains(ch, `algs="ES256 EdDSA Ed25519"`) || resp.Header.Get("DPoP-Nonce") != nonce {
		t.Fatalf("API call without the nonce: %d %s, challenge %q, DPoP-Nonce %q", resp.StatusCode, body, ch, resp.Header.Get("DPoP-Nonce"))
	}
	resp, body = do(apiReq(nonce))
	if resp.StatusCode != 200 || body != "authorization=[] dpop=[]" {
		t.Fatalf("API call with the nonce: %d %q", resp.StatusCode, body)
	}

	// A second node with the same secret gives out the same nonce.
	m := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/dpop.Caddyfile", Env: env})
	mc := m.registerClient(map[string]any{"name": "Nonce", "grant_types": []string{"client_credentials"}, "scopes": []string{"read:invoices"}})
	mURL := m.URL + "/oauth/token"
	req, _ := http.NewRequest("POST", mURL, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(mc.ClientID, mc.ClientSecret)
	req.Header.Set("DPoP", sign(dpoptest.Proof{Method: "POST", URL: mURL}))
	resp, _ = do(req)
	if got := resp.Header.Get("DPoP-Nonce"); got != nonce {
		t.Errorf("second node's nonce %q, want the first's %q (same secret)", got, nonce)
	}
	for _, node := range []*node{n, m} {
		if strings.Contains(node.Logs(), tok.AccessToken) {
			t.Error("the access token appears in a log")
		}
	}
}
