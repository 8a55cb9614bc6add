package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// authorizationCodeGrant is RFC 6749 §4.1.3 with PKCE (RFC 7636) and OIDC's
// id_token.
type authorizationCodeGrant struct{ s *Server }

func (authorizationCodeGrant) grantType() string { return "authorization_code" }

func (g authorizationCodeGrant) handle(ctx context.Context, c *authenticatedClient, p params) (*tokenResponse, *Error) {
	s := g.s
	// began dates this exchange against the code's consumption, to tell a
	// loser of a race with the winner apart from a replay after it.
	began := s.now()
	code := p.get("code")
	if code == "" {
		return nil, errInvalidRequest("code is required")
	}
	verifier := p.get("code_verifier")
	if verifier != "" && !validVerifier(verifier) {
		return nil, errInvalidRequest("code_verifier must be 43 to 128 unreserved characters")
	}
	hash := tokens.HashSecret(code)
	ac, err := s.store.GetCode(ctx, hash)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, errInvalidGrant("authorization code is invalid or expired")
	case err != nil:
		return nil, s.storeError("loading code", err)
	}
	checked := checkCode(c, ac, p.get("redirect_uri"), verifier)
	if !ac.UsedAt.IsZero() {
		return nil, s.codeReused(ctx, ac, checked == nil, began)
	}
	if e := checked; e != nil {
		// The code is spent even so: a code presented by another client,
		// or with the wrong verifier, has leaked.
		switch _, err := s.store.ConsumeCode(ctx, hash); {
		case errors.Is(err, tokenstore.ErrReused), errors.Is(err, tokenstore.ErrNotFound):
		case err != nil:
			return nil, s.storeError("consuming code", err)
		}
		return nil, e
	}

	// RFC 8707 §2.2: the token may be for fewer resources than the code.
	resources, e := s.narrowResources(ac.Resources, p.resources())
	if e != nil {
		return nil, e
	}

	// Everything the answer needs is made before the code is spent, so that
	// an error answer (a 503 while the store is unavailable, say) leaves the
	// code unspent and the client's retry succeeds.
	now := g.s.now()
	grant := &tokenstore.Grant{
		ID:         ac.GrantID,
		ClientID:   c.ID,
		UserID:     ac.UserID,
		BusinessID: ac.BusinessID,
		Scopes:     ac.Scopes,
		AuthTime:   ac.AuthTime,
		CreatedAt:  now,
		Resources:  ac.Resources,
	}
	rt, rtRaw, e := s.newRefreshToken(c, grant, ac.Scopes, now)
	if e != nil {
		return nil, e
	}
	jkt := proofKey(ctx)
	if rt != nil && c.Public {
		rt.JKT = jkt // RFC 9449 §5: a public client's refresh token is bound too
	}
	resp, e := s.mintAccess(tokens.Access{Subject: ac.UserID, User: true, ClientID: c.ID, GrantID: grant.ID, BusinessID: ac.BusinessID, Scopes: ac.Scopes, JKT: jkt, Resources: resources})
	if e != nil {
		return nil, e
	}
	resp.RefreshToken = rtRaw
	// The grant lasts as long as its last token: the refresh token's
	// expiry (a refresh extends it, in the store), else the access
	// token's.
	grant.ExpiresAt = now.Add(time.Duration(resp.ExpiresIn) * time.Second)
	if rt != nil && rt.ExpiresAt.After(grant.ExpiresAt) {
		grant.ExpiresAt = rt.ExpiresAt
	}
	if slices.Contains(ac.Scopes, "openid") {
		if resp.IDToken, e = s.idToken(ctx, c.Client, grant, ac.Nonce, resp.AccessToken); e != nil {
			return nil, e
		}
	}
	// One commit spends the code and stores the grant it issues.
	switch _, err := s.store.RedeemCode(ctx, hash, grant, rt); {
	case errors.Is(err, tokenstore.ErrReused):
		// Unspent when read above, spent by an exchange that committed
		// meanwhile: a race this one lost, not a replay.
		return nil, errInvalidGrant("authorization code was already used")
	case errors.Is(err, tokenstore.ErrRevoked):
		// A replay of this code revoked the grant id (after a refused
		// exchange spent it): the store refused to bring it alive.
		s.observeReuse("code")
		return nil, errInvalidGrant("authorization code was already used")
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, errInvalidGrant("authorization code is invalid or expired")
	case err != nil:
		return nil, s.storeError("redeeming code", err)
	}
	return resp, nil
}

