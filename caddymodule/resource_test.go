package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestRoutePrefix: the default resource's path is the leading whole
// literal segments every route pattern shares.
func TestRoutePrefix(t *testing.T) {
	cases := []struct {
		name  string
		paths []string
		want  string
	}{
		{"demo map", []string{"/api/v1/accounting/invoices*", "/api/v1/crm/contacts*"}, "/api/v1"},
		{"one prefix route", []string{"/v1/orders*"}, "/v1"},
		{"one exact route", []string{"/api/v1/me"}, "/api/v1/me"},
		{"nothing shared", []string{"/companies*", "/employees*"}, ""},
		{"wildcard segment ends it", []string{"/api/*/invoices", "/api/v1/x"}, "/api"},
		{"public route counts", []string{"/api/*", "/api/v1/me"}, "/api"},
		{"a segment is whole, not a byte prefix", []string{"/api/v1", "/api/v10"}, "/api"},
		{"root", []string{"/"}, ""},
		{"leading wildcard", []string{"/*/x"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var routes []RouteConfig
			for _, p := range tc.paths {
				routes = append(routes, RouteConfig{Methods: []string{"GET"}, Path: p})
			}
			if got := routePrefix(routes); got != tc.want {
				t.Errorf("routePrefix(%v) = %q, want %q", tc.paths, got, tc.want)
			}
		})
	}
}

// TestResourceLookup: which resource's metadata each well-known path
// serves when one site has several oauth_protect blocks, or two sites
// share a metadata path.
func TestResourceLookup(t *testing.T) {
	mk := func(host, path string) *resource {
		return &resource{id: "http://" + host + path + map[bool]string{true: "/"}[path == ""], host: host, path: path}
	}
	crm := mk("gw.test", "/api/crm")
	acc := mk("gw.test", "/api/accounting")
	root := mk("gw.test", "")
	other := mk("other.test", "/api/crm")
	cases := []struct {
		name string
		list []*resource
		host string
		path string
		want *resource
	}{
		{"exact path", []*resource{crm, acc}, "gw.test", wellKnownPRM + "/api/crm", crm},
		{"the other block", []*resource{crm, acc}, "gw.test", wellKnownPRM + "/api/accounting", acc},
		{"trailing slash", []*resource{crm, acc}, "gw.test", wellKnownPRM + "/api/crm/", crm},
		{"below a resource", []*resource{crm, acc}, "gw.test", wellKnownPRM + "/api/crm/mcp", crm},
		{"segment, not byte prefix", []*resource{crm}, "gw.test", wellKnownPRM + "/api/crmx", nil},
		{"unknown path", []*resource{crm, acc}, "gw.test", wellKnownPRM + "/hr", nil},
		{"bare path, origin resource", []*resource{crm, root}, "gw.test", wellKnownPRM, root},
		{"bare path, one resource", []*resource{crm}, "gw.test", wellKnownPRM, crm},
		{"bare path, two resources", []*resource{crm, acc}, "gw.test", wellKnownPRM, nil},
		{"origin covers other paths", []*resource{root}, "gw.test", wellKnownPRM + "/hr", root},
		{"host tells sites apart", []*resource{crm, other}, "other.test", wellKnownPRM + "/api/crm", other},
		{"unknown host, shared path", []*resource{crm, other}, "third.test", wellKnownPRM + "/api/crm", nil},
		{"unknown host, one resource", []*resource{crm}, "127.0.0.1:8080", wellKnownPRM + "/api/crm", crm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := resources{list: tc.list}
			if got := rs.lookup(tc.host, tc.path); got != tc.want {
				t.Errorf("lookup(%q, %q) = %+v, want %+v", tc.host, tc.path, got, tc.want)
			}
		})
	}
}

func serve(t *testing.T, h caddyhttp.MiddlewareHandler, r *http.Request) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	w := httptest.NewRecorder()
	rr := caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, new(caddyhttp.Server))
	var reached bool
	if err := h.ServeHTTP(w, rr, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		reached = true
		return nil
	})); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	return w, reached
}

