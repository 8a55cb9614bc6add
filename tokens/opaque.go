package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// Access-token formats (Config.AccessFormat).
//
// An opaque (reference) access token is Config.AccessPrefix followed by 256
// random bits in unpadded base64url, for platforms that do not hand JWTs to
// third parties. The minting node stores the SHA-256 of the token with the
// very claim set the JWT form would have signed (JSON), so every claim a
// JWT carries (aud, cnf, authorized_business_id …) carries over without a
// schema change, and checkClaims judges both formats alike. Verify finds
// an opaque token in the same verified-token cache as a JWT; only a miss
// reads the store (one primary-key lookup, from any node), and a store
// that cannot be read then refuses with ErrUnavailable. Revocation is the
// deny list's, as for JWTs: a revoked grant or client is refused on every
// node at once, cached or not.
const (
	FormatJWT    = "jwt"
	FormatOpaque = "opaque"
)

// opaqueBodyLen is the length of 256 bits in unpadded base64url (NewSecret).
const opaqueBodyLen = 43

// maxPrefixLen bounds a token prefix; the guides' are 4 to 8 characters.
const maxPrefixLen = 32

// maxOpaqueLookups bounds the store reads of opaque tokens one node has in
// flight, and opaqueLookupWait how long a cache miss waits for one of them.
// Anyone can send well-formed random tokens, each a miss that reads the
// store: unbounded, a flood of them would hold every connection of the
// pool (10 on PostgreSQL, 4 on SQLite by default) and starve the token
// endpoint and the change feed with it. Bounded, it costs the flood's own
// misses, and a genuine token not yet cached waits its turn or, past the
// wait, is a 503 (fail closed). Cached tokens never wait.
const (
	maxOpaqueLookups = 4
	opaqueLookupWait = time.Second
)

// CheckPrefix reports whether p can start a token oauthgate generates
// (opaque access tokens, refresh tokens): at most 32 letters, digits, '_'
// or '-', so that the token stays one RFC 6750 b64token without a '.'
// (which would make it look like a JWT). Empty means no prefix.
func CheckPrefix(p string) error {
	if len(p) > maxPrefixLen {
		return fmt.Errorf("token prefix %q: longer than %d characters", p, maxPrefixLen)
	}
	for i := 0; i < len(p); i++ {
		if v := b64url[p[i]]; v == b64Dot || v == b64Bad {
			return fmt.Errorf("token prefix %q: only letters, digits, '_' and '-' are allowed", p)
		}
	}
	return nil
}

// checkAccessFormat is CheckConfig's part for the access-token format.
func checkAccessFormat(format, prefix string) error {
	switch format {
	case "", FormatJWT:
		if prefix != "" {
			return errors.New("an access-token prefix needs the opaque access-token format (a JWT has no prefix)")
		}
	case FormatOpaque:
	default:
		return fmt.Errorf("access-token format %q: want %q or %q", format, FormatJWT, FormatOpaque)
	}
	return CheckPrefix(prefix)
}

// opaqueFormat reports whether this service mints, and accepts, opaque
// access tokens. JWTs are accepted in either format (those minted before a
// switch to opaque stay valid until they expire); opaque tokens only in the
// opaque format, so switching back to JWTs refuses them (401: the client
// refreshes or asks again).
func (s *Service) opaqueFormat() bool { return s.cfg.AccessFormat == FormatOpaque }

// isOpaque reports whether raw is to be judged as an opaque token: the
// opaque format is on and raw has no '.', which every JWT has.
func (s *Service) isOpaque(raw string) bool {
	return s.opaqueFormat() && strings.IndexByte(raw, '.') < 0
}

// LooksOpaque reports whether raw has the shape of this service's opaque
// access tokens (introspection tries such a token as an access token even
// when the client hinted at a refresh token).
func (s *Service) LooksOpaque(raw string) bool {
	_, ok := s.opaqueShape(raw)
	return ok && s.isOpaque(raw)
}

// accessShape is the syntax check before the cache: the opaque shape for a
// token without '.', when opaque tokens are on, else canonicalShape.
func (s *Service) accessShape(raw string) (reason, bool) {
	if s.isOpaque(raw) {
		return s.opaqueShape(raw)
	}
	return reasonMalformed, canonicalShape(raw)
}

// opaqueShape checks the one spelling of an opaque token: the configured
// prefix, then exactly 43 base64url characters whose last one leaves the 2
// unused bits clear (RFC 4648 §3.5). 43 table lookups, no allocation.
func (s *Service) opaqueShape(raw string) (reason, bool) {
	body, ok := strings.CutPrefix(raw, s.cfg.AccessPrefix)
	if !ok {
		return reasonWrongPrefix, false
	}
	if len(body) != opaqueBodyLen {
		return reasonMalformed, false
	}
	var or byte
	for i := 0; i < len(body); i++ {
		or |= b64url[body[i]]
	}
	if or&(b64Bad|b64Dot) != 0 || b64url[body[len(body)-1]]&0x03 != 0 {
		return reasonMalformed, false
	}
	return 0, true
}

// verifyOpaque looks an opaque token up by its hash and checks the stored
// claims as checkClaims checks a JWT's. It runs on a cache miss (and for
// Parse); concurrent misses of one token share one read. A failed read is
// ErrUnavailable, so the caller fails closed.
func (s *Service) verifyOpaque(raw string, now time.Time) (*Claims, error) {
	if r, ok := s.opaqueShape(raw); !ok {
		return nil, fail(r)
	}
	v, err, _ := s.lookups.Do(raw, func() (any, error) {
		if !s.acquireLookup() {
			return nil, errLookupBusy
		}
		defer func() { <-s.lookupSlots }()
		return s.store.GetAccessToken(s.life, HashSecret(raw))
	})
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, fail(reasonUnknownToken)
	case errors.Is(err, errLookupBusy):
		return nil, fail(reasonLookupBusy)
	case err != nil:
		return nil, fail(reasonLookupFailed)
	}
	return s.checkClaims(v.(*tokenstore.AccessToken).Claims, now)
}

// errLookupBusy: every lookup slot stayed taken for opaqueLookupWait.
var errLookupBusy = errors.New("opaque token lookups busy")

// acquireLookup takes one of maxOpaqueLookups slots, waiting at most
// opaqueLookupWait (or until the service stops).
func (s *Service) acquireLookup() bool {
	select {
	case s.lookupSlots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(opaqueLookupWait)
	defer t.Stop()
	select {
	case s.lookupSlots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-s.life.Done():
		return false
	}
}

// encodeAccess turns an access token's claims into the token: a JWS signed
// by k, or in the opaque format a new random reference, stored with the
// claims before it is returned. The stored row outlives exp by the skew
// Verify tolerates, and Prune deletes it then.
func (s *Service) encodeAccess(k *signingKey, claims any, grantID, clientID string, exp time.Time) (string, error) {
	if !s.opaqueFormat() {
		return sign(k, typAccess, claims)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	raw, err := NewSecret(s.cfg.AccessPrefix)
	if err != nil {
		return "", err
	}
	if err := s.store.CreateAccessToken(s.life, &tokenstore.AccessToken{
		Hash:      HashSecret(raw),
		GrantID:   grantID,
		ClientID:  clientID,
		Claims:    payload,
		CreatedAt: s.now(),
		ExpiresAt: exp.Add(skew),
	}); err != nil {
		return "", fmt.Errorf("storing opaque access token: %w", err)
	}
	return raw, nil
}