// checkCode applies the rules a code must meet for this client: its owner,
// the redirect_uri and PKCE.
func checkCode(c *authenticatedClient, ac *tokenstore.AuthCode, redirectURI, verifier string) *Error {
	if ac.ClientID != c.ID {
		return errInvalidGrant("authorization code was issued to another client")
	}
	// RFC 6749 §4.1.3: the redirect_uri of the authorization request, if it
	// sent one; otherwise a redirect_uri sent now must still be registered.
	switch {
	case ac.RedirectURI != "" && redirectURI != ac.RedirectURI:
		return errInvalidGrant("redirect_uri does not match the authorization request")
	case ac.RedirectURI == "" && redirectURI != "" && !slices.Contains(c.RedirectURIs, redirectURI):
		return errInvalidGrant("redirect_uri is not registered for this client")
	}
	switch {
	case ac.CodeChallenge == "" && c.Public:
		// /authorize requires PKCE of public clients; a code without a
		// challenge cannot have been minted for one.
		return errInvalidGrant("a public client must use PKCE")
	case ac.CodeChallenge != "":
		if verifier == "" {
			return errInvalidGrant("code_verifier is required")
		}
		if !pkceMatches(ac.CodeChallenge, verifier) {
			return errInvalidGrant("code_verifier does not match the code_challenge")
		}
	case verifier != "":
		// A verifier for a code minted without a challenge is a downgrade
		// attempt (RFC 9700 §4.8.2).
		return errInvalidGrant("code_verifier sent but no code_challenge was")
	}
	return nil
}

// codeRaceLeeway is how long after a code was spent an exact duplicate of
// the exchange that spent it still counts as having raced it rather than
// replayed it: the spread of a burst of parallel requests, which reach the
// handler milliseconds apart.
const codeRaceLeeway = 500 * time.Millisecond

// codeReused answers an exchange that found its code spent. RFC 6749
// §4.1.2: a replayed code revokes what it issued. An exchange that merely
// lost a race with the one that spent it (a client sending the same request
// twice at once) is refused without revoking the winner's tokens: one that
// passes every check the winner passed (same client, redirect_uri and PKCE
// verifier) and began before the code was spent or within codeRaceLeeway
// of it. Anything else, later or different, is a replay.
func (s *Server) codeReused(ctx context.Context, ac *tokenstore.AuthCode, sameRequest bool, began time.Time) *Error {
	if sameRequest && began.Before(ac.UsedAt.Add(codeRaceLeeway)) {
		return errInvalidGrant("authorization code was already used")
	}
	if rerr := s.tokens.RevokeGrant(ctx, ac.GrantID); rerr != nil {
		s.logError("revoking grant of a replayed code", rerr)
	}
	s.observeReuse("code")
	return errInvalidGrant("authorization code was already used")
}

// newRefreshToken makes the next refresh token of a grant, or nothing when
// the client may not refresh or offline_access is required and absent.
func (s *Server) newRefreshToken(c *authenticatedClient, g *tokenstore.Grant, scopes []string, now time.Time) (*tokenstore.RefreshToken, string, *Error) {
	if !slices.Contains(c.GrantTypes, "refresh_token") {
		return nil, "", nil
	}
	if s.cfg.RefreshRequiresOfflineAccess && !slices.Contains(scopes, "offline_access") {
		return nil, "", nil
	}
	raw, err := tokens.NewSecret(s.cfg.RefreshPrefix)
	if err != nil {
		return nil, "", errServer()
	}
	return &tokenstore.RefreshToken{
		Hash:      tokens.HashSecret(raw),
		GrantID:   g.ID,
		ClientID:  c.ID,
		Scopes:    scopes,
		CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.RefreshTTL),
	}, raw, nil
}

// idToken mints the OIDC id_token with the business claims of the Yoco guide.
// It is signed with the algorithm the client registered, if any.
func (s *Server) idToken(ctx context.Context, c *tokenstore.Client, g *tokenstore.Grant, nonce, accessToken string) (string, *Error) {
	u, err := s.store.GetUser(ctx, g.UserID)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return "", errInvalidGrant("the user no longer exists")
	case err != nil:
		return "", s.storeError("loading user for id_token", err)
	}
	bs, err := s.store.Memberships(ctx, u.ID)
	if err != nil {
		return "", s.storeError("loading memberships for id_token", err)
	}
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	raw, err := s.tokens.MintIDToken(tokens.IDToken{
		Subject:              u.ID,
		ClientID:             c.ID,
		Nonce:                nonce,
		UserID:               u.ID,
		Name:                 u.Name,
		Email:                u.Email,
		DefaultBusinessID:    u.CurrentBusiness,
		BusinessIDs:          ids,
		AuthorizedBusinessID: g.BusinessID,
		AuthTime:             g.AuthTime,
		AccessToken:          accessToken,
		Alg:                  c.IDTokenSignedResponseAlg,
	})
	if err != nil {
		return "", s.storeError("minting id_token", err)
	}
	return raw, nil
}

