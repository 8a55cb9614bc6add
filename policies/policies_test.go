package policies

import (
	"errors"
	"strings"
	"testing"
)

// r is shorthand for a rule in the tables below.
func r(methods, path string, scopes ...string) Rule {
	return Rule{Methods: strings.Fields(methods), Path: path, Scopes: scopes}
}

func public(methods, path string) Rule {
	return Rule{Methods: strings.Fields(methods), Path: path, Public: true}
}

func mustCompile(t testing.TB, rules ...Rule) *Policy {
	t.Helper()
	p, err := Compile(rules)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name   string
		rules  []Rule
		method string
		path   string
		want   int // index of the governing rule; -1 for none
	}{
		// Pattern kinds.
		{"exact matches itself", []Rule{r("GET", "/api/v1/me")}, "GET", "/api/v1/me", 0},
		{"exact does not match a longer path", []Rule{r("GET", "/api/v1/me")}, "GET", "/api/v1/me/x", -1},
		{"exact does not match with trailing slash", []Rule{r("GET", "/api/v1/me")}, "GET", "/api/v1/me/", -1},
		{"exact is case-sensitive", []Rule{r("GET", "/api/v1/me")}, "GET", "/API/v1/me", -1},
		{"prefix matches the bare prefix", []Rule{r("GET", "/inv*")}, "GET", "/inv", 0},
		{"prefix matches below it", []Rule{r("GET", "/inv*")}, "GET", "/inv/42", 0},
		{"prefix matches a longer segment", []Rule{r("GET", "/inv*")}, "GET", "/inv-archive", 0},
		{"prefix does not match a shorter path", []Rule{r("GET", "/inv*")}, "GET", "/in", -1},
		{"slash prefix matches the slash", []Rule{r("GET", "/inv/*")}, "GET", "/inv/", 0},
		{"slash prefix matches below it", []Rule{r("GET", "/inv/*")}, "GET", "/inv/42/lines", 0},
		{"slash prefix does not match the bare name", []Rule{r("GET", "/inv/*")}, "GET", "/inv", -1},
		{"slash prefix does not match a longer segment", []Rule{r("GET", "/inv/*")}, "GET", "/inv-archive", -1},
		{"root prefix matches everything", []Rule{r("GET", "/*")}, "GET", "/", 0},
		{"segment star matches one segment", []Rule{r("GET", "/b/*/inv")}, "GET", "/b/acme/inv", 0},
		{"segment star does not match an empty segment", []Rule{r("GET", "/b/*/inv")}, "GET", "/b//inv", -1},
		{"segment star does not match two segments", []Rule{r("GET", "/b/*/inv")}, "GET", "/b/x/y/inv", -1},
		{"segment star pattern is anchored at the end", []Rule{r("GET", "/b/*/inv")}, "GET", "/b/x/inv/1", -1},
		{"segment star with prefix", []Rule{r("GET", "/b/*/inv*")}, "GET", "/b/x/inv/1", 0},
		{"segment star with trailing slash", []Rule{r("GET", "/b/*/")}, "GET", "/b/x/", 0},
		{"segment star with trailing slash needs it", []Rule{r("GET", "/b/*/")}, "GET", "/b/x", -1},
		{"two segment stars", []Rule{r("GET", "/*/x/*/y")}, "GET", "/a/x/b/y", 0},
		{"path without leading slash", []Rule{r("GET", "/*")}, "GET", "x", -1},
		{"empty path", []Rule{r("GET", "/*")}, "GET", "", -1},
		{"percent signs are literal", []Rule{r("GET", "/a/%2e%2e/b")}, "GET", "/a/%2e%2e/b", 0},

		// Selection.
		{"exact beats prefix", []Rule{r("GET", "/a/*"), r("GET", "/a/b")}, "GET", "/a/b", 1},
		{"exact beats a longer wildcard", []Rule{r("GET", "/a/*/c*"), r("GET", "/a/b/c")}, "GET", "/a/b/c", 1},
		{"more literal bytes win", []Rule{r("GET", "/a/*"), r("GET", "/a/b/*")}, "GET", "/a/b/c", 1},
		{"more literal bytes win whatever the order", []Rule{r("GET", "/a/b/*"), r("GET", "/a/*")}, "GET", "/a/b/c", 0},
		{"segment star beats a shorter prefix", []Rule{r("GET", "/a/*"), r("GET", "/a/*/c")}, "GET", "/a/b/c", 1},
		{"longer prefix beats segment star", []Rule{r("GET", "/a/*/c"), r("GET", "/a/bb/*")}, "GET", "/a/bb/c", 1},
		{"tie goes to the earlier rule", []Rule{r("GET", "/a/*/c"), r("GET", "/a/b/*")}, "GET", "/a/b/c", 0},
		{"tie goes to the earlier rule, reversed", []Rule{r("GET", "/a/b/*"), r("GET", "/a/*/c")}, "GET", "/a/b/c", 0},
		{"no rule matches", []Rule{r("GET", "/a/*")}, "GET", "/b", -1},

		// Methods.
		{"method must be listed", []Rule{r("POST", "/a")}, "GET", "/a", -1},
		{"any listed method", []Rule{r("POST PUT", "/a")}, "PUT", "/a", 0},
		{"methods are case-sensitive", []Rule{r("GET", "/a")}, "get", "/a", -1},
		{"star matches any method", []Rule{r("*", "/a")}, "PATCH", "/a", 0},
		{"star matches an unknown method", []Rule{r("GET", "/b"), r("*", "/a")}, "BREW", "/a", 1},
		{"star matches an empty method", []Rule{r("*", "/a")}, "", "/a", 0},
		{"GET implies HEAD", []Rule{r("GET", "/a")}, "HEAD", "/a", 0},
		{"GET implies HEAD on wildcards", []Rule{r("GET", "/a/*")}, "HEAD", "/a/b", 0},
		{"explicit HEAD overrides implied HEAD", []Rule{r("GET", "/a"), r("HEAD", "/a")}, "HEAD", "/a", 1},
		{"explicit HEAD overrides implied HEAD, reversed", []Rule{r("HEAD", "/a"), r("GET", "/a")}, "HEAD", "/a", 0},
		{"HEAD follows GET to the most specific pattern", []Rule{r("HEAD", "/a/*"), r("GET", "/a/b")}, "HEAD", "/a/b", 1},
		{"HEAD does not imply GET", []Rule{r("HEAD", "/a")}, "GET", "/a", -1},
		{"wrong method on a specific rule falls back", []Rule{r("GET", "/a/*"), r("POST", "/a/b")}, "GET", "/a/b", 0},
		{"wrong method on an exact rule falls back", []Rule{r("*", "/a/*"), r("DELETE", "/a/b")}, "GET", "/a/b", 0},
		{"split methods on one pattern", []Rule{r("GET", "/a*"), r("POST PUT", "/a*")}, "PUT", "/a/1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.rules...)
			got := p.Match(tt.method, tt.path)
			if got.Index() != tt.want {
				t.Errorf("Match(%q, %q) = rules[%d] (%q), want rules[%d]",
					tt.method, tt.path, got.Index(), got.Pattern(), tt.want)
			}
			if got != nil && got.Pattern() != tt.rules[tt.want].Path {
				t.Errorf("Pattern() = %q, want %q", got.Pattern(), tt.rules[tt.want].Path)
			}
		})
	}
}

