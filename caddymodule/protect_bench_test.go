package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/oauthgate/oauthgate/tokens"
)

// benchRoutes is a route map of the size a platform team writes (as in
// examples/bench/Caddyfile): the demo routes among 60.
func benchRoutes() []RouteConfig {
	routes := []RouteConfig{
		{Methods: []string{"OPTIONS"}, Path: "/api/*", Public: true},
		{Methods: []string{"GET"}, Path: "/api/v1/health", Public: true},
		{Methods: []string{"GET"}, Path: "/api/v1/me", Scopes: []string{"openid"}},
		{Methods: []string{"GET"}, Path: "/api/v1/businesses", Scopes: []string{"read:businesses"}},
	}
	services := map[string]string{
		"accounting": "invoices bills expenses payments credit-notes journals",
		"crm":        "contacts deals companies activities notes",
		"hr":         "employees leave payroll timesheets",
		"orders":     "orders shipments returns carts",
		"bookings":   "bookings services staff locations",
		"reports":    "reports exports dashboards",
	}
	for _, svc := range strings.Fields("accounting crm hr orders bookings reports") {
		for _, res := range strings.Fields(services[svc]) {
			base := "/api/v1/" + svc + "/" + res + "*"
			routes = append(routes,
				RouteConfig{Methods: []string{"GET"}, Path: base, Scopes: []string{"read:" + res}},
				RouteConfig{Methods: []string{"POST", "PUT", "PATCH", "DELETE"}, Path: base, Scopes: []string{"write:" + res}})
		}
	}
	return routes
}

