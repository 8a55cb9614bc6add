package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestProtectApplies: an allowed request reaches the next handler with the
// identity headers and placeholders of its token, client copies of the
// identity and method-override headers gone, and no Authorization header.
func TestProtectApplies(t *testing.T) {
	p, app := benchApp(t)
	tok := benchTokens(t, app, 1)[0]
	r := httptest.NewRequest("GET", "/api/v1/accounting/invoices", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("X-Business-Id", "biz_bench")
	r.Header.Set("X-Auth-Subject", "forged")
	r.Header.Set("X-HTTP-Method-Override", "DELETE")
	repl := caddy.NewReplacer()
	// A handler before ours (basic_auth) set its own user id.
	repl.Set("http.auth.user.id", "someone-else")
	w := httptest.NewRecorder()
	rr := caddyhttp.PrepareRequest(r, repl, w, new(caddyhttp.Server))
	var reached bool
	err := p.ServeHTTP(w, rr, caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		reached = true
		want := map[string]string{
			"X-Auth-Subject": "bench-client", "X-Auth-Client-Id": "bench-client", "X-Auth-Scopes": "read:invoices read:contacts",
			"X-Business-Id": "biz_bench", "Authorization": "", "X-Http-Method-Override": "",
		}
		for k, v := range want {
			if got := r.Header.Values(k); (v == "" && len(got) != 0) || (v != "" && (len(got) != 1 || got[0] != v)) {
				t.Errorf("header %s = %q, want %q", k, got, v)
			}
		}
		for k, v := range map[string]string{
			"http.auth.user.id": "bench-client", "oauth.client_id": "bench-client", "oauth.scopes": "read:invoices read:contacts",
			"oauth.business_id": "biz_bench", "oauth.grant_id": "cc_0",
		} {
			got, ok := repl.GetString(k)
			if !ok || got != v {
				t.Errorf("{%s} = %q, %v; want %q", k, got, ok, v)
			}
		}
		return nil
	}))
	if err != nil || !reached {
		t.Fatalf("ServeHTTP: %v, reached %v; body %s", err, reached, w.Body)
	}
}
