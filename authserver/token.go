package authserver

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// grantHandler is one grant type of the token endpoint. The endpoint is a
// loop over handlers, so adding a grant adds a type, not a switch arm.
type grantHandler interface {
	grantType() string
	// handle runs after the client is authenticated and allowed this grant.
	handle(ctx context.Context, c *authenticatedClient, p params) (*tokenResponse, *Error)
}

// tokenResponse is RFC 6749 §5.1's success body (plus OIDC's id_token).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	resp, grant, e := s.token(w, r)
	if e != nil {
		s.observeTokenError(e.Code)
		writeError(w, e)
		return
	}
	s.observeTokenIssued(grant)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) (*tokenResponse, string, *Error) {
	p, e := parseParams(w, r)
	if e != nil {
		return nil, "", e
	}
	gt := p.get("grant_type")
	if gt == "" {
		return nil, "", errInvalidRequest("grant_type is required")
	}
	var h grantHandler
	for _, g := range s.grants {
		if g.grantType() == gt {
			h = g
			break
		}
	}
	if h == nil {
		return nil, "", oautherr.UnsupportedGrantType
	}
	// While the store is down nothing is issued, not even to a cached
	// client: this node could not learn of its deletion.
	if s.tokens.Available() != nil {
		return nil, gt, errUnavailable()
	}
	// The client is authenticated before any code or refresh token is
	// looked at, so an unauthenticated caller cannot burn one.
	c, e := s.authenticateClient(r.Context(), r, p)
	if e != nil {
		return nil, gt, e
	}
	if !slices.Contains(c.GrantTypes, gt) {
		return nil, gt, errUnauthorizedClient("the client is not registered for this grant type")
	}
	jkt, e := s.tokenProof(w, r, c)
	if e != nil {
		return nil, gt, e
	}
	resp, e := h.handle(withProofKey(r.Context(), jkt), c, p)
	return resp, gt, e
}

// storeError maps a store or token-service failure to the RFC error a client
// should see: 503 when the database is unreachable, 500 otherwise.
func (s *Server) storeError(op string, err error) *Error {
	if errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, tokens.ErrUnavailable) {
		s.log.Warn(op+": store unavailable", zap.Error(err))
		return errUnavailable()
	}
	s.logError(op, err)
	return errServer()
}

// mintAccess wraps tokens.MintAccess into a token response.
func (s *Server) mintAccess(a tokens.Access) (*tokenResponse, *Error) {
	raw, exp, err := s.tokens.MintAccess(a)
	if err != nil {
		return nil, s.storeError("minting access token", err)
	}
	tt := "Bearer"
	if a.JKT != "" {
		tt = "DPoP" // RFC 9449 §5.1
	}
	return &tokenResponse{
		AccessToken: raw,
		TokenType:   tt,
		// exp is whole seconds after a fractional now: round up so a 1h
		// token says 3600, as the guides show.
		ExpiresIn: int64(math.Ceil(exp.Sub(s.now()).Seconds())),
		Scope:     strings.Join(a.Scopes, " "),
	}, nil
}

// parseScope splits a scope parameter (RFC 6749 §3.3) into distinct tokens,
// keeping their order.
func parseScope(s string) ([]string, bool) {
	fields := strings.Fields(s)
	out := fields[:0]
	for _, f := range fields {
		if !validScopeToken(f) {
			return nil, false
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, true
}

// requestedScopes resolves the scope parameter against a ceiling: absent
// means the whole ceiling; otherwise every scope must be within it.
func requestedScopes(param string, ceiling []string) ([]string, *Error) {
	if strings.TrimSpace(param) == "" {
		return slices.Clone(ceiling), nil
	}
	req, ok := parseScope(param)
	if !ok {
		return nil, errInvalidScope("malformed scope")
	}
	for _, sc := range req {
		if !slices.Contains(ceiling, sc) {
			return nil, errInvalidScope("scope " + quoteParam(sc) + " is not allowed for this client")
		}
	}
	return req, nil
}

// userScopes are the OpenID Connect scopes (Core §3.1.2.1, §5.4, §11):
// they ask for the signed-in user's identity or for access while the user
// is away, so only a grant with a user can carry them.
var userScopes = map[string]bool{
	"openid": true, "profile": true, "email": true, "address": true, "phone": true, "offline_access": true,
}

// clientCredentialsGrant is RFC 6749 §4.4. Its tokens are stateless: each
// gets a fresh grant id that is never stored, so a single token can still be
// revoked by id.
type clientCredentialsGrant struct{ s *Server }

func (clientCredentialsGrant) grantType() string { return "client_credentials" }

func (g clientCredentialsGrant) handle(ctx context.Context, c *authenticatedClient, p params) (*tokenResponse, *Error) {
	if c.Public {
		return nil, errUnauthorizedClient("public clients cannot use client_credentials")
	}
	// The token is the client's own, with no user behind it: OpenID
	// scopes would promise an identity and a refresh that do not exist.
	// Absent a scope parameter the ceiling is the client's API scopes;
	// asking for an OpenID scope outright is invalid_scope.
	ceiling := make([]string, 0, len(c.Scopes))
	for _, sc := range c.Scopes {
		if !userScopes[sc] {
			ceiling = append(ceiling, sc)
		}
	}
	scopes, e := requestedScopes(p.get("scope"), ceiling)
	if e != nil {
		for _, sc := range strings.Fields(p.get("scope")) {
			if userScopes[sc] {
				return nil, errInvalidScope("scope " + quoteParam(sc) + " needs a user; client_credentials has none")
			}
		}
		return nil, e
	}
	resources, e := g.s.parseResources(p.resources())
	if e != nil {
		return nil, e
	}
	gid, err := tokens.NewID("cc_")
	if err != nil {
		return nil, g.s.storeError("generating grant id", err)
	}
	resp, e := g.s.mintAccess(tokens.Access{Subject: c.ID, ClientID: c.ID, GrantID: gid, Scopes: scopes, JKT: proofKey(ctx), Resources: resources})
	if e != nil {
		return nil, e
	}
	// The client may have been deleted on another node since this node
	// cached it. Read after signing, so that a deletion this read misses
	// is dated after the token and revokes it.
	switch err := g.s.tokens.ConfirmClient(ctx, c.ID); {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, errInvalidClient(c.viaBasic)
	case err != nil:
		return nil, g.s.storeError("confirming client", err)
	}
	return resp, nil
}
