package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/oauthgate/oauthgate/authserver"
)

// The protected resource each oauth_protect guards (RFC 9728 metadata,
// RFC 8707 audience).
//
// Its identifier is the `resource` option, or by default the issuer's
// origin followed by the route prefix of the handler's route map: the
// leading path segments every route pattern shares, counting only whole
// literal segments (a segment with a *, such as "invoices*", ends it). For
// the demo map (/api/v1/accounting/invoices*, /api/v1/crm/contacts*) that is
// /api/v1, so the resource is http://localhost:8080/api/v1; for a map with
// nothing in common (/companies*, /employees*) it is the origin,
// http://localhost:8080/. Identifiers are kept in one canonical spelling:
// scheme and host lower-case, no default port, an empty path written "/" (as URL.href
// writes it, which is what JavaScript clients send back).
//
// Its metadata document is at the URL RFC 9728 §3.1 derives from the
// identifier: /.well-known/oauth-protected-resource followed by the
// identifier's path (without a trailing slash). oauth_server answers it for
// every resource of the configuration (it sees every request of its site,
// even with oauth_protect inside `route /api/v1/*`), and an oauth_protect
// answers its own when the request reaches it (a site without oauth_server).

// wellKnownPRM is the RFC 9728 §3 well-known URI suffix.
const wellKnownPRM = "/.well-known/oauth-protected-resource"

// resource is one protected resource: what oauth_protect checks and what
// the metadata says. Immutable once provisioned.
type resource struct {
	// id is the canonical resource identifier (aud of tokens minted for it).
	id string
	// host is the identifier's host[:port], for telling apart resources
	// of several sites that share a metadata path.
	host string
	// path is the identifier's path without a trailing slash ("" for an
	// origin); the metadata path is wellKnownPRM + path.
	path string
	// metadataURL is the absolute URL of the metadata document, sent as
	// resource_metadata in every challenge.
	metadataURL string
	// md is the metadata document, doc its JSON, marshalled at Provision.
	md  resourceMetadata
	doc []byte
}

