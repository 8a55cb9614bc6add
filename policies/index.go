package policies

import "strings"

// smallFanout is how many literal children a node scans linearly before it
// switches to a map: comparing a few short strings beats hashing the segment.
const smallFanout = 8

// entry gathers the rules sharing one pattern, one per method.
type entry struct {
	shape    shape
	byMethod []*Route          // by method id; HEAD falls back to GET here
	any      *Route            // the "*" rule, if any
	explicit map[string]*Route // by method name, only while compiling
}

// route returns the rule of e that governs method id m (-1: a method no rule
// names), or nil.
func (e *entry) route(m int) *Route {
	if m >= 0 {
		if r := e.byMethod[m]; r != nil {
			return r
		}
	}
	return e.any
}

// first returns the earliest rule with an explicit method, for error messages.
func (e *entry) first() *Route {
	var first *Route
	for _, r := range e.explicit {
		if first == nil || r.index < first.index {
			first = r
		}
	}
	return first
}

// node is one segment of the wildcard trie. A walk visits a node with the
// rest of the path after a "/" (or at its end), so literal children, the
// one-segment "*" child and prefix patterns are all tried from there.
type node struct {
	keys  []string         // literal child segments while few, parallel to kids
	kids  []*node          //
	index map[string]*node // all literal children once there are many
	star  *node            // child for a whole "*" segment
	end   *entry           // pattern ending exactly here, like /a/*/b
	tails []tail           // prefix patterns whose last segment starts here
}

// tail is a prefix pattern: it matches when the rest of the path starts with
// lit.
type tail struct {
	lit string
	e   *entry
}

func (n *node) insert(e *entry) {
	for _, seg := range e.shape.segs {
		if seg == "*" {
			if n.star == nil {
				n.star = new(node)
			}
			n = n.star
			continue
		}
		c := n.child(seg)
		if c == nil {
			c = new(node)
			n.keys = append(n.keys, seg)
			n.kids = append(n.kids, c)
			if n.index != nil || len(n.keys) > smallFanout {
				if n.index == nil {
					n.index = make(map[string]*node)
				}
				for i, k := range n.keys {
					n.index[k] = n.kids[i]
				}
			}
		}
		n = c
	}
	if e.shape.prefix {
		n.tails = append(n.tails, tail{lit: e.shape.last, e: e})
	} else {
		n.end = e
	}
}

func (n *node) child(seg string) *node {
	if n.index != nil {
		return n.index[seg]
	}
	for i, k := range n.keys {
		if k == seg {
			return n.kids[i]
		}
	}
	return nil
}

// walk returns the more specific of best and the best rule for method id m
// at or below n. rest is the path after the last "/" consumed; atEnd means
// the path ended with the segment that led to n.
func (n *node) walk(rest string, atEnd bool, m int, best *Route) *Route {
	if atEnd {
		if n.end != nil {
			if r := n.end.route(m); r.beats(best) {
				best = r
			}
		}
		return best
	}
	for i := range n.tails {
		t := &n.tails[i]
		if strings.HasPrefix(rest, t.lit) {
			if r := t.e.route(m); r.beats(best) {
				best = r
			}
		}
	}
	seg, after, more := strings.Cut(rest, "/")
	if c := n.child(seg); c != nil {
		best = c.walk(after, !more, m, best)
	}
	if n.star != nil && seg != "" {
		best = n.star.walk(after, !more, m, best)
	}
	return best
}