// validVerifier checks RFC 7636 §4.1: 43–128 characters of
// [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// pkceMatches checks S256: BASE64URL(SHA256(verifier)) == challenge.
func pkceMatches(challenge, verifier string) bool {
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// refreshTokenGrant is RFC 6749 §6 with rotation: every use returns a new
// refresh token, and presenting a spent one revokes the whole grant
// (RFC 9700 §4.14.2).
type refreshTokenGrant struct{ s *Server }

func (refreshTokenGrant) grantType() string { return "refresh_token" }

func (g refreshTokenGrant) handle(ctx context.Context, c *authenticatedClient, p params) (*tokenResponse, *Error) {
	s := g.s
	raw := p.get("refresh_token")
	if raw == "" {
		return nil, errInvalidRequest("refresh_token is required")
	}
	hash := tokens.HashSecret(raw)
	old, err := s.store.GetRefreshToken(ctx, hash)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, errInvalidGrant("refresh token is invalid or expired")
	case err != nil:
		return nil, s.storeError("loading refresh token", err)
	}
	if old.ClientID != c.ID {
		return nil, errInvalidGrant("refresh token was issued to another client")
	}
	if !old.UsedAt.IsZero() {
		return nil, s.refreshReused(ctx, old.GrantID)
	}
	// A bound refresh token without its key's proof is refused before
	// anything is spent: its thief cannot use it, nor burn it.
	nextJKT, e := refreshProofKey(ctx, c, old.JKT)
	if e != nil {
		return nil, e
	}
	grant, err := s.store.GetGrant(ctx, old.GrantID)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, errInvalidGrant("grant no longer exists")
	case err != nil:
		return nil, s.storeError("loading grant", err)
	}
	if !grant.RevokedAt.IsZero() {
		return nil, errInvalidGrant("grant was revoked")
	}
	if e := s.stillAdministers(ctx, grant); e != nil {
		return nil, e
	}
	// A refresh may narrow the scopes, never widen them (RFC 6749 §6);
	// so with the resources (RFC 8707 §2.2).
	scopes, e := requestedScopes(p.get("scope"), old.Scopes)
	if e != nil {
		return nil, e
	}
	resources, e := s.narrowResources(grant.Resources, p.resources())
	if e != nil {
		return nil, e
	}
	now := g.s.now()
	next, nextRaw, e := s.newRefreshToken(c, grant, old.Scopes, now)
	if e != nil {
		return nil, e
	}
	if next == nil {
		// offline_access is required and this grant lacks it: nothing may
		// replace the token, so it is not spent either.
		return nil, errUnauthorizedClient("the client may no longer refresh")
	}
	next.JKT = nextJKT
	// Everything the answer needs is made before the token is rotated, so
	// that an error answer leaves the old token unspent and the client's
	// retry succeeds instead of tripping the reuse rule.
	resp, e := s.mintAccess(tokens.Access{Subject: grant.UserID, User: true, ClientID: c.ID, GrantID: grant.ID, BusinessID: grant.BusinessID, Scopes: scopes, JKT: proofKey(ctx), Resources: resources})
	if e != nil {
		return nil, e
	}
	resp.RefreshToken = nextRaw
	if slices.Contains(scopes, "openid") && grant.UserID != "" {
		if resp.IDToken, e = s.idToken(ctx, c.Client, grant, "", resp.AccessToken); e != nil {
			return nil, e
		}
	}
	// One commit spends the old token and stores the next.
	if _, err := s.store.RotateRefreshToken(ctx, hash, next); err != nil {
		switch {
		case errors.Is(err, tokenstore.ErrReused):
			return nil, s.refreshReused(ctx, old.GrantID)
		case errors.Is(err, tokenstore.ErrNotFound):
			return nil, errInvalidGrant("refresh token is invalid or expired")
		}
		return nil, s.storeError("rotating refresh token", err)
	}
	return resp, nil
}

func (s *Server) refreshReused(ctx context.Context, grantID string) *Error {
	if err := s.tokens.RevokeGrant(ctx, grantID); err != nil {
		s.logError("revoking grant of a reused refresh token", err)
	}
	s.observeReuse("refresh_token")
	return errInvalidGrant("refresh token was already used; the grant is revoked")
}

// stillAdministers ends a user's grant once the user is gone or no longer
// administers the business it acts for: a refresh must not outlive the
// tenancy it was granted under.
func (s *Server) stillAdministers(ctx context.Context, g *tokenstore.Grant) *Error {
	if g.UserID == "" || g.BusinessID == "" {
		return nil
	}
	if d, ok := s.identity.(*delegatedIdentity); ok && d.cfg.BusinessesURL != "" {
		// The platform, not the mirror of its last session, decides; when
		// it cannot, nothing is granted (fail closed) and nothing spent.
		ids, err := d.businessesOf(ctx, g.UserID)
		if err != nil {
			s.log.Warn("refresh refused: the platform cannot say which businesses the user administers", zap.Error(err))
			return errUnavailable()
		}
		if slices.Contains(ids, g.BusinessID) {
			return nil
		}
	} else {
		bs, err := s.store.Memberships(ctx, g.UserID)
		if err != nil {
			return s.storeError("loading memberships", err)
		}
		if slices.ContainsFunc(bs, func(b *tokenstore.Business) bool { return b.ID == g.BusinessID }) {
			return nil
		}
	}
	if err := s.tokens.RevokeGrant(ctx, g.ID); err != nil {
		s.logError("revoking grant of a former administrator", err)
	}
	return errInvalidGrant("the user no longer administers the business of this grant")
}
