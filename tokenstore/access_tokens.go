package tokenstore

import (
	"context"
	"errors"
	"time"
)

// AccessToken is an opaque (reference) access token: the client holds a
// random string, the store its hash and the claims a JWT would carry.
type AccessToken struct {
	// Hash is SHA-256 of the token handed to the client.
	Hash     []byte
	GrantID  string
	ClientID string
	// Claims is the token's claim set as a JSON object, exactly the payload
	// the JWT form would sign, so every claim (aud, cnf …) carries over.
	Claims    []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AccessTokens stores opaque access tokens. Revocation does not touch them:
// the deny list refuses a revoked grant's or client's tokens of either
// format, and Prune removes them once expired.
type AccessTokens interface {
	// CreateAccessToken stores t (ErrConflict on a duplicate hash).
	CreateAccessToken(ctx context.Context, t *AccessToken) error
	// GetAccessToken returns the token, expired or not until pruned (the
	// caller judges its lifetime), or ErrNotFound.
	GetAccessToken(ctx context.Context, hash []byte) (*AccessToken, error)
}

const accessColumns = `hash, grant_id, client_id, claims, created_at, expires_at`

// CreateAccessToken stores t, filling a zero CreatedAt with now.
func (s *store) CreateAccessToken(ctx context.Context, t *AccessToken) error {
	const op = "creating access token"
	if len(t.Hash) == 0 {
		return errors.New(op + ": empty hash")
	}
	if len(t.Claims) == 0 {
		return errors.New(op + ": no claims")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.read().exec(ctx, `INSERT INTO access_tokens (`+accessColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		t.Hash, t.GrantID, t.ClientID, string(t.Claims), ms(t.CreatedAt), ms(t.ExpiresAt))
	return fail(op, err)
}

// GetAccessToken reads the token by hash: one primary-key lookup.
func (s *store) GetAccessToken(ctx context.Context, hash []byte) (*AccessToken, error) {
	const op = "getting access token"
	if len(hash) == 0 {
		return nil, fail(op, ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var t AccessToken
	var claims string
	var created, expires int64
	err := s.read().row(ctx, `SELECT `+accessColumns+` FROM access_tokens WHERE hash = ?`, hash).
		Scan(&t.Hash, &t.GrantID, &t.ClientID, &claims, &created, &expires)
	if err != nil {
		return nil, fail(op, err)
	}
	t.Claims = []byte(claims)
	t.CreatedAt, t.ExpiresAt = fromMs(created), fromMs(expires)
	return &t, nil
}
