package dpop

import (
	"net/url"
	"strings"
)

// htuMatches compares a proof's htu with the request URL after RFC 3986
// §6.2.2 and §6.2.3 normalisation, as RFC 9449 §4.3 rule 9 asks: scheme
// and host without regard to case, a default port the same as none, an
// empty path the same as "/", percent-encodings decoded, dot segments
// removed; the htu's query and fragment are ignored. An htu with user
// information never matches.
func htuMatches(htu string, t Target) bool {
	u, err := url.Parse(htu)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return false
	}
	switch {
	case t.OriginHost != "" && sameOrigin(u, t.OriginScheme, t.OriginHost):
	case t.OriginHost != "" && t.OriginOnly:
		return false
	case !sameOrigin(u, t.Scheme, t.Host):
		return false
	}
	path := t.Path
	p := u.Path
	if strings.Contains(p, "/.") {
		p = u.ResolveReference(&url.URL{}).Path
	}
	if p == "" {
		p = "/"
	}
	if path == "" {
		path = "/"
	}
	return p == path
}

// sameOrigin compares u's scheme and host with scheme and host, without
// regard to case or to a default port.
func sameOrigin(u *url.URL, scheme, host string) bool {
	return strings.EqualFold(u.Scheme, scheme) &&
		strings.EqualFold(stripDefaultPort(u.Host, scheme), stripDefaultPort(host, scheme))
}

// stripDefaultPort drops ":443" from an https host and ":80" from an http
// one (and a bare trailing ':').
func stripDefaultPort(host, scheme string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.IndexByte(host[i:], ']') >= 0 {
		return host
	}
	switch port := host[i+1:]; {
	case port == "",
		port == "443" && strings.EqualFold(scheme, "https"),
		port == "80" && strings.EqualFold(scheme, "http"):
		return host[:i]
	}
	return host
}