// resourceMetadata is the RFC 9728 §2 document.
type resourceMetadata struct {
	Resource string `json:"resource"`
	// ResourceName is RECOMMENDED (§2): a name to show the end user.
	ResourceName         string   `json:"resource_name,omitempty"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported: oauth_protect reads the Authorization
	// header only (RFC 6750 §2.1).
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// DPoPSigningAlgValuesSupported (RFC 9449 §5.1, RFC 9728 §2) is set
	// once oauth_protect verifies DPoP proofs.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// routePrefix is the route map's shared leading literal segments, as
// "/a/b" ("" when the patterns share none).
func routePrefix(routes []RouteConfig) string {
	var common []string
	for i, rc := range routes {
		var segs []string
		for _, s := range strings.Split(strings.TrimPrefix(rc.Path, "/"), "/") {
			if s == "" || strings.Contains(s, "*") {
				break
			}
			segs = append(segs, s)
		}
		if i == 0 {
			common = segs
			continue
		}
		n := 0
		for n < len(common) && n < len(segs) && common[n] == segs[n] {
			n++
		}
		common = common[:n]
	}
	if len(common) == 0 {
		return ""
	}
	return "/" + strings.Join(common, "/")
}

// provisionResource settles the handler's resource and registers it with
// the app, so the authorization server knows it and oauth_server serves its
// metadata.
func (p *Protect) provisionResource() error {
	id := caddy.NewReplacer().ReplaceKnown(p.Resource, "")
	if id == "" {
		iss, err := url.Parse(p.app.Issuer)
		if err != nil || iss.Host == "" {
			return fmt.Errorf("resource: the issuer %q has no origin to default to; set resource", p.app.Issuer)
		}
		id = iss.Scheme + "://" + iss.Host + routePrefix(p.Routes)
	}
	canon, err := authserver.CanonicalResource(id)
	if err != nil {
		return fmt.Errorf("resource %q: %v", id, err)
	}
	u, _ := url.Parse(canon)
	res := &resource{id: canon, host: u.Host, path: strings.TrimSuffix(u.Path, "/")}
	res.metadataURL = u.Scheme + "://" + u.Host + wellKnownPRM + res.path
	md := resourceMetadata{
		Resource:               canon,
		ResourceName:           p.ResourceName,
		AuthorizationServers:   []string{p.app.Issuer},
		ScopesSupported:        routeScopes(p.Routes),
		BearerMethodsSupported: []string{"header"},
		// oauth_protect checks the proof of every DPoP-bound token.
		DPoPSigningAlgValuesSupported: p.app.dpop.Algs(),
	}
	res.md = md
	if p.resource, err = p.app.resources.add(res); err != nil {
		return fmt.Errorf("resource metadata: %w", err)
	}
	return nil
}

// audiences are the token audiences the handler accepts: its resource,
// and, unless DefaultAudience is refuse, the audience of tokens requested
// without a resource (the app's audience, default the issuer), which
// every handler accepts by default, as before resource indicators.
func (p *Protect) audiences() ([]string, error) {
	def := caddy.NewReplacer().ReplaceKnown(p.app.Audience, "")
	if def == "" {
		def = p.app.Issuer
	}
	switch p.DefaultAudience {
	case "", "accept":
	case "refuse":
		return []string{p.resource.id}, nil
	default:
		return nil, fmt.Errorf("default_audience %q: want accept or refuse", p.DefaultAudience)
	}
	if def == p.resource.id {
		return []string{def}, nil
	}
	return []string{p.resource.id, def}, nil
}

// routeScopes lists the scopes the route map names, in order of first use.
func routeScopes(routes []RouteConfig) []string {
	var out []string
	seen := make(map[string]bool)
	for _, rc := range routes {
		for _, s := range rc.Scopes {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// resources are the protected resources of a configuration, registered
// by each oauth_protect at Provision. Every handler is provisioned before
// any app starts and before any request arrives, so it is read without a
// lock afterwards.
type resources struct {
	list []*resource
}

// add registers r and returns the resource its handler is to use: r, or
// the one registered before with the same identifier, whose document then
// lists the scopes of both route maps (several blocks, one resource).
func (rs *resources) add(r *resource) (*resource, error) {
	for _, old := range rs.list {
		if old.id != r.id {
			continue
		}
		switch {
		case r.md.ResourceName == "" || r.md.ResourceName == old.md.ResourceName:
		case old.md.ResourceName == "":
			old.md.ResourceName = r.md.ResourceName
		default:
			return nil, fmt.Errorf("%s is named both %q and %q", r.id, old.md.ResourceName, r.md.ResourceName)
		}
		for _, sc := range r.md.ScopesSupported {
			if !slices.Contains(old.md.ScopesSupported, sc) {
				old.md.ScopesSupported = append(old.md.ScopesSupported, sc)
			}
		}
		r = old
		break
	}
	doc, err := json.Marshal(r.md)
	if err != nil {
		return nil, err
	}
	r.doc = doc
	if !slices.Contains(rs.list, r) {
		rs.list = append(rs.list, r)
	}
	return r, nil
}

// ids are the resource identifiers, each once.
func (rs *resources) ids() []string {
	out := make([]string, len(rs.list))
	for i, r := range rs.list {
		out[i] = r.id
	}
	return out
}

// lookup finds the resource whose metadata a request for path (under
// wellKnownPRM) asks for: the one whose metadata path it is; failing
// that, the resource whose path is the longest prefix of it (a client
// that formed the URL from an endpoint below the resource); and for the
// bare well-known path, the only resource of that host. Resources of
// other sites sharing the path are told apart by host; if that still
// leaves several, nothing is served rather than the wrong one.
func (rs *resources) lookup(host, path string) *resource {
	sub := strings.TrimSuffix(path[len(wellKnownPRM):], "/")
	var best *resource
	bestLen, ambiguous := -1<<30, false
	for _, r := range rs.list {
		if r.path != sub && !strings.HasPrefix(sub, r.path+"/") && !(sub == "" && r.path != "") {
			continue
		}
		score := len(r.path) * 2 // an exact or longer path wins
		if sub == "" && r.path != "" {
			score = -2 // the bare path falls back to a resource with a path
		}
		if r.host == host {
			score++
		}
		switch {
		case score > bestLen:
			best, bestLen, ambiguous = r, score, false
		case score == bestLen && r.id != best.id:
			ambiguous = true
		}
	}
	if ambiguous {
		return nil
	}
	return best
}

// isPRMPath reports whether path asks for protected-resource metadata.
func isPRMPath(path string) bool {
	return strings.HasPrefix(path, wellKnownPRM) && (len(path) == len(wellKnownPRM) || path[len(wellKnownPRM)] == '/')
}

// serveResourceMetadata answers a metadata request with res's document.
func serveResourceMetadata(w http.ResponseWriter, r *http.Request, res *resource) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	// A browser-based client (an MCP inspector, a single-page app using
	// oauth4webapi) reads it cross-origin, as it reads the RFC 8414
	// document, which says the same.
	h.Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, err := w.Write(res.doc)
		return err
	}
	return nil
}

// ownMetadata reports whether r asks for this handler's metadata: its
// RFC 9728 path, a path below it, or the bare well-known path.
func (p *Protect) ownMetadata(r *http.Request) bool {
	if !isPRMPath(r.URL.Path) {
		return false
	}
	sub := strings.TrimSuffix(r.URL.Path[len(wellKnownPRM):], "/")
	return sub == p.resource.path || strings.HasPrefix(sub, p.resource.path+"/") || sub == ""
}
