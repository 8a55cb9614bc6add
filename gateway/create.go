package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthgate/oauthgate/policies"
	"github.com/oauthgate/oauthgate/tokens"
)

// Creating says whether a route creates businesses, and which tokens may
// call it. A creation route needs no tenant header (the business does not
// exist yet) and only its route's scopes; the handler links the business
// the upstream creates to the calling client.
type Creating int

// How a route treats tokens when it creates businesses.
const (
	// NotCreating: an ordinary route.
	NotCreating Creating = iota
	// ClientsCreate: client-credentials tokens create, and the new business
	// is linked to their client; user tokens are refused (UserCreates).
	ClientsCreate
	// AnyTokenCreates: user tokens pass too, and nothing is linked for
	// them (a user's businesses are the platform's to manage).
	AnyTokenCreates
)

// creating is how route creates, NotCreating for most routes.
func (g *Guard) creating(route *policies.Route) Creating {
	if i := route.Index(); i >= 0 && i < len(g.cfg.Creating) {
		return g.cfg.Creating[i]
	}
	return NotCreating
}

// decideCreation decides a request to a creation route (ok false for any
// other route): no tenancy, and user tokens only when the route lets them.
// A method override is refused on such a route, and onto one: the upstream
// would act by the other method while the gateway links, or not.
func (g *Guard) decideCreation(route, other *policies.Route, claims *tokens.Claims) (Decision, bool) {
	c := g.creating(route)
	if other != nil && (c != NotCreating || g.creating(other) != NotCreating) {
		return refuse(BadOverride), true
	}
	switch {
	case c == NotCreating:
		return Decision{}, false
	case claims.User && c != AnyTokenCreates:
		return refuse(UserCreates), true
	}
	return Decision{Verdict: Allow, Claims: claims, Creates: true, Link: !claims.User, Rule: route.Index()}, true
}

// IDSource says where the id of a created business is in the upstream's
// successful answer.
type IDSource struct {
	// Member is the path of a JSON member of the answer's body, one name
	// per level ("id", or "data", "id" for {"data":{"id":…}}); its value is
	// a string or an integer. Empty: the last segment of the Location
	// header.
	Member []string
}

// Errors of IDSource.Find. Neither carries the answer's content.
var (
	// ErrNoID: the answer names no id where the route says it would.
	ErrNoID = errors.New("the upstream's answer names no business id")
	// ErrBadID: the id found is not a valid business id.
	ErrBadID = errors.New("the upstream's answer names an invalid business id")
)

// Find returns the id of the created business from the answer's header
// and body, checked like any business id (policies.ValidBusinessID).
func (s IDSource) Find(h http.Header, body []byte) (string, error) {
	var id string
	var err error
	if len(s.Member) == 0 {
		id, err = locationID(h)
	} else {
		id, err = jsonID(body, s.Member)
	}
	if err != nil {
		return "", err
	}
	if !policies.ValidBusinessID(id) {
		return "", ErrBadID
	}
	return id, nil
}

// locationID is the last path segment of the one Location header (RFC
// 9110 §10.2.2: the URI of the created resource), unescaped.
func locationID(h http.Header) (string, error) {
	vals := h.Values("Location")
	if len(vals) != 1 {
		return "", ErrNoID
	}
	u, err := url.Parse(strings.TrimSpace(vals[0]))
	if err != nil {
		return "", ErrBadID
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	seg := p[strings.LastIndexByte(p, '/')+1:]
	if seg == "" {
		return "", ErrNoID
	}
	id, err := url.PathUnescape(seg)
	if err != nil {
		return "", ErrBadID
	}
	return id, nil
}

// jsonID is the string or integer at path in a JSON object body.
func jsonID(body []byte, path []string) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", ErrNoID
	}
	for _, name := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", ErrNoID
		}
		if v, ok = obj[name]; !ok {
			return "", ErrNoID
		}
	}
	switch id := v.(type) {
	case string:
		return id, nil
	case json.Number:
		if _, err := id.Int64(); err != nil {
			return "", ErrBadID // a fraction or an exponent is no id
		}
		return id.String(), nil
	case nil:
		return "", ErrNoID
	}
	return "", ErrBadID
}
