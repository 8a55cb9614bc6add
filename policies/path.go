package policies

import (
	"fmt"
	"strings"
)

// CleanPath reports whether p is already canonical: it starts with "/" and
// has no empty, "." or ".." segment except that it may end in "/". Matching
// is purely textual, so the gateway answers 400 to anything else rather than
// let "/public/../admin" be judged by the rule for "/public/*" while the
// upstream serves "/admin".
func CleanPath(p string) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	for rest := p[1:]; ; {
		seg, after, more := strings.Cut(rest, "/")
		switch seg {
		case ".", "..":
			return false
		case "":
			if more {
				return false
			}
		}
		if !more {
			return true
		}
		rest = after
	}
}

// shape is a parsed pattern.
type shape struct {
	pattern string
	exact   bool     // no "*" at all
	prefix  bool     // ends with "*"
	segs    []string // segments walked through the trie; "*" for one segment
	last    string   // for a prefix pattern, the partial segment before its "*"
	lits    int      // bytes other than "*"
}

// parsePattern returns the shape of pattern, or why it is not a valid
// pattern.
func parsePattern(pattern string) (shape, string) {
	s := shape{pattern: pattern}
	if !strings.HasPrefix(pattern, "/") {
		return s, `pattern must start with "/"`
	}
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c <= ' ' || c == 0x7f:
			return s, "pattern contains a space or control character"
		case c == '?' || c == '#':
			return s, fmt.Sprintf("pattern contains %q: patterns match the path only", c)
		}
	}
	if !CleanPath(pattern) {
		return s, `pattern is not canonical (it has "//", "/./" or "/../", or ends in "/." or "/..")`
	}
	body := pattern
	if strings.HasSuffix(pattern, "*") {
		s.prefix = true
		body = pattern[:len(pattern)-1]
	}
	stars := 0
	for i := 0; i < len(body); i++ {
		if body[i] != '*' {
			continue
		}
		stars++
		if body[i-1] != '/' || i+1 == len(body) || body[i+1] != '/' {
			return s, `"*" must be the last character or a whole segment followed by more path`
		}
	}
	s.exact = !s.prefix && stars == 0
	s.lits = len(body) - stars
	if s.exact {
		return s, ""
	}
	s.segs = strings.Split(body[1:], "/")
	if s.prefix {
		s.last = s.segs[len(s.segs)-1]
		s.segs = s.segs[:len(s.segs)-1]
	}
	return s, ""
}
