package policies

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// reference is Match written the slow, obvious way: every rule's pattern as
// a regular expression, every rule tried, the winner picked by the selection
// rules of the package documentation. The index must agree with it.
type reference struct {
	rules []Rule
	res   []*regexp.Regexp
}

func newReference(rules []Rule) *reference {
	ref := &reference{rules: rules}
	for _, rule := range rules {
		body, tail := strings.CutSuffix(rule.Path, "*")
		expr := strings.ReplaceAll(regexp.QuoteMeta(body), `/\*/`, `/[^/]+/`)
		expr = strings.ReplaceAll(expr, `/\*/`, `/[^/]+/`) // adjacent stars overlap
		if tail {
			expr += "(?s:.*)"
		}
		ref.res = append(ref.res, regexp.MustCompile("^"+expr+"$"))
	}
	return ref
}

func (ref *reference) governs(i int, method string) bool {
	has := func(rule Rule, m string) bool {
		for _, x := range rule.Methods {
			if x == m || x == "*" {
				return true
			}
		}
		return false
	}
	rule := ref.rules[i]
	if has(rule, method) {
		return true
	}
	if method != "HEAD" || !has(rule, "GET") {
		return false
	}
	for _, other := range ref.rules {
		if other.Path == rule.Path && has(other, "HEAD") {
			return false
		}
	}
	return true
}

func (ref *reference) match(method, path string) int {
	best := -1
	score := func(i int) (bool, int) {
		p := ref.rules[i].Path
		return !strings.Contains(p, "*"), len(p) - strings.Count(p, "*")
	}
	for i := range ref.rules {
		if !ref.governs(i, method) || !ref.res[i].MatchString(path) {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		ie, il := score(i)
		be, bl := score(best)
		if ie && !be || ie == be && il > bl {
			best = i
		}
	}
	return best
}

var fuzzRules = []Rule{
	public("OPTIONS", "/*"),
	r("GET", "/a"),
	r("HEAD", "/a"),
	r("GET", "/a*"),
	r("POST", "/a/*"),
	r("GET", "/a/b"),
	r("*", "/a/*/c"),
	r("GET PUT", "/a/b/*"),
	r("DELETE", "/a/*/*"),
	r("GET", "/*/b*"),
	r("GET", "/*/*/"),
	r("PATCH", "/a/b/c/d"),
	r("GET", "/x/%2e%2e/*"),
	r("HEAD", "/a/b*"),
}

func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/", "/a", "/a/b", "/a/b/c", "/a/x/c", "/a//c", "/a/b/", "/x/%2e%2e/y", "/a/../b", "", "a", "/ab/b"} {
		for _, m := range []string{"GET", "HEAD", "POST", "BREW", ""} {
			f.Add(m, s)
		}
	}
	p := mustCompile(f, fuzzRules...)
	ref := newReference(fuzzRules)
	f.Fuzz(func(t *testing.T, method, path string) {
		CleanPath(path)
		if got, want := p.Match(method, path).Index(), ref.match(method, path); got != want {
			t.Errorf("Match(%q, %q) = rules[%d], reference says rules[%d]", method, path, got, want)
		}
	})
}

// TestMatchAgreesWithReference compiles random rule sets over a small
// alphabet, so that patterns overlap a lot, and compares Match with the
// reference on random paths.
func TestMatchAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"a", "b", "ab", "*", ""}
	methods := []string{"GET", "HEAD", "POST", "*"}
	randomPath := func(n int, star bool) string {
		var sb strings.Builder
		for range n {
			sb.WriteByte('/')
			s := segs[rng.IntN(len(segs))]
			if s == "*" && !star {
				s = "b"
			}
			sb.WriteString(s)
		}
		return sb.String()
	}
	rounds := 300
	if testing.Short() {
		rounds = 30
	}
	compiled := 0
	for range rounds {
		var rules []Rule
		for range 1 + rng.IntN(12) {
			path := randomPath(1+rng.IntN(4), true)
			if rng.IntN(2) == 0 {
				path += "*"
			}
			rules = append(rules, r(methods[rng.IntN(len(methods))], path))
			if _, err := Compile(rules); err != nil {
				rules = rules[:len(rules)-1] // duplicates and malformed patterns are tested elsewhere
			}
		}
		p, err := Compile(rules)
		if err != nil || len(rules) == 0 {
			continue
		}
		compiled++
		ref := newReference(rules)
		for range 200 {
			method := methods[rng.IntN(len(methods)-1)]
			path := randomPath(rng.IntN(5), false)
			if got, want := p.Match(method, path).Index(), ref.match(method, path); got != want {
				t.Fatalf("rules %v: Match(%q, %q) = rules[%d], reference says rules[%d]", rules, method, path, got, want)
			}
		}
	}
	if compiled < rounds/4 {
		t.Errorf("only %d of %d random rule sets compiled", compiled, rounds)
	}
	t.Logf("%d of %d random rule sets compiled", compiled, rounds)
}