// TestProtectResourceMetadata: the default resource of the bench map
// (issuer origin + /api), its RFC 9728 document, served by oauth_protect
// itself and by oauth_server, and resource_metadata in every challenge.
func TestProtectResourceMetadata(t *testing.T) {
	p, app := benchApp(t)
	const id, mdURL = "http://bench.test/api", "http://bench.test/.well-known/oauth-protected-resource/api"
	if p.resource.id != id || p.resource.metadataURL != mdURL {
		t.Fatalf("resource %q at %q, want %q at %q", p.resource.id, p.resource.metadataURL, id, mdURL)
	}
	s := &Server{app: app}
	for _, h := range []struct {
		name string
		h    caddyhttp.MiddlewareHandler
	}{{"oauth_protect", p}, {"oauth_server", s}} {
		w, reached := serve(t, h.h, httptest.NewRequest("GET", "/.well-known/oauth-protected-resource/api", nil))
		if reached || w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s: status %d, type %q, passed on %v", h.name, w.Code, w.Header().Get("Content-Type"), reached)
		}
		// Browser-based clients read it cross-origin, as the RFC 8414 document.
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want *", h.name, got)
		}
		var md map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
			t.Fatal(err)
		}
		if md["resource"] != id || len(md["authorization_servers"].([]any)) != 1 || md["authorization_servers"].([]any)[0] != "http://bench.test" {
			t.Errorf("%s: metadata %v", h.name, md)
		}
		if bm := md["bearer_methods_supported"].([]any); len(bm) != 1 || bm[0] != "header" {
			t.Errorf("%s: bearer_methods_supported %v", h.name, bm)
		}
		scopes := md["scopes_supported"].([]any)
		if len(scopes) != 54 || scopes[0] != "openid" || scopes[2] != "read:invoices" {
			t.Errorf("%s: scopes_supported %d: %v", h.name, len(scopes), scopes[:3])
		}
		w, _ = serve(t, h.h, httptest.NewRequest("POST", "/.well-known/oauth-protected-resource/api", nil))
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: POST answered %d", h.name, w.Code)
		}
	}
	// oauth_server passes other resources' paths on; oauth_protect refuses them as any unmapped path.
	if _, reached := serve(t, s, httptest.NewRequest("GET", "/.well-known/oauth-protected-resource-x", nil)); !reached {
		t.Error("oauth_server answered a path that is not RFC 9728's")
	}

	cases := []struct {
		name, auth, path string
		status           int
		params           []string
	}{
		{"no token", "", "/api/v1/accounting/invoices", 401, nil},
		{"bad token", "Bearer abc.def.ghi", "/api/v1/accounting/invoices", 401, []string{`error="invalid_token"`}},
		{"no route", "Bearer abc.def.ghi", "/api/v9/unknown", 403, []string{`error="access_denied"`}},
		{"insufficient scope", "", "/api/v1/accounting/bills", 403, []string{`error="insufficient_scope"`, `scope="read:bills"`}},
	}
	tok := benchTokens(t, app, 1)[0]
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.path, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if tc.name == "insufficient scope" {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			r.Header.Set("X-Business-Id", "biz_bench")
			w, reached := serve(t, p, r)
			ch := w.Header().Get("WWW-Authenticate")
			if reached || w.Code != tc.status || !strings.Contains(ch, `resource_metadata="`+mdURL+`"`) {
				t.Fatalf("status %d, challenge %q", w.Code, ch)
			}
			// Every challenge, the DPoP one offered beside Bearer too (RFC 9728 §5.1).
			for _, c := range w.Header().Values("WWW-Authenticate") {
				if !strings.Contains(c, `resource_metadata="`+mdURL+`"`) {
					t.Errorf("challenge %q lacks resource_metadata", c)
				}
			}
			for _, want := range tc.params {
				if !strings.Contains(ch, want) {
					t.Errorf("challenge %q lacks %s", ch, want)
				}
			}
		})
	}
}

// TestProtectResourceOption: a configured resource is kept in canonical
// form; a bad one fails Provision.
func TestProtectResourceOption(t *testing.T) {
	_, app := benchApp(t)
	ctx := caddy.ActiveContext()
	p := &Protect{Routes: benchRoutes(), Resource: "https://CRM.example.com"}
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if p.resource.id != "https://crm.example.com/" || p.resource.metadataURL != "https://crm.example.com/.well-known/oauth-protected-resource" {
		t.Errorf("resource %q at %q", p.resource.id, p.resource.metadataURL)
	}
	if ids := app.resources.ids(); len(ids) < 2 || ids[len(ids)-1] != "https://crm.example.com/" {
		t.Errorf("app resources %v", ids)
	}
	for _, bad := range []string{"/crm", "https://crm.example.com/#x", "https://crm.example.com/?a=b"} {
		p := &Protect{Routes: benchRoutes(), Resource: bad}
		if err := p.Provision(ctx); err == nil || !strings.Contains(err.Error(), "resource") {
			t.Errorf("resource %q: Provision = %v", bad, err)
		}
	}
}

