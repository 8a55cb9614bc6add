package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Internal tokens are short-lived JWTs oauthgate signs for itself and reads
// back itself: the browser's sign-in session and the pending authorization
// request the consent form carries. They need no server-side table, so any
// node of a cluster can read what another signed.
//
// Their typ must start with "oauthgate-", so they can never pass for an
// access token (Verify requires at+jwt) or an id_token (typ JWT), and an
// access token or id_token never passes VerifyInternal.

// internalPrefix starts the typ of every internal token.
const internalPrefix = "oauthgate-"

// internalClaims wraps the caller's data with issuer and lifetime.
type internalClaims struct {
	Iss  string          `json:"iss"`
	Typ  string          `json:"typ"`
	Iat  int64           `json:"iat"`
	Exp  int64           `json:"exp"`
	Data json.RawMessage `json:"dat"`
}

// SignInternal signs data as an internal token of type typ that expires
// after ttl, and returns it with its expiry.
func (s *Service) SignInternal(typ string, ttl time.Duration, data any) (string, time.Time, error) {
	if !strings.HasPrefix(typ, internalPrefix) || ttl <= 0 {
		return "", time.Time{}, fmt.Errorf("signing internal token: typ %q must start with %q and ttl be positive", typ, internalPrefix)
	}
	k := s.keys.Load().active
	if k == nil {
		return "", time.Time{}, errors.New("signing internal token: no active signing key")
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing internal token: %w", err)
	}
	noteMax(&s.internalTTL, ttl) // retired keys must outlive these too
	now := s.now()
	exp := now.Add(ttl)
	out, err := sign(k, typ, internalClaims{Iss: s.cfg.Issuer, Typ: typ, Iat: now.Unix(), Exp: exp.Unix(), Data: raw})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing internal token: %w", err)
	}
	return out, time.Unix(exp.Unix(), 0), nil
}

// VerifyInternal checks that raw is an unexpired internal token of type typ
// signed by a key of the current set, and decodes its data into out. Every
// failure matches ErrInvalidToken.
func (s *Service) VerifyInternal(raw, typ string, out any) error {
	if !strings.HasPrefix(typ, internalPrefix) {
		return fail(reasonWrongTyp)
	}
	payload, err := s.verifyJWS(raw, func(t string) bool { return t == typ })
	if err != nil {
		return err
	}
	var c internalClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return fail(reasonBadClaims)
	}
	if c.Iss != s.cfg.Issuer {
		return fail(reasonWrongIssuer)
	}
	if c.Typ != typ {
		return fail(reasonWrongTyp)
	}
	now := s.now().Unix()
	if now >= c.Exp {
		return fail(reasonExpired)
	}
	if c.Iat > now+int64(skew/time.Second) {
		return fail(reasonIssuedInFuture)
	}
	if err := json.Unmarshal(c.Data, out); err != nil {
		return fail(reasonBadClaims)
	}
	return nil
}
