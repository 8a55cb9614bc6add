package policies

import (
	"strings"
	"testing"
)

// benchPolicy is a route map of the size a platform team writes: six
// services, read and write rules per resource, a few exact and per-business
// routes, public preflight and health. 60 rules.
func benchPolicy(tb testing.TB) *Policy {
	tb.Helper()
	rules := []Rule{
		public("OPTIONS", "/api/*"),
		public("GET", "/api/v1/health"),
		r("GET", "/api/v1/me", "openid"),
		r("GET", "/api/v1/businesses", "read:businesses"),
		r("GET", "/api/v1/businesses/*/members*", "read:members"),
		r("POST DELETE", "/api/v1/businesses/*/members*", "write:members"),
	}
	resources := map[string]string{
		"accounting": "invoices bills expenses payments credit-notes journals",
		"crm":        "contacts deals companies activities notes",
		"hr":         "employees leave payroll timesheets",
		"orders":     "orders shipments returns carts",
		"bookings":   "bookings services staff locations",
		"reports":    "reports exports dashboards",
	}
	for _, svc := range strings.Fields("accounting crm hr orders bookings reports") {
		for _, res := range strings.Fields(resources[svc]) {
			base := "/api/v1/" + svc + "/" + res
			rules = append(rules,
				r("GET", base+"*", "read:"+res),
				r("POST PUT PATCH DELETE", base+"*", "write:"+res),
			)
		}
	}
	rules = append(rules,
		r("POST", "/api/v1/accounting/invoices/*/send", "write:invoices", "send:invoices"),
		r("GET", "/api/v1/reports/exports/*/download", "read:exports", "download:exports"),
	)
	if len(rules) != 60 {
		tb.Fatalf("bench policy has %d rules, want 60", len(rules))
	}
	return mustCompile(tb, rules...)
}

var benchPaths = []struct{ method, path string }{
	{"GET", "/api/v1/accounting/invoices"},
	{"GET", "/api/v1/accounting/invoices/inv_8f2a91/lines"},
	{"POST", "/api/v1/accounting/invoices/inv_8f2a91/send"},
	{"PATCH", "/api/v1/crm/contacts/c_42"},
	{"HEAD", "/api/v1/hr/employees"},
	{"GET", "/api/v1/me"},
	{"OPTIONS", "/api/v1/orders/shipments"},
	{"DELETE", "/api/v1/businesses/biz_1/members/u_7"},
	{"GET", "/api/v2/unknown/thing"},      // miss
	{"GET", "/static/app.js"},             // miss at the root
	{"TRACE", "/api/v1/crm/deals/d_1"},    // miss on method
	{"GET", "/api/v1/accounting/ledgers"}, // miss deep
}

func BenchmarkMatch(b *testing.B) {
	p := benchPolicy(b)
	for _, tc := range benchPaths {
		b.Run(tc.method+" "+tc.path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Match(tc.method, tc.path)
			}
		})
	}
}

// BenchmarkMatchMix is the average over benchPaths, hits and misses.
func BenchmarkMatchMix(b *testing.B) {
	p := benchPolicy(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tc := &benchPaths[i%len(benchPaths)]
		p.Match(tc.method, tc.path)
		i++
	}
}

func BenchmarkCleanPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		CleanPath("/api/v1/accounting/invoices/inv_8f2a91/lines")
	}
}

func BenchmarkMissing(b *testing.B) {
	route := benchPolicy(b).Match("POST", "/api/v1/accounting/invoices/inv_1/send")
	granted := []string{"openid", "profile", "offline_access", "read:contacts", "read:invoices", "write:invoices", "send:invoices"}
	b.ReportAllocs()
	for b.Loop() {
		if _, missing := route.Missing(granted); missing {
			b.Fatal("scope missing")
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	tenancy := &Tenancy{Header: "x-business-id", Mode: Inject}
	owned := []string{"biz_1", "biz_2", "biz_3"}
	owns := func(id string) bool {
		for _, s := range owned {
			if s == id {
				return true
			}
		}
		return false
	}
	b.Run("bound", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tenancy.Resolve("biz_0f3c77a1", "biz_0f3c77a1", nil)
		}
	})
	b.Run("owned", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tenancy.Resolve("biz_3", "", owns)
		}
	})
	b.Run("injected", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tenancy.Resolve("", "biz_0f3c77a1", nil)
		}
	})
}

// BenchmarkMatch500 checks that the index, not the rule count, sets the cost:
// 500 rules over 25 services of 10 resources each.
func BenchmarkMatch500(b *testing.B) {
	var rules []Rule
	for s := range 25 {
		for res := range 10 {
			base := "/api/v1/svc" + string(rune('a'+s)) + "/res" + string(rune('a'+res))
			rules = append(rules,
				r("GET", base+"*", "read:x"),
				r("POST PUT PATCH DELETE", base+"*", "write:x"),
			)
		}
	}
	p := mustCompile(b, rules...)
	for _, path := range []string{"/api/v1/svcy/resj/42", "/api/v1/svcy/nope"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Match("GET", path)
			}
		})
	}
}
