package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/oauthgate/oauthgate/dpop/dpoptest"
)

// TestClusterDPoPReplayPerNode pins what docs/dpop.md says of a cluster:
// a DPoP-bound token minted on one node works on every node, and a
// proof's jti is refused a second time on the node that saw it, within
// max_age; another node, which has not seen it, accepts it once (the
// replay cache is per node; server nonces are the cross-node defence).
func TestClusterDPoPReplayPerNode(t *testing.T) {
	pg := startPostgres(t)
	dsn := pg.CreateDB("oauthgate")
	lb := fmt.Sprintf("localhost:%d", freePort(t)) // the load balancer's address, as clients see it
	env := []string{"OAUTHGATE_DSN=" + dsn, "OAUTHGATE_ISSUER=http://" + lb}
	nodes := startNodes(t,
		nodeOptions{Caddyfile: clusterCaddyfile, Env: slices.Clone(env)},
		nodeOptions{Caddyfile: clusterCaddyfile, Env: env},
	)
	a, b := nodes[0], nodes[1]
	c := a.registerClient(map[string]any{"name": "cluster dpop", "scopes": []string{"read:invoices"}, "businesses": []string{"b1"}})
	key, err := dpoptest.NewKey("ES256")
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
	// Every request goes to a node directly with the Host the load
	// balancer would pass on.
	do := func(n *node, req *http.Request) (*http.Response, string) {
		u, _ := url.Parse(n.URL)
		req.URL.Host = u.Host
		req.Host = lb
		resp, err := fast.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	tokenURL := "http://" + lb + "/oauth/token"
	req, _ := http.NewRequest("POST", tokenURL, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	req.Header.Set("DPoP", sign(dpoptest.Proof{Method: "POST", URL: tokenURL}))
	resp, body := do(a, req)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil || resp.StatusCode != 200 || tok.TokenType != "DPoP" {
		t.Fatalf("DPoP token from node A: %d %s", resp.StatusCode, body)
	}
	api := "http://" + lb + "/api/v1/accounting/invoices"
	call := func(n *node, proof string) (int, string) {
		req, _ := http.NewRequest("GET", api, nil)
		req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		req.Header.Set("X-Business-Id", "b1")
		req.Header.Set("DPoP", proof)
		resp, body := do(n, req)
		return resp.StatusCode, body
	}
	proof := sign(dpoptest.Proof{Method: "GET", URL: api, AccessToken: tok.AccessToken})
	if st, body := call(a, proof); st != 200 {
		t.Fatalf("node A, first use: %d %s", st, body)
	}
	if st, body := call(a, proof); st != 401 || !strings.Contains(body, "invalid_dpop_proof") {
		t.Fatalf("node A, the same proof again: %d %s, want 401 invalid_dpop_proof", st, body)
	}
	if st, body := call(b, proof); st != 200 {
		t.Fatalf("node B has not seen the proof (per-node replay cache, as documented): %d %s", st, body)
	}
	if st, body := call(b, proof); st != 401 || !strings.Contains(body, "invalid_dpop_proof") {
		t.Fatalf("node B, the same proof again: %d %s, want 401 invalid_dpop_proof", st, body)
	}
	if st, body := call(b, sign(dpoptest.Proof{Method: "GET", URL: api, AccessToken: tok.AccessToken})); st != 200 {
		t.Fatalf("node B, a fresh proof for the token minted on A: %d %s", st, body)
	}
}
