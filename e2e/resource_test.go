package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

var resourceMetadataParam = regexp.MustCompile(`resource_metadata="([^"]*)"`)

// getJSON GETs url and decodes a 200 JSON answer into out.
func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b)
	}
}

type prmDoc struct {
	Resource             string   `json:"resource"`
	ResourceName         string   `json:"resource_name"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
	BearerMethods        []string `json:"bearer_methods_supported"`
}

// TestResourceDiscovery: RFC 9728 as a client that knows only the API's
// URL walks it with the demo Caddyfile: a 401 names the metadata URL, the
// metadata names the resource and the issuer, the issuer's RFC 8414
// document follows; a 403 names the same metadata.
func TestResourceDiscovery(t *testing.T) {
	n := startNode(t, nodeOptions{})
	resp, _ := gwDo(t, "GET", n.URL+"/api/v1/accounting/invoices", "", "x-business-id", "biz_acme")
	m := resourceMetadataParam.FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
	wantMD := n.URL + "/.well-known/oauth-protected-resource/api/v1"
	if resp.StatusCode != 401 || m == nil || m[1] != wantMD {
		t.Fatalf("401 challenge %q (status %d), want resource_metadata=%q", resp.Header.Get("WWW-Authenticate"), resp.StatusCode, wantMD)
	}
	var md prmDoc
	getJSON(t, m[1], &md)
	if md.Resource != n.URL+"/api/v1" || len(md.AuthorizationServers) != 1 || md.AuthorizationServers[0] != n.URL ||
		len(md.BearerMethods) != 1 || md.BearerMethods[0] != "header" {
		t.Fatalf("metadata %+v", md)
	}
	want := map[string]bool{"read:invoices": true, "write:invoices": true, "read:contacts": true, "write:contacts": true}
	if len(md.ScopesSupported) != len(want) {
		t.Errorf("scopes_supported %v", md.ScopesSupported)
	}
	for _, s := range md.ScopesSupported {
		if !want[s] {
			t.Errorf("scopes_supported has %q", s)
		}
	}
	// The bare well-known path serves the site's only resource too.
	var bare prmDoc
	getJSON(t, n.URL+"/.well-known/oauth-protected-resource", &bare)
	if bare.Resource != md.Resource {
		t.Errorf("bare metadata path: resource %q", bare.Resource)
	}
	var as struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	getJSON(t, md.AuthorizationServers[0]+"/.well-known/oauth-authorization-server", &as)
	if as.Issuer != md.AuthorizationServers[0] || as.TokenEndpoint == "" {
		t.Fatalf("authorization server metadata %+v", as)
	}

	c := n.registerClient(map[string]any{"name": "Discovery", "scopes": []string{"read:contacts"}, "businesses": []string{"biz_acme"}})
	tok := ccToken(t, n, c, "read:contacts")
	resp, _ = gwDo(t, "GET", n.URL+"/api/v1/accounting/invoices", tok, "x-business-id", "biz_acme")
	ch := resp.Header.Get("WWW-Authenticate")
	if m := resourceMetadataParam.FindStringSubmatch(ch); resp.StatusCode != 403 || m == nil || m[1] != wantMD {
		t.Fatalf("403 challenge %q (status %d)", ch, resp.StatusCode)
	}
}

// TestResourceIndicators: RFC 9728 discovery and RFC 8707 resource
// indicators against the built binary with two resources on one site:
// discovery → challenge → metadata → a token for one resource, allowed
// there and refused by the other; an authorization-code flow with
// resource; unknown, fragment and relative resources refused with
// invalid_target; a token requested without resource keeps working at
// both; introspection shows aud.
func TestResourceIndicators(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/resources.Caddyfile"})
	crm, acct := n.URL+"/api/crm", n.URL+"/api/accounting"

	// Discovery, as a client that knows only the API's URL.
	resp, _ := gwDo(t, "GET", crm+"/contacts", "")
	m := resourceMetadataParam.FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
	if resp.StatusCode != 401 || m == nil || m[1] != n.URL+"/.well-known/oauth-protected-resource/api/crm" {
		t.Fatalf("challenge %q", resp.Header.Get("WWW-Authenticate"))
	}
	var md prmDoc
	getJSON(t, m[1], &md)
	if md.Resource != crm || md.AuthorizationServers[0] != n.URL || len(md.ScopesSupported) != 1 || md.ScopesSupported[0] != "read:contacts" {
		t.Fatalf("crm metadata %+v", md)
	}
	var amd prmDoc
	getJSON(t, n.URL+"/.well-known/oauth-protected-resource/api/accounting", &amd)
	if amd.Resource != acct || amd.ScopesSupported[0] != "read:invoices" {
		t.Fatalf("accounting metadata %+v", amd)
	}
	// Two resources with paths and none at the origin: the bare path is
	// ambiguous and not served.
	if r, _ := gwDo(t, "GET", n.URL+"/.well-known/oauth-protected-resource", ""); r.StatusCode != 404 {
		t.Errorf("bare metadata path: %d", r.StatusCode)
	}

	c := n.registerClient(map[string]any{"name": "Two APIs", "scopes": []string{"read:contacts", "read:invoices"},
		"grant_types":   []string{"client_credentials", "authorization_code", "refresh_token"},
		"redirect_uris": []string{"http://127.0.0.1/cb"}})
	token := func(res ...string) (int, map[string]any) {
		v := url.Values{"grant_type": {"client_credentials"}, "resource": res}
		code, b := postForm(t, n, "/oauth/token", c, v)
		var out map[string]any
		json.Unmarshal(b, &out)
		return code, out
	}
	status, body := token(md.Resource)
	crmTok, _ := body["access_token"].(string)
	if status != 200 || crmTok == "" {
		t.Fatalf("token for crm: %d %v", status, body)
	}
	if r, b := gwDo(t, "GET", crm+"/contacts", crmTok); r.StatusCode != 200 || string(b) != "crm: "+c.ClientID {
		t.Fatalf("crm token at crm: %d %s", r.StatusCode, b)
	}
	r, b := gwDo(t, "GET", acct+"/invoices", crmTok)
	ch := r.Header.Get("WWW-Authenticate")
	if r.StatusCode != 401 || !strings.Contains(ch, `error="invalid_token"`) ||
		!strings.Contains(ch, `resource_metadata="`+n.URL+`/.well-known/oauth-protected-resource/api/accounting"`) {
		t.Fatalf("crm token at accounting: %d %s %q", r.StatusCode, b, ch)
	}

	// Without resource: today's audience, accepted by both.
	_, body = token()
	plain := body["access_token"].(string)
	for _, u := range []string{crm + "/contacts", acct + "/invoices"} {
		if r, b := gwDo(t, "GET", u, plain); r.StatusCode != 200 {
			t.Errorf("token without resource at %s: %d %s", u, r.StatusCode, b)
		}
	}
	// ... but not by a block with default_audience refuse, which takes
	// only tokens whose aud names its resource.
	payroll := n.URL + "/api/payroll"
	if r, b := gwDo(t, "GET", payroll+"/runs", plain); r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("token without resource at payroll: %d %s %q", r.StatusCode, b, r.Header.Get("WWW-Authenticate"))
	}
	if status, body := token(payroll); status != 200 {
		t.Errorf("token for payroll: %d %v", status, body)
	} else if r, b := gwDo(t, "GET", payroll+"/runs", body["access_token"].(string)); r.StatusCode != 200 || string(b) != "payroll: "+c.ClientID {
		t.Errorf("payroll token at payroll: %d %s", r.StatusCode, b)
	}

	for _, bad := range []string{n.URL + "/api/hr", crm + "#x", "/api/crm", crm + "?q=1"} {
		if status, body := token(bad); status != 400 || body["error"] != "invalid_target" {
			t.Errorf("resource %q: %d %v", bad, status, body)
		}
	}

	// Introspection names the audience.
	code, ib := postForm(t, n, "/oauth/introspect", c, url.Values{"token": {crmTok}})
	var intro map[string]any
	json.Unmarshal(ib, &intro)
	if code != 200 || intro["aud"] != crm {
		t.Errorf("introspection: %d %s", code, ib)
	}

	// The authorization-code flow with resource (the way MCP clients
	// send it), then a refresh that keeps it.
	cfg := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: "http://127.0.0.1/cb",
		Scopes: []string{"read:invoices"}, Endpoint: oauth2.Endpoint{AuthURL: n.URL + "/oauth/authorize", TokenURL: n.URL + "/oauth/token"}}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", amd.Resource))
	cb := newUserAgent(t).authorize(authURL, "biz_acme")
	tok, err := cfg.Exchange(ctx(t), codeFrom(t, cb, "st", n.URL), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", amd.Resource))
	if err != nil {
		t.Fatal(err)
	}
	if r, b := gwDo(t, "GET", acct+"/invoices", tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("code-flow token at accounting: %d %s", r.StatusCode, b)
	}
	if r, _ := gwDo(t, "GET", crm+"/contacts", tok.AccessToken); r.StatusCode != 401 {
		t.Fatalf("code-flow token for accounting at crm: %d", r.StatusCode)
	}
	status, rb := postForm(t, n, "/oauth/token", c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "resource": {crm}})
	if status != 400 || !strings.Contains(string(rb), "invalid_target") {
		t.Errorf("refresh widening to crm: %d %s", status, rb)
	}
	status, rb = postForm(t, n, "/oauth/token", c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	var refreshed map[string]any
	json.Unmarshal(rb, &refreshed)
	if status != 200 {
		t.Fatalf("refresh: %d %s", status, rb)
	}
	if r, _ := gwDo(t, "GET", crm+"/contacts", refreshed["access_token"].(string)); r.StatusCode != 401 {
		t.Errorf("refreshed accounting token at crm: %d", r.StatusCode)
	}
}

// TestExampleResources: the seed examples' site blocks serve RFC 9728
// metadata without a resource option: Yuvo's site-level oauth_protect
// (route map /companies*, /employees*: the origin), Yoco's inside
// route /v1/* (route map /v1/orders*: /v1), the MCP example's /mcp (with
// its resource_name), and the metadata URL each challenge names is the
// one that answers.
func TestExampleResources(t *testing.T) {
	for _, tc := range []struct {
		caddyfile, api, resourcePath, name string
	}{
		{"examples/yuvo/Caddyfile", "/companies", "/", ""},
		{"examples/yoco/Caddyfile", "/v1/orders", "/v1", ""},
		{"examples/mcp/Caddyfile", "/mcp", "/mcp", "Example MCP server"},
	} {
		t.Run(tc.caddyfile, func(t *testing.T) {
			n := startNode(t, nodeOptions{Caddyfile: tc.caddyfile})
			resp, _ := gwDo(t, "GET", n.URL+tc.api, "")
			m := resourceMetadataParam.FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
			if resp.StatusCode != 401 || m == nil {
				t.Fatalf("challenge %q", resp.Header.Get("WWW-Authenticate"))
			}
			var md prmDoc
			getJSON(t, m[1], &md)
			if md.Resource != n.URL+tc.resourcePath || md.AuthorizationServers[0] != n.URL || md.ResourceName != tc.name {
				t.Fatalf("metadata %+v at %s", md, m[1])
			}
			var bare prmDoc
			getJSON(t, n.URL+"/.well-known/oauth-protected-resource", &bare)
			if bare.Resource != md.Resource {
				t.Errorf("bare path: %+v", bare)
			}
		})
	}
}