// TestSharedResource: two blocks naming one resource share one metadata
// document, which lists both route maps' scopes; the identifier is
// registered once.
func TestSharedResource(t *testing.T) {
	_, app := benchApp(t)
	ctx := caddy.ActiveContext()
	a := &Protect{Resource: "https://api.example.com/v1", Routes: []RouteConfig{{Methods: []string{"GET"}, Path: "/v1/a*", Scopes: []string{"read:a"}}}}
	b := &Protect{Resource: "https://API.example.com/v1", Routes: []RouteConfig{{Methods: []string{"GET"}, Path: "/v1/b*", Scopes: []string{"read:b", "read:a"}}}}
	for _, p := range []*Protect{a, b} {
		if err := p.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.resource != b.resource {
		t.Fatal("two resources for one identifier")
	}
	var md struct {
		Scopes []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal(a.resource.doc, &md); err != nil || strings.Join(md.Scopes, " ") != "read:a read:b" {
		t.Errorf("shared document scopes %v (%v)", md.Scopes, err)
	}
	n := 0
	for _, id := range app.resources.ids() {
		if id == "https://api.example.com/v1" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("identifier registered %d times", n)
	}
}

// TestDefaultAudienceRefuse: `default_audience refuse` accepts only tokens
// whose aud names the handler's resource (the MCP authorization spec's
// "tokens specifically intended for themselves"); a token requested
// without resource, which carries the default audience, is refused 401
// invalid_token as a token for another resource is. By default it passes.
func TestDefaultAudienceRefuse(t *testing.T) {
	_, app := benchApp(t)
	ctx := caddy.ActiveContext()
	tok := benchTokens(t, app, 1)[0] // aud: the issuer, no resource asked for
	for _, tc := range []struct {
		setting string
		status  int
	}{{"", 200}, {"accept", 200}, {"refuse", 401}} {
		p := &Protect{Routes: benchRoutes(), DefaultAudience: tc.setting}
		if err := p.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/api/v1/accounting/invoices", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("X-Business-Id", "biz_bench")
		w, reached := serve(t, p, r)
		if tc.status == 200 {
			if !reached {
				t.Errorf("default_audience %q: refused %d %q", tc.setting, w.Code, w.Header().Get("WWW-Authenticate"))
			}
			continue
		}
		ch := w.Header().Get("WWW-Authenticate")
		if reached || w.Code != tc.status || !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, "another resource") {
			t.Errorf("default_audience %q: status %d, challenge %q, passed on %v", tc.setting, w.Code, ch, reached)
		}
	}
	p := &Protect{Routes: benchRoutes(), DefaultAudience: "sometimes"}
	if err := p.Provision(ctx); err == nil || !strings.Contains(err.Error(), "default_audience") {
		t.Errorf("default_audience sometimes: Provision = %v", err)
	}
}

// TestResourceName: resource_name (RFC 9728 §2, RECOMMENDED) is published
// in the document when set and omitted otherwise; blocks sharing a
// resource share its name, and two names for one resource fail Provision.
func TestResourceName(t *testing.T) {
	benchApp(t)
	ctx := caddy.ActiveContext()
	route := func(s string) []RouteConfig {
		return []RouteConfig{{Methods: []string{"GET"}, Path: "/n/" + s + "*", Scopes: []string{"read:" + s}}}
	}
	name := func(p *Protect) any {
		var md map[string]any
		if err := json.Unmarshal(p.resource.doc, &md); err != nil {
			t.Fatal(err)
		}
		return md["resource_name"]
	}
	unnamed := &Protect{Resource: "https://api.example.com/plain", Routes: route("p")}
	a := &Protect{Resource: "https://api.example.com/n", Routes: route("a")}
	b := &Protect{Resource: "https://api.example.com/n", ResourceName: "Acme CRM", Routes: route("b")}
	for _, p := range []*Protect{unnamed, a, b} {
		if err := p.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := name(unnamed); got != nil {
		t.Errorf("unnamed resource: resource_name %v, want none", got)
	}
	if got := name(a); got != "Acme CRM" {
		t.Errorf("shared resource: resource_name %v, want Acme CRM", got)
	}
	c := &Protect{Resource: "https://api.example.com/n", ResourceName: "Other", Routes: route("c")}
	if err := c.Provision(ctx); err == nil || !strings.Contains(err.Error(), `"Acme CRM" and "Other"`) {
		t.Errorf("two names for one resource: Provision = %v", err)
	}
}