func TestMatchManyChildren(t *testing.T) {
	// Enough siblings that literal children are indexed by a map.
	var rules []Rule
	for _, s := range strings.Fields("a b c d e f g h i j k l") {
		rules = append(rules, r("GET", "/x/"+s+"/*"), r("GET", "/x/"+s+"/*/y"))
	}
	p := mustCompile(t, rules...)
	for i, rule := range rules {
		path := strings.Replace(rule.Path, "/*/", "/seg/", 1)
		path = strings.Replace(path, "/*", "/z", 1)
		if got := p.Match("GET", path); got.Index() != i {
			t.Errorf("Match(GET, %q) = rules[%d], want rules[%d]", path, got.Index(), i)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		index int    // rule named in the error
		want  string // part of the message
	}{
		{"pattern without leading slash", []Rule{r("GET", "api/x")}, 0, `must start with "/"`},
		{"empty pattern", []Rule{r("GET", "")}, 0, `must start with "/"`},
		{"pattern with double slash", []Rule{r("GET", "/a//b")}, 0, "not canonical"},
		{"pattern with dot segment", []Rule{r("GET", "/a/./b")}, 0, "not canonical"},
		{"pattern with dot-dot segment", []Rule{r("GET", "/a/../b")}, 0, "not canonical"},
		{"pattern ending in dot-dot", []Rule{r("GET", "/a/..")}, 0, "not canonical"},
		{"pattern with a space", []Rule{r("GET", "/a b")}, 0, "space or control"},
		{"pattern with a control character", []Rule{r("GET", "/a\x00")}, 0, "space or control"},
		{"pattern with a query", []Rule{r("GET", "/a?b=1")}, 0, "path only"},
		{"pattern with a fragment", []Rule{r("GET", "/a#b")}, 0, "path only"},
		{"star inside a segment", []Rule{r("GET", "/a*b")}, 0, `"*" must be`},
		{"star after a partial segment", []Rule{r("GET", "/a/b*/c")}, 0, `"*" must be`},
		{"star before a partial segment", []Rule{r("GET", "/a/*b")}, 0, `"*" must be`},
		{"double star", []Rule{r("GET", "/a/**")}, 0, `"*" must be`},
		{"no methods", []Rule{r("", "/a")}, 0, "no methods"},
		{"empty method", []Rule{{Methods: []string{""}, Path: "/a"}}, 0, "empty method"},
		{"lower-case method", []Rule{r("get", "/a")}, 0, "upper case"},
		{"method with a bad character", []Rule{r("GE(T", "/a")}, 0, "not an HTTP token"},
		{"star among other methods", []Rule{r("GET *", "/a")}, 0, `"*" must be the only`},
		{"method listed twice", []Rule{r("GET GET", "/a")}, 0, "listed twice"},
		{"empty scope", []Rule{r("GET", "/a", "read:x", "")}, 0, "empty scope"},
		{"scope with a space", []Rule{r("GET", "/a", "read x")}, 0, "not allowed in a scope"},
		{"scope with a quote", []Rule{r("GET", "/a", `read"x`)}, 0, "not allowed in a scope"},
		{"scope listed twice", []Rule{r("GET", "/a", "read:x", "read:x")}, 0, "listed twice"},
		{"public with scopes", []Rule{{Methods: []string{"GET"}, Path: "/a", Scopes: []string{"x"}, Public: true}}, 0, "public rule cannot require scopes"},
		{"duplicate method and path", []Rule{r("GET", "/ok"), r("GET POST", "/a"), r("POST", "/a")}, 2, "POST /a is already governed by rules[1]"},
		{"duplicate of a star rule", []Rule{r("*", "/a*"), r("GET", "/a*")}, 1, `rules[0] ("*")`},
		{"star after an explicit method", []Rule{r("DELETE", "/a"), r("GET", "/a"), r("*", "/a")}, 2, `"*" overlaps rules[0], which already governs /a`},
		{"two star rules", []Rule{r("*", "/a"), r("*", "/a")}, 1, "every method of /a"},
		{"error names a later rule", []Rule{r("GET", "/a"), r("GET", "b")}, 1, `must start with "/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.rules)
			if err == nil {
				t.Fatalf("Compile succeeded (%v), want error containing %q", p, tt.want)
			}
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is %T, want *RuleError", err, err)
			}
			if re.Index != tt.index {
				t.Errorf("error names rules[%d], want rules[%d]: %v", re.Index, tt.index, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.rules[tt.index].Path) {
				t.Errorf("error %q does not quote the rule's pattern", err)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	// Not duplicates: the implied HEAD of a GET rule, and one method on
	// different patterns.
	mustCompile(t,
		r("GET", "/a"), r("HEAD", "/a"),
		r("GET", "/a*"), r("GET", "/a/*"),
		public("OPTIONS", "/*"),
		r("BREW", "/pot", "coffee:brew"),
	)
	if p := mustCompile(t); p.Match("GET", "/") != nil {
		t.Error("an empty policy matched")
	}
}

func TestCompileCopiesRules(t *testing.T) {
	rules := []Rule{r("GET", "/a", "read:a")}
	p := mustCompile(t, rules...)
	rules[0].Scopes[0] = "changed"
	rules[0].Methods[0] = "POST"
	route := p.Match("GET", "/a")
	if got := route.Scopes(); len(got) != 1 || got[0] != "read:a" {
		t.Errorf("Scopes() = %q after the caller changed its rule", got)
	}
}

func TestRouteAccessors(t *testing.T) {
	p := mustCompile(t, r("GET", "/a"), r("GET POST", "/b*", "read:b", "write:b"), public("OPTIONS", "/*"))
	b := p.Match("POST", "/b/1")
	if b.Public() || b.Index() != 1 || b.Pattern() != "/b*" || strings.Join(b.Scopes(), " ") != "read:b write:b" {
		t.Errorf("route = {public %v, index %d, pattern %q, scopes %q}", b.Public(), b.Index(), b.Pattern(), b.Scopes())
	}
	if o := p.Match("OPTIONS", "/b/1"); !o.Public() || len(o.Scopes()) != 0 {
		t.Errorf("OPTIONS route: public %v, scopes %q", o.Public(), o.Scopes())
	}
	var nilPolicy *Policy
	if nilPolicy.Match("GET", "/a") != nil {
		t.Error("nil Policy matched")
	}
	var none *Route // what Match returns for no rule: every accessor denies
	if none.Public() || none.Index() != -1 || none.Pattern() != "" || none.Scopes() != nil {
		t.Error("nil Route does not read as empty")
	}
	if _, missing := none.Missing([]string{"read:b"}); !missing {
		t.Error("nil Route reports no missing scope")
	}
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name    string
		scopes  []string // required by the rule
		granted []string
		want    string
		missing bool
	}{
		{"no scopes required", nil, nil, "", false},
		{"no scopes required, some granted", nil, []string{"read:a"}, "", false},
		{"the one required is granted", []string{"read:a"}, []string{"openid", "read:a"}, "", false},
		{"all required are granted in any order", []string{"read:a", "write:a"}, []string{"write:a", "x", "read:a"}, "", false},
		{"nothing granted", []string{"read:a"}, nil, "read:a", true},
		{"first absent one is reported", []string{"read:a", "write:a", "del:a"}, []string{"read:a"}, "write:a", true},
		{"scopes compare exactly", []string{"read:a"}, []string{"READ:A", "read:a:x", "read"}, "read:a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := mustCompile(t, Rule{Methods: []string{"GET"}, Path: "/", Scopes: tt.scopes}).Match("GET", "/")
			scope, missing := route.Missing(tt.granted)
			if scope != tt.want || missing != tt.missing {
				t.Errorf("Missing(%q) = %q, %v; want %q, %v", tt.granted, scope, missing, tt.want, tt.missing)
			}
		})
	}
}

// sinkValid keeps a result the compiler could otherwise drop, with the
// call whose allocations are being counted.
var sinkValid bool

func TestHotPathDoesNotAllocate(t *testing.T) {
	p := benchPolicy(t)
	granted := []string{"openid", "read:contacts", "read:invoices", "write:invoices"}
	tenancy := &Tenancy{Header: "x-business-id", Mode: Inject}
	owns := func(id string) bool { return id == "biz_1" }
	for _, tc := range benchPaths {
		allocs := testing.AllocsPerRun(100, func() {
			route := p.Match(tc.method, tc.path)
			route.Missing(granted)
			CleanPath(tc.path)
		})
		if allocs != 0 {
			t.Errorf("Match(%q, %q): %v allocations", tc.method, tc.path, allocs)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		tenancy.Resolve("biz_1", "", owns)
		tenancy.Resolve("", "biz_1", nil)
		tenancy.Resolve("a,b", "", nil)
		sinkValid = ValidBusinessID("biz_1")
		_ = ForeignBusiness.String()
	})
	if allocs != 0 {
		t.Errorf("tenancy: %v allocations", allocs)
	}
}
