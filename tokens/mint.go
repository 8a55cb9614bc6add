package tokens

import (
	"cmp"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Header typ values: RFC 9068 for access tokens, OIDC Core for id_tokens.
const (
	typAccess  = "at+jwt"
	typIDToken = "JWT"
)

// Access describes an access token to mint.
type Access struct {
	// Subject is the user id, or the client id for client credentials.
	Subject  string
	ClientID string
	// User marks a token issued for a signed-in user (authorization code
	// and its refreshes) rather than for the client itself; it becomes
	// the subject_type claim.
	User bool
	// GrantID is the grant the token belongs to; revoking it revokes the
	// token.
	GrantID string
	// BusinessID becomes authorized_business_id; omitted when empty.
	BusinessID string
	Scopes     []string
	// Resources are the RFC 8707 resources the token is for, in canonical
	// form; they become its aud. Empty: Config.Audience.
	Resources []string
	// TTL is the token's lifetime. Default: Config.AccessTTL.
	TTL time.Duration
	// JKT, when set, binds the token to a DPoP key (RFC 9449 §6.1): the
	// key's RFC 7638 thumbprint, in cnf.jkt.
	JKT string
}

// accessClaims is the RFC 9068 payload, in a fixed field order.
type accessClaims struct {
	Iss        string `json:"iss"`
	Sub        string `json:"sub"`
	Aud        any    `json:"aud"` // a string, or several in an array
	ClientID   string `json:"client_id"`
	Scope      string `json:"scope,omitempty"`
	Iat        int64  `json:"iat"`
	Exp        int64  `json:"exp"`
	Jti        string `json:"jti"`
	Gid        string `json:"gid"`
	BusinessID string `json:"authorized_business_id,omitempty"`
	// SubjectType is "user" or "client": who sub names.
	SubjectType string `json:"subject_type"`
	// Cnf is RFC 7800's confirmation claim: the DPoP key (RFC 9449 §6.1).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is the cnf claim of a DPoP-bound token.
type confirmation struct {
	JKT string `json:"jkt"`
}

// Values of the subject_type claim.
const (
	subjectUser   = "user"
	subjectClient = "client"
)

// MintAccess signs an access token with the active key (or, in the opaque
// format, stores its claims under a random reference: see encodeAccess) and
// returns it with its expiry.
func (s *Service) MintAccess(a Access) (string, time.Time, error) {
	if a.Subject == "" || a.ClientID == "" || a.GrantID == "" {
		return "", time.Time{}, errors.New("minting access token: subject, client id and grant id are required")
	}
	k := s.keys.Load().active
	if k == nil {
		return "", time.Time{}, errors.New("minting access token: no active signing key")
	}
	ttl := a.TTL
	if ttl <= 0 {
		ttl = s.cfg.AccessTTL
	}
	noteMax(&s.maxTTL, ttl)
	jti, err := newJTI()
	if err != nil {
		return "", time.Time{}, err
	}
	iat := s.now().Unix()
	// Client revocations deny tokens issued at or before their second; a
	// token minted in that same second, after the revocation, is dated one
	// second later (within the verifier's skew) so it is not denied too.
	if at, ok := s.deny.Load().clients[a.ClientID]; ok && iat <= at.at {
		iat = at.at + 1
	}
	exp := time.Unix(iat, 0).Add(ttl)
	c := accessClaims{
		Iss:         s.cfg.Issuer,
		Sub:         a.Subject,
		Aud:         s.mintAudience(a.Resources),
		ClientID:    a.ClientID,
		Scope:       strings.Join(a.Scopes, " "),
		Iat:         iat,
		Exp:         exp.Unix(),
		Jti:         jti,
		Gid:         a.GrantID,
		BusinessID:  a.BusinessID,
		SubjectType: subjectClient,
	}
	if a.User {
		c.SubjectType = subjectUser
	}
	if a.JKT != "" {
		c.Cnf = &confirmation{JKT: a.JKT}
	}
	raw, err := s.encodeAccess(k, c, a.GrantID, a.ClientID, exp)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("minting access token: %w", err)
	}
	s.m.mintedAccess.Inc()
	return raw, exp, nil
}

// noteMax raises v to ttl: the longest lifetimes signed are remembered so
// that revocations and key retention cover them.
func noteMax(v *atomic.Int64, ttl time.Duration) {
	for {
		cur := v.Load()
		if int64(ttl) <= cur || v.CompareAndSwap(cur, int64(ttl)) {
			return
		}
	}
}

// IDToken describes an OIDC id_token to mint.
type IDToken struct {
	Subject  string
	ClientID string
	// Nonce is echoed from the authorization request; omitted when empty.
	Nonce string
	// UserID defaults to Subject.
	UserID               string
	Name                 string
	Email                string
	DefaultBusinessID    string
	AuthorizedBusinessID string
	BusinessIDs          []string
	AuthTime             time.Time
	// AccessToken, when set, is bound to the id_token by at_hash.
	AccessToken string
	// Alg is the client's id_token_signed_response_alg: one of
	// IDTokenAlgs. Default: the configured signing algorithm.
	Alg string
}

type idClaims struct {
	Iss                  string   `json:"iss"`
	Sub                  string   `json:"sub"`
	Aud                  string   `json:"aud"`
	Azp                  string   `json:"azp"`
	Iat                  int64    `json:"iat"`
	Exp                  int64    `json:"exp"`
	AuthTime             int64    `json:"auth_time,omitempty"`
	Nonce                string   `json:"nonce,omitempty"`
	AtHash               string   `json:"at_hash,omitempty"`
	UserID               string   `json:"user_id,omitempty"`
	UserName             string   `json:"user_name,omitempty"`
	UserEmail            string   `json:"user_email,omitempty"`
	DefaultBusinessID    string   `json:"default_business_id,omitempty"`
	BusinessIDs          []string `json:"business_ids"`
	AuthorizedBusinessID string   `json:"authorized_business_id,omitempty"`
}

// MintIDToken signs an OIDC id_token for t.ClientID with the active key of
// t.Alg.
func (s *Service) MintIDToken(t IDToken) (string, error) {
	if t.Subject == "" || t.ClientID == "" {
		return "", errors.New("minting id_token: subject and client id are required")
	}
	ks := s.keys.Load()
	k := ks.active
	if t.Alg != "" {
		k = ks.signers[jwa.SignatureAlgorithm(t.Alg)]
	}
	if k == nil {
		return "", fmt.Errorf("minting id_token: no active %s signing key", cmp.Or(t.Alg, s.cfg.Alg))
	}
	now := s.now()
	c := idClaims{
		Iss:                  s.cfg.Issuer,
		Sub:                  t.Subject,
		Aud:                  t.ClientID,
		Azp:                  t.ClientID,
		Iat:                  now.Unix(),
		Exp:                  now.Add(s.cfg.IDTokenTTL).Unix(),
		Nonce:                t.Nonce,
		UserID:               t.UserID,
		UserName:             t.Name,
		UserEmail:            t.Email,
		DefaultBusinessID:    t.DefaultBusinessID,
		BusinessIDs:          t.BusinessIDs,
		AuthorizedBusinessID: t.AuthorizedBusinessID,
	}
	if c.UserID == "" {
		c.UserID = t.Subject
	}
	if c.BusinessIDs == nil {
		c.BusinessIDs = []string{}
	}
	if !t.AuthTime.IsZero() {
		c.AuthTime = t.AuthTime.Unix()
	}
	if t.AccessToken != "" {
		c.AtHash = atHash(k.alg, t.AccessToken)
	}
	raw, err := sign(k, typIDToken, c)
	if err != nil {
		return "", fmt.Errorf("minting id_token: %w", err)
	}
	s.m.mintedID.Inc()
	return raw, nil
}

// atHash is OIDC Core 3.1.3.6: the left half of the hash of the access
// token, with the hash of the signing algorithm (SHA-512 for Ed25519, as
// the OIDC errata specify for EdDSA).
func atHash(alg jwa.SignatureAlgorithm, accessToken string) string {
	var h hash.Hash
	if alg == jwa.EdDSA {
		h = sha512.New()
	} else {
		h = sha256.New()
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// sign serialises claims and signs them as a compact JWS with kid and typ.
func sign(k *signingKey, typ string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	h := jws.NewHeaders()
	if err := errors.Join(h.Set(jws.KeyIDKey, k.kid), h.Set(jws.TypeKey, typ)); err != nil {
		return "", err
	}
	out, err := jws.Sign(payload, jws.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", err
	}
	return string(out), nil
}
