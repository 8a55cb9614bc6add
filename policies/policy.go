package policies

import (
	"fmt"
	"slices"
	"strings"
)

// Rule is one line of the oauth_protect route map.
type Rule struct {
	// Methods are upper-case HTTP methods, or the single entry "*" for any
	// method. GET implies HEAD unless another rule gives HEAD for the same
	// pattern.
	Methods []string
	// Path is a pattern as described in the package documentation.
	Path string
	// Scopes are all required; none means any valid token will do.
	Scopes []string
	// Public routes need no token at all (CORS preflight, health checks);
	// Scopes must then be empty, so a public rule cannot look protected.
	Public bool
}

// RuleError reports why Compile refused a rule. Index lets a config parser
// point back at the offending line.
type RuleError struct {
	Index  int    // position in the rules passed to Compile
	Rule   Rule   // the offending rule
	Reason string // what is wrong with it
}

func (e *RuleError) Error() string {
	what := strings.TrimSpace(strings.Join(e.Rule.Methods, " ") + " " + e.Rule.Path)
	return fmt.Sprintf("policy rules[%d] (%s): %s", e.Index, what, e.Reason)
}

// Policy is a compiled route map. It is immutable and safe for concurrent
// use; the zero value and nil match nothing.
type Policy struct {
	methods []string          // method names by id; ids index entry.byMethod
	exact   map[string]*entry // exact patterns, consulted first because they always win
	root    *node             // wildcard patterns; nil when there are none
	routes  []Route           // one per rule, in source order
}

// Route is the compiled form of one Rule, as returned by Match. Its methods
// are safe on a nil Route and then deny.
type Route struct {
	index   int
	pattern string
	scopes  []string
	public  bool
	exact   bool
	lits    int // literal bytes of pattern, the specificity tie-breaker
}

// Compile validates rules and builds the index Match uses. Errors are
// *RuleError values naming the first offending rule. The rules are copied, so
// the caller may reuse them.
func Compile(rules []Rule) (*Policy, error) {
	p := &Policy{
		exact:  make(map[string]*entry),
		routes: make([]Route, len(rules)),
	}
	patterns := make(map[string]*entry)
	var order []*entry // entries in first-seen order, for a deterministic index
	ids := make(map[string]int)
	for i, rule := range rules {
		fail := func(format string, args ...any) (*Policy, error) {
			return nil, &RuleError{Index: i, Rule: rule, Reason: fmt.Sprintf(format, args...)}
		}
		shape, reason := parsePattern(rule.Path)
		if reason != "" {
			return fail("%s", reason)
		}
		if reason := checkMethods(rule.Methods); reason != "" {
			return fail("%s", reason)
		}
		if reason := checkScopes(rule.Scopes); reason != "" {
			return fail("%s", reason)
		}
		if rule.Public && len(rule.Scopes) > 0 {
			return fail("a public rule cannot require scopes")
		}
		r := &p.routes[i]
		*r = Route{
			index:   i,
			pattern: rule.Path,
			scopes:  slices.Clone(rule.Scopes),
			public:  rule.Public,
			exact:   shape.exact,
			lits:    shape.lits,
		}
		e := patterns[rule.Path]
		if e == nil {
			e = &entry{shape: shape, explicit: make(map[string]*Route)}
			patterns[rule.Path] = e
			order = append(order, e)
		}
		if rule.Methods[0] == "*" {
			if e.any != nil {
				return fail("every method of %s is already governed by rules[%d]", rule.Path, e.any.index)
			}
			if other := e.first(); other != nil {
				return fail(`"*" overlaps rules[%d], which already governs %s`, other.index, rule.Path)
			}
			e.any = r
			continue
		}
		for _, m := range rule.Methods {
			if e.any != nil {
				return fail("%s %s is already governed by rules[%d] (\"*\")", m, rule.Path, e.any.index)
			}
			if other := e.explicit[m]; other != nil {
				return fail("%s %s is already governed by rules[%d]", m, rule.Path, other.index)
			}
			e.explicit[m] = r
			if _, ok := ids[m]; !ok {
				ids[m] = len(p.methods)
				p.methods = append(p.methods, m)
			}
		}
	}
	if _, ok := ids["GET"]; ok {
		if _, ok := ids["HEAD"]; !ok {
			ids["HEAD"] = len(p.methods)
			p.methods = append(p.methods, "HEAD")
		}
	}
	for _, e := range order {
		e.byMethod = make([]*Route, len(p.methods))
		for m, r := range e.explicit {
			e.byMethod[ids[m]] = r
		}
		if e.explicit["HEAD"] == nil && e.explicit["GET"] != nil {
			e.byMethod[ids["HEAD"]] = e.explicit["GET"]
		}
		e.explicit = nil
		if e.shape.exact {
			p.exact[e.shape.pattern] = e
			continue
		}
		if p.root == nil {
			p.root = new(node)
		}
		p.root.insert(e)
	}
	return p, nil
}

