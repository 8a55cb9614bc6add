package tokens

import (
	"encoding/json"
)

// IDTokenHint is what an id_token names when it comes back as the
// id_token_hint of OpenID Connect RP-Initiated Logout 1.0.
type IDTokenHint struct {
	// Subject is the user the id_token was issued about.
	Subject string
	// ClientID is the client it was issued to (its aud).
	ClientID string
}

// VerifyIDTokenHint checks that raw is an id_token this issuer signed with
// a key of the current set, and returns whom and for which client. Its
// lifetime is not checked: RP-Initiated Logout §2 lets an expired id_token
// serve as the hint, since it only identifies the session to end. Every
// failure matches ErrInvalidToken.
func (s *Service) VerifyIDTokenHint(raw string) (*IDTokenHint, error) {
	payload, err := s.verifyJWS(raw, func(t string) bool { return t == typIDToken })
	if err != nil {
		return nil, err
	}
	var c struct {
		Iss string       `json:"iss"`
		Sub string       `json:"sub"`
		Aud audience     `json:"aud"`
		Azp string       `json:"azp"`
		Iat *numericDate `json:"iat"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fail(reasonBadClaims)
	}
	if c.Iss != s.cfg.Issuer {
		return nil, fail(reasonWrongIssuer)
	}
	if c.Sub == "" || len(c.Aud) == 0 || c.Iat == nil {
		return nil, fail(reasonMissingClaim)
	}
	if int64(*c.Iat) > s.now().Add(skew).Unix() {
		return nil, fail(reasonIssuedInFuture)
	}
	client := c.Aud[0]
	if len(c.Aud) > 1 {
		// OIDC Core §2: with several audiences, azp names the client.
		if c.Azp == "" || !c.Aud.contains(c.Azp) {
			return nil, fail(reasonWrongAudience)
		}
		client = c.Azp
	}
	return &IDTokenHint{Subject: c.Sub, ClientID: client}, nil
}
