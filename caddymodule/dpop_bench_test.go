package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/oauthgate/oauthgate/dpop/dpoptest"
	"github.com/oauthgate/oauthgate/tokens"
)

// BenchmarkProtectDPoP is BenchmarkProtect's "allow" case with a
// DPoP-bound token: every request carries a new proof (signed before the
// timer starts, as a client does), so each one costs a full proof check:
// one signature verification with the proof's key, the claim checks and a
// replay-cache insert. "bearer" is the same request with a bearer token,
// to divide by.
func BenchmarkProtectDPoP(b *testing.B) {
	p, app := benchApp(b)
	const path = "/api/v1/accounting/invoices"
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	for _, alg := range []string{"bearer", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			var key *dpoptest.Key
			a := tokens.Access{Subject: "bench-client", ClientID: "bench-client", GrantID: "cc_dpop_" + alg,
				Scopes: []string{"read:invoices"}}
			if alg != "bearer" {
				var err error
				if key, err = dpoptest.NewKey(alg); err != nil {
					b.Fatal(err)
				}
				a.JKT = key.JKT()
			}
			tok, _, err := app.rt.Load().tokens.MintAccess(a)
			if err != nil {
				b.Fatal(err)
			}
			for range 2 { // cached, as in the steady state
				if _, err := app.rt.Load().tokens.Verify(tok); err != nil {
					b.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			scheme := "Bearer "
			proofs := make([][]string, b.N)
			if key != nil {
				scheme = "DPoP "
				for i := range proofs {
					pr, err := key.Sign(dpoptest.Proof{Method: "GET", URL: "http://example.com" + path, AccessToken: tok})
					if err != nil {
						b.Fatal(err)
					}
					proofs[i] = []string{pr}
				}
			}
			auth := []string{scheme + tok}
			business := []string{"biz_bench"}
			r := httptest.NewRequest("GET", path, nil)
			w := &discardWriter{h: http.Header{}}
			srv := new(caddyhttp.Server)
			reached := 0
			counted := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				reached++
				return next(w, r)
			})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Header["Authorization"] = auth
				r.Header["X-Business-Id"] = business
				if key != nil {
					r.Header["Dpop"] = proofs[i]
				}
				clear(w.h)
				rr := caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, srv)
				_ = p.ServeHTTP(w, rr, counted)
			}
			b.StopTimer()
			if reached != b.N {
				b.Fatalf("reached upstream %d of %d times", reached, b.N)
			}
		})
	}
}