// Match returns the route that governs method and path, or nil when no rule
// does; the caller must then deny. path is matched as given: check it with
// CleanPath first.
func (p *Policy) Match(method, path string) *Route {
	if p == nil {
		return nil
	}
	m := -1
	for i, name := range p.methods {
		if name == method {
			m = i
			break
		}
	}
	if e := p.exact[path]; e != nil {
		if r := e.route(m); r != nil {
			return r
		}
	}
	if p.root == nil || len(path) == 0 || path[0] != '/' {
		return nil
	}
	return p.root.walk(path[1:], false, m, nil)
}

// Public reports whether the route needs no token at all.
func (r *Route) Public() bool { return r != nil && r.public }

// Scopes returns the scopes the route requires. The slice is shared: do not
// modify it.
func (r *Route) Scopes() []string {
	if r == nil {
		return nil
	}
	return r.scopes
}

// Pattern returns the rule's path pattern as written, for logs and metrics.
func (r *Route) Pattern() string {
	if r == nil {
		return ""
	}
	return r.pattern
}

// Index returns the rule's position in the slice given to Compile, or -1 for
// a nil Route.
func (r *Route) Index() int {
	if r == nil {
		return -1
	}
	return r.index
}

// Missing returns the first required scope absent from granted, the token's
// scopes in any order, and true; or "", false when all are present. A nil
// Route reports a missing scope (with an empty name) so a forgotten nil check
// denies instead of allowing.
func (r *Route) Missing(granted []string) (scope string, missing bool) {
	if r == nil {
		return "", true
	}
	for _, want := range r.scopes {
		if !slices.Contains(granted, want) {
			return want, true
		}
	}
	return "", false
}

// beats reports whether r is more specific than o, a nil o losing to any r.
func (r *Route) beats(o *Route) bool {
	switch {
	case r == nil:
		return false
	case o == nil:
		return true
	case r.exact != o.exact:
		return r.exact
	case r.lits != o.lits:
		return r.lits > o.lits
	}
	return r.index < o.index
}

// checkMethods returns why methods is unacceptable, or "".
func checkMethods(methods []string) string {
	if len(methods) == 0 {
		return `no methods (use "*" for every method)`
	}
	for i, m := range methods {
		if m == "*" {
			if len(methods) > 1 {
				return `"*" must be the only method`
			}
			continue
		}
		if m == "" {
			return "empty method"
		}
		for j := 0; j < len(m); j++ {
			c := m[j]
			if 'a' <= c && c <= 'z' {
				return fmt.Sprintf("method %q must be upper case (methods are case-sensitive)", m)
			}
			if !isTchar(c) {
				return fmt.Sprintf("method %q is not an HTTP token", m)
			}
		}
		if slices.Contains(methods[:i], m) {
			return fmt.Sprintf("method %s listed twice", m)
		}
	}
	return ""
}

// checkScopes returns why scopes is unacceptable, or "". Scope tokens follow
// RFC 6749 section 3.3, so a rule can only require a scope a token can carry.
func checkScopes(scopes []string) string {
	for i, s := range scopes {
		if s == "" {
			return "empty scope"
		}
		for j := 0; j < len(s); j++ {
			if c := s[j]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
				return fmt.Sprintf("scope %q has a character not allowed in a scope token", s)
			}
		}
		if slices.Contains(scopes[:i], s) {
			return fmt.Sprintf("scope %s listed twice", s)
		}
	}
	return ""
}

// isTchar reports whether c may appear in an HTTP token (RFC 9110 section 5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
