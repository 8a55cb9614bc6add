package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

const registrationCaddyfile = "e2e/testdata/registration.Caddyfile"

// TestRegistrationThroughCaddy: dynamic registration on the built binary,
// gated by an initial access token from the environment and limited per
// client address as Caddy sees it (X-Forwarded-For from a trusted proxy);
// no token or secret reaches the log.
func TestRegistrationThroughCaddy(t *testing.T) {
	const iat = "initial-access-token-for-the-e2e-test-0123456789"
	n := startNode(t, nodeOptions{Caddyfile: registrationCaddyfile, Env: []string{"OAUTHGATE_TEST_IAT=" + iat}})

	var md map[string]any
	resp, err := http.Get(n.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md["registration_endpoint"] != n.URL+"/oauth/register" {
		t.Fatalf("registration_endpoint %v", md["registration_endpoint"])
	}

	register := func(token, from string, body map[string]any) (int, http.Header, map[string]any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, n.URL+"/oauth/register", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", from)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, resp.Header, out
	}
	app := map[string]any{"client_name": "Robot", "redirect_uris": []string{"https://robot.example/cb"}, "scope": "read:invoices"}

	if st, h, b := register("", "198.51.100.1", app); st != 401 || b["error"] != "invalid_token" || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("without the initial access token: %d %v %v", st, h, b)
	}
	if st, _, b := register(iat+"x", "198.51.100.1", app); st != 401 || b["error"] != "invalid_token" {
		t.Fatalf("with a wrong one: %d %v", st, b)
	}
	st, _, first := register(iat, "198.51.100.1", app)
	if st != 201 || first["client_secret"] == nil {
		t.Fatalf("registration: %d %v", st, first)
	}
	// The limit (3 per hour) counts the refused attempts above too.
	st, h, b := register(iat, "198.51.100.1", app)
	if st != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("fourth from one address: %d %v %v", st, h, b)
	}
	// A client that sends its own X-Forwarded-For, which the proxy appends
	// to, does not get a fresh address: the right-most untrusted one counts.
	if st, _, b := register(iat, "203.0.113.77, 198.51.100.1", app); st != 429 {
		t.Fatalf("a spoofed X-Forwarded-For escaped the limit: %d %v", st, b)
	}
	if st, _, b := register(iat, "198.51.100.2", with2(app, "scope", "admin:all")); st != 400 || b["error"] != "invalid_client_metadata" {
		t.Fatalf("a scope outside third_party_scopes: %d %v", st, b)
	}
	if st, _, b := register(iat, "198.51.100.2", with2(app, "redirect_uris", []string{"https://robot.example/cb#frag"})); st != 400 || b["error"] != "invalid_redirect_uri" {
		t.Fatalf("a fragment: %d %v", st, b)
	}

	// RFC 7592 delete, then the admin API no longer has it.
	id, rat := first["client_id"].(string), first["registration_access_token"].(string)
	var view map[string]any
	if st := n.adminJSON(http.MethodGet, "/oauthgate/clients/"+id, nil, &view); st != 200 || view["dynamically_registered"] != true {
		t.Fatalf("admin view: %d %v", st, view)
	}
	req, _ := http.NewRequest(http.MethodDelete, first["registration_client_uri"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+rat)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if del.StatusCode != 204 {
		t.Fatalf("delete: %d", del.StatusCode)
	}
	if st := n.adminJSON(http.MethodGet, "/oauthgate/clients/"+id, nil, nil); st != 404 {
		t.Fatalf("admin after delete: %d", st)
	}

	logs := n.Logs()
	for _, secret := range []string{iat, rat, first["client_secret"].(string)} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds a token or secret:\n%s", logs)
		}
	}
}

func with2(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// Without trusted_proxies (examples/mcp: registration open, the default
// 10 an hour), an X-Forwarded-For the client writes is not believed: a
// flood that names a new address in each request is still one address.
// The metadata a client may not set (first_party, businesses, its id or
// secret) is ignored.
func TestRegistrationForwardedForNotTrusted(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/mcp/Caddyfile", Env: []string{"MCP_UPSTREAM=127.0.0.1:9"}})
	app := map[string]any{"client_name": "Flood", "redirect_uris": []string{"http://127.0.0.1:4000/cb"}, "token_endpoint_auth_method": "none",
		"first_party": true, "businesses": []string{"biz_acme"}, "client_id": "chosen-id", "client_secret": "chosen-secret"}
	raw, _ := json.Marshal(app)
	var first map[string]any
	for i := 0; i < 11; i++ {
		req, _ := http.NewRequest(http.MethodPost, n.URL+"/oauth/register", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
		req.Header.Set("X-Real-IP", fmt.Sprintf("198.51.100.%d", i+1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		switch {
		case i < 10 && resp.StatusCode != 201:
			t.Fatalf("registration %d: %d %v", i+1, resp.StatusCode, out)
		case i == 10 && resp.StatusCode != 429:
			t.Fatalf("the 11th registration, under a new X-Forwarded-For: %d %v", resp.StatusCode, out)
		}
		if i == 0 {
			first = out
		}
	}
	id, _ := first["client_id"].(string)
	if id == "" || id == "chosen-id" || first["client_secret"] != nil {
		t.Fatalf("registration answer %v", first)
	}
	var view map[string]any
	if st := n.adminJSON(http.MethodGet, "/oauthgate/clients/"+id, nil, &view); st != 200 || view["first_party"] != false ||
		len(view["businesses"].([]any)) != 0 || view["public"] != true {
		t.Fatalf("admin view: %d %v", st, view)
	}
}
