package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
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
