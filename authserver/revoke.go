package authserver

import (
	"context"
	"errors"
	"net/http"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// serveRevoke implements RFC 7009. An unknown, expired or malformed token is
// answered 200 like a revoked one (§2.2): the caller learns nothing.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	p, e := parseParams(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	c, e := s.optionalClient(r, p)
	if e != nil {
		writeError(w, e)
		return
	}
	raw := p.get("token")
	if raw == "" {
		writeError(w, errInvalidRequest("token is required"))
		return
	}
	if e := s.revoke(r.Context(), c, raw, p.get("token_type_hint")); e != nil {
		writeError(w, e)
		return
	}
	s.observeRevocation()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// optionalClient authenticates the client when credentials are present, and
// requires them unless PublicRevocation is on.
func (s *Server) optionalClient(r *http.Request, p params) (*authenticatedClient, *Error) {
	if s.cfg.PublicRevocation && r.Header.Get("Authorization") == "" && p.get("client_id") == "" && p.get("client_secret") == "" {
		return nil, nil
	}
	return s.authenticateClient(r.Context(), r, p)
}

// revoke revokes the grant behind an access or refresh token. A token of
// another client is left alone (RFC 7009 §2.1) but still answered 200, so
// a client cannot probe for tokens it does not own.
func (s *Server) revoke(ctx context.Context, c *authenticatedClient, raw, hint string) *Error {
	tryAccess := func() (bool, *Error) {
		claims, err := s.tokens.Parse(raw)
		switch {
		case errors.Is(err, tokens.ErrUnavailable):
			// An opaque token could not be looked up: answering 200
			// would tell the client a live token was revoked.
			return false, s.storeError("loading access token", err)
		case err != nil:
			return false, nil
		}
		if c != nil && claims.ClientID != c.ID {
			return true, nil
		}
		if err := s.tokens.RevokeGrant(ctx, claims.GrantID); err != nil {
			return true, s.storeError("revoking grant", err)
		}
		return true, nil
	}
	tryRefresh := func() (bool, *Error) {
		rt, err := s.store.GetRefreshToken(ctx, tokens.HashSecret(raw))
		switch {
		case errors.Is(err, tokenstore.ErrNotFound):
			return false, nil
		case err != nil:
			return false, s.storeError("loading refresh token", err)
		}
		if c != nil && rt.ClientID != c.ID {
			return true, nil
		}
		if err := s.tokens.RevokeGrant(ctx, rt.GrantID); err != nil {
			return true, s.storeError("revoking grant", err)
		}
		return true, nil
	}
	order := []func() (bool, *Error){tryAccess, tryRefresh}
	if hint == "refresh_token" {
		order[0], order[1] = tryRefresh, tryAccess
	}
	for _, try := range order {
		if done, e := try(); done || e != nil {
			return e
		}
	}
	return nil
}

// introspection is RFC 7662 §2.2's response. Its token_type is an access
// token type of RFC 6749 §7.1 ("Bearer"); a refresh token has none, so its
// introspection leaves the member out.
type introspection struct {
	Active     bool   `json:"active"`
	Scope      string `json:"scope,omitempty"`
	ClientID   string `json:"client_id,omitempty"`
	Subject    string `json:"sub,omitempty"`
	TokenType  string `json:"token_type,omitempty"`
	Exp        int64  `json:"exp,omitempty"`
	Iat        int64  `json:"iat,omitempty"`
	Issuer     string `json:"iss,omitempty"`
	Audience   any    `json:"aud,omitempty"` // a string, or several in an array
	JTI        string `json:"jti,omitempty"`
	BusinessID string `json:"authorized_business_id,omitempty"`
	// Cnf is the key a DPoP-bound token is bound to (RFC 9449 §6.2).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is RFC 7800's cnf member with RFC 9449's jkt.
type confirmation struct {
	JKT string `json:"jkt"`
}

// serveIntrospect implements RFC 7662. A client may introspect the tokens
// issued to it; a first-party client (typically a resource server the
// platform runs) may introspect any. Anything else is {"active": false}.
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	p, e := parseParams(w, r)
	if e == nil {
		var c *authenticatedClient
		if c, e = s.authenticateClient(r.Context(), r, p); e == nil {
			var resp *introspection
			if resp, e = s.introspect(r.Context(), c, p.get("token"), p.get("token_type_hint")); e == nil {
				s.observeIntrospection(resp.Active)
				writeJSON(w, http.StatusOK, resp)
				return
			}
		}
	}
	writeError(w, e)
}

func (s *Server) introspect(ctx context.Context, c *authenticatedClient, raw, hint string) (*introspection, *Error) {
	if raw == "" {
		return nil, errInvalidRequest("token is required")
	}
	inactive := &introspection{Active: false}
	mayRead := func(clientID string) bool { return c.FirstParty || clientID == c.ID }
	// RFC 7662 §2.1: a wrong hint must not hide a token, so an opaque
	// access token (which a refresh token's length does not tell apart)
	// is looked up as one whatever the hint.
	if hint != "refresh_token" || len(raw) > 100 || s.tokens.LooksOpaque(raw) {
		claims, err := s.tokens.Verify(raw)
		switch {
		case err == nil:
			if !mayRead(claims.ClientID) {
				return inactive, nil
			}
			// A deleted client's tokens are dead even where this node has
			// not yet heard of the revocation recorded with the deletion.
			switch _, err := s.tokens.Client(ctx, claims.ClientID); {
			case errors.Is(err, tokenstore.ErrNotFound):
				return inactive, nil
			case err != nil:
				return nil, s.storeError("loading client", err)
			}
			in := &introspection{
				Active: true, Scope: claims.Scope, ClientID: claims.ClientID, Subject: claims.Subject,
				TokenType: "Bearer", Exp: claims.ExpiresAt, Iat: claims.IssuedAt,
				Issuer: s.cfg.Issuer, Audience: audienceValue(claims.Audience), JTI: claims.JTI, BusinessID: claims.BusinessID,
			}
			if claims.JKT != "" {
				in.TokenType, in.Cnf = "DPoP", &confirmation{JKT: claims.JKT}
			}
			return in, nil
		case errors.Is(err, tokens.ErrUnavailable):
			return nil, errUnavailable()
		}
	}
	rt, err := s.store.GetRefreshToken(ctx, tokens.HashSecret(raw))
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return inactive, nil
	case err != nil:
		return nil, s.storeError("loading refresh token", err)
	}
	if !rt.UsedAt.IsZero() || !mayRead(rt.ClientID) || s.now().After(rt.ExpiresAt) {
		return inactive, nil
	}
	g, err := s.store.GetGrant(ctx, rt.GrantID)
	if err != nil || !g.RevokedAt.IsZero() {
		if err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
			return nil, s.storeError("loading grant", err)
		}
		return inactive, nil
	}
	in := &introspection{
		Active: true, Scope: joinScopes(rt.Scopes), ClientID: rt.ClientID, Subject: g.UserID,
		Exp: rt.ExpiresAt.Unix(), Iat: rt.CreatedAt.Unix(),
		Issuer: s.cfg.Issuer, BusinessID: g.BusinessID,
	}
	if rt.JKT != "" {
		in.Cnf = &confirmation{JKT: rt.JKT}
	}
	return in, nil
}
