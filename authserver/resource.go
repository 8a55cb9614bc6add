package authserver

import (
	"net/url"
	"slices"
	"strings"

	"github.com/oauthgate/oauthgate/internal/oautherr"
)

// Resource indicators (RFC 8707).
//
// The configuration's resources are the identifiers of its oauth_protect
// handlers (Config.Resources, canonical). A client names the ones it wants
// a token for with `resource`, repeatable, at the authorization endpoint
// and at the token endpoint:
//
//   - every value must be an absolute URI without a fragment (§2) naming a
//     known resource, else invalid_target;
//   - at /authorize the resources go with the request through sign-in and
//     consent into the code, and from the code into the grant;
//   - at /token they may narrow what the code or grant carries, never widen
//     it; a grant requested without resources (whose tokens carry the
//     default audience, which every oauth_protect accepts) may be narrowed
//     to any known resource;
//   - client_credentials takes any known resource;
//   - the access token's aud is the resources, or the default audience when
//     none was named.

// CanonicalResource checks a resource identifier (RFC 8707 §2: an absolute
// URI without a fragment; oauthgate also wants http or https, a host, no
// query and no user info, so that RFC 9728 can derive a metadata URL from
// it) and returns its one spelling: scheme and host in lower case, the
// scheme's default port dropped, an empty path written "/" (as URL.href
// writes it, which is what JavaScript clients send back).
func CanonicalResource(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", errResource("not a URI")
	case !u.IsAbs():
		return "", errResource("not an absolute URI")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "", errResource("has a fragment")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errResource("scheme is not http or https")
	case u.Host == "" || u.Opaque != "":
		return "", errResource("has no host")
	case u.User != nil:
		return "", errResource("has user info")
	case u.RawQuery != "" || u.ForceQuery:
		return "", errResource("has a query")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(strings.TrimSuffix(u.Host, ":"))
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		u.Host = u.Host[:len(u.Host)-len(p)-1]
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String(), nil
}

type errResource string

func (e errResource) Error() string { return string(e) }

// maxResources bounds the resource values of one request.
const maxResources = 16

// parseResources checks the resource values of a request against the
// configuration's resources and returns them canonical, each once, in the
// order sent. None sent: nil.
func (s *Server) parseResources(vals []string) ([]string, *Error) {
	if len(vals) > maxResources {
		return nil, oautherr.InvalidTarget.WithDescription("too many resource values")
	}
	var out []string
	for _, v := range vals {
		canon, err := CanonicalResource(v)
		if err != nil {
			return nil, oautherr.InvalidTarget.WithDescription("resource " + quoteParam(v) + ": " + err.Error())
		}
		if !slices.Contains(s.cfg.Resources, canon) {
			return nil, oautherr.InvalidTarget.WithDescription("resource " + quoteParam(v) + " is not a resource of this server")
		}
		if !slices.Contains(out, canon) {
			out = append(out, canon)
		}
	}
	return out, nil
}

// narrowResources resolves a token request's resources against those of
// its code or grant: none requested keeps them; a grant without resources
// may be narrowed to any known one; otherwise each requested must be among
// the grant's (RFC 8707 §2.2: a token request cannot widen the grant).
func (s *Server) narrowResources(granted []string, vals []string) ([]string, *Error) {
	req, e := s.parseResources(vals)
	if e != nil || len(req) == 0 {
		return slices.Clone(granted), e
	}
	if len(granted) == 0 {
		return req, nil
	}
	for _, r := range req {
		if !slices.Contains(granted, r) {
			return nil, oautherr.InvalidTarget.WithDescription("resource " + quoteParam(r) + " was not granted")
		}
	}
	return req, nil
}

// audienceValue is the aud member of an introspection answer: one string,
// or several in an array (RFC 7662 §2.2).
func audienceValue(aud []string) any {
	switch len(aud) {
	case 0:
		return nil
	case 1:
		return aud[0]
	}
	return aud
}

// resourceParams are the values of the repeatable resource parameter of a
// token request, which parseParams keeps apart (RFC 8707 §2).
func (p params) resources() []string {
	v, ok := p[resourceKey]
	if !ok {
		return nil
	}
	return strings.Split(v, "\n")
}

// resourceKey is the one parameter a token request may repeat. parseParams
// joins its values with joinResources, so each is judged on its own.
const resourceKey = "resource"

// joinResources joins the values of resource with "\n", a byte no valid
// value has (url.Parse refuses control characters). A "\n" inside one
// value becomes a NUL, which CanonicalResource refuses as it refuses the
// "\n": one value holding two identifiers is invalid_target, as at
// /authorize, not two values.
func joinResources(vals []string) string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.ReplaceAll(v, "\n", "\x00")
	}
	return strings.Join(out, "\n")
}