// benchApp runs Caddy in-process with only the oauthgate app (a real
// SQLite store, a static client owning biz_bench) and returns a
// provisioned oauth_protect and the app. options are set on the app's
// JSON configuration (e.g. "access_token_format": "opaque").
func benchApp(b testing.TB, options ...map[string]any) (*Protect, *App) {
	b.Helper()
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{"oauthgate": map[string]any{
			"issuer": "http://bench.test",
			"store":  map[string]any{"driver": "sqlite", "dsn": filepath.Join(b.TempDir(), "oauthgate.db")},
			"clients": []map[string]any{{
				"id": "bench-client", "secret": "bench-secret", "scopes": []string{"read:invoices", "read:contacts"},
				"businesses": []string{"biz_bench"},
			}},
		}},
	}
	og := cfg["apps"].(map[string]any)["oauthgate"].(map[string]any)
	for _, o := range options {
		for k, v := range o {
			og[k] = v
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := caddy.Load(raw, true); err != nil {
		b.Fatalf("loading caddy: %v", err)
	}
	b.Cleanup(func() { caddy.Stop() })
	ctx := caddy.ActiveContext()
	app, err := ctx.App("oauthgate")
	if err != nil {
		b.Fatal(err)
	}
	p := &Protect{Routes: benchRoutes()}
	if err := p.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	return p, app.(*App)
}

func benchTokens(b testing.TB, a *App, n int) []string {
	b.Helper()
	out := make([]string, n)
	for i := range out {
		raw, _, err := a.rt.Load().tokens.MintAccess(tokens.Access{Subject: "bench-client", ClientID: "bench-client",
			GrantID: "cc_" + strconv.Itoa(i), Scopes: []string{"read:invoices", "read:contacts"}})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = raw
	}
	return out
}

var proxyPlaceholders = strings.Fields(`http.reverse_proxy.upstream.address http.reverse_proxy.upstream.hostport
	http.reverse_proxy.upstream.host http.reverse_proxy.upstream.port http.reverse_proxy.upstream.requests
	http.reverse_proxy.upstream.max_requests http.reverse_proxy.upstream.fails http.reverse_proxy.upstream.latency_ms
	http.reverse_proxy.upstream.duration http.reverse_proxy.upstream.duration_ms http.reverse_proxy.status_text
	http.reverse_proxy.duration http.reverse_proxy.duration_ms http.reverse_proxy.retries
	http.reverse_proxy.header.Content-Type http.reverse_proxy.header.Content-Length http.reverse_proxy.header.Date`)

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkProtect measures oauth_protect's ServeHTTP with a provisioned app
// and a 60-route map, as Caddy calls it: each request prepared by
// caddyhttp.PrepareRequest with a fresh Replacer, as Caddy's server does,
// and handed on to a handler that sets reverse_proxy's placeholders.
// "baseline" is that per-request work alone, to subtract.
var sinkHeader http.Header

func BenchmarkProtect(b *testing.B) {
	p, app := benchApp(b)
	runProtectBench(b, p, app)
}

// runProtectBench is BenchmarkProtect's cases on p and app, whatever the
// access-token format (BenchmarkProtectOpaque).
func runProtectBench(b *testing.B, p *Protect, app *App) {
	toks := benchTokens(b, app, 1000)
	// Cached, as in the gateway's steady state. Ristretto applies sets
	// asynchronously and may drop some, hence two passes.
	for range 2 {
		for _, tok := range toks {
			if _, err := app.rt.Load().tokens.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// next stands for reverse_proxy as far as the request's Replacer goes:
	// it sets about twenty placeholders of its own on every request.
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		for _, k := range proxyPlaceholders {
			repl.Set(k, k)
		}
		repl.Set("http.reverse_proxy.upstream.latency", time.Millisecond)
		repl.Set("http.reverse_proxy.status_code", 200)
		// And it clones the request headers and adds five of its own
		// (User-Agent, X-Forwarded-For/-Proto/-Host, Via): what the guard
		// adds to the request is paid again there.
		h := r.Header.Clone()
		for _, k := range []string{"User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Via"} {
			h[k] = []string{"x"}
		}
		sinkHeader = h
		return nil
	})

	cases := []struct {
		name, method, path, business string
		tokens                       []string
		wantNext                     bool
		baseline                     bool
	}{
		{name: "baseline", method: "GET", path: "/api/v1/accounting/invoices", business: "biz_bench", tokens: toks[:1], baseline: true},
		{name: "allow", method: "GET", path: "/api/v1/accounting/invoices", business: "biz_bench", tokens: toks[:1], wantNext: true},
		{name: "allow-1000-tokens", method: "GET", path: "/api/v1/crm/contacts/c_42", business: "biz_bench", tokens: toks, wantNext: true},
		{name: "public", method: "GET", path: "/api/v1/health", tokens: toks[:1], wantNext: true},
		{name: "reject-no-token", method: "GET", path: "/api/v1/accounting/invoices", business: "biz_bench"},
		{name: "reject-scope", method: "POST", path: "/api/v1/accounting/invoices", business: "biz_bench", tokens: toks[:1]},
		{name: "reject-business", method: "GET", path: "/api/v1/accounting/invoices", business: "biz_other", tokens: toks[:1]},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			auth := make([][]string, len(tc.tokens))
			for i, t := range tc.tokens {
				auth[i] = []string{"Bearer " + t}
			}
			business := []string{tc.business}
			w := &discardWriter{h: http.Header{}}
			srv := new(caddyhttp.Server)
			reached := 0
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				reached++
				return next(w, r)
			})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if len(auth) > 0 {
					r.Header["Authorization"] = auth[i%len(auth)]
				}
				if tc.business != "" {
					r.Header["X-Business-Id"] = business
				}
				clear(w.h)
				rr := caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, srv)
				if tc.baseline {
					_ = next.ServeHTTP(w, rr)
				} else {
					_ = p.ServeHTTP(w, rr, next)
				}
				i++
			}
			if tc.wantNext || tc.baseline {
				if reached != i {
					b.Fatalf("reached upstream %d of %d times", reached, i)
				}
			} else if reached != 0 {
				b.Fatalf("a request that should be rejected reached upstream")
			}
		})
	}
}
