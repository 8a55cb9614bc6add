package tokenstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

const codeColumns = `hash, grant_id, client_id, redirect_uri, user_id, business_id, scopes, nonce,
	code_challenge, code_challenge_method, auth_time, created_at, expires_at, used_at, resources`

func scanCode(r scanner) (*AuthCode, error) {
	var c AuthCode
	var authTime, created, expires int64
	var used sql.NullInt64
	if err := r.Scan(&c.Hash, &c.GrantID, &c.ClientID, &c.RedirectURI, &c.UserID, &c.BusinessID,
		(*strList)(&c.Scopes), &c.Nonce, &c.CodeChallenge, &c.CodeChallengeMethod,
		&authTime, &created, &expires, &used, (*strList)(&c.Resources)); err != nil {
		return nil, err
	}
	c.AuthTime, c.CreatedAt, c.ExpiresAt = fromMs(authTime), fromMs(created), fromMs(expires)
	c.UsedAt = fromNullMs(used)
	return &c, nil
}

// CreateCode stores c, filling a zero CreatedAt with now. A code is minted
// unused: UsedAt is not stored.
func (s *store) CreateCode(ctx context.Context, c *AuthCode) error {
	const op = "creating code"
	if len(c.Hash) == 0 {
		return errors.New(op + ": empty hash")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.read().exec(ctx, `INSERT INTO codes (`+codeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)`,
		c.Hash, c.GrantID, c.ClientID, c.RedirectURI, c.UserID, c.BusinessID, list(c.Scopes), c.Nonce,
		c.CodeChallenge, c.CodeChallengeMethod, ms(c.AuthTime), ms(c.CreatedAt), ms(c.ExpiresAt), list(c.Resources))
	return fail(op, err)
}

// ConsumeCode marks the code used. The single conditional UPDATE is the
// arbiter between concurrent callers: the database lets exactly one of them
// see used_at still NULL. A used code is reported as ErrReused even once
// expired (until Prune removes it), so that its replay still revokes what
// it issued.
func (s *store) ConsumeCode(ctx context.Context, hash []byte) (*AuthCode, error) {
	const op = "consuming code"
	if len(hash) == 0 {
		return nil, fail(op, ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := ms(time.Now())
	c, err := scanCode(s.read().row(ctx, `UPDATE codes SET used_at = ?
		WHERE hash = ? AND used_at IS NULL AND expires_at > ?
		RETURNING `+codeColumns, now, hash, now))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fail(op, err)
	}
	// Lost, used before, expired or unknown: which one?
	c, err = scanCode(s.read().row(ctx, `SELECT `+codeColumns+` FROM codes WHERE hash = ?`, hash))
	if err != nil {
		return nil, fail(op, err)
	}
	if !c.UsedAt.IsZero() {
		return c, fail(op, ErrReused)
	}
	return nil, fail(op, ErrNotFound)
}

// GetCode returns the code without spending it: unused and unexpired, or
// used (UsedAt set, even once expired, until Prune removes it, so that a
// replay is still caught). Anything else is ErrNotFound.
func (s *store) GetCode(ctx context.Context, hash []byte) (*AuthCode, error) {
	const op = "getting code"
	if len(hash) == 0 {
		return nil, fail(op, ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c, err := scanCode(s.read().row(ctx, `SELECT `+codeColumns+` FROM codes WHERE hash = ?`, hash))
	if err != nil {
		return nil, fail(op, err)
	}
	if c.UsedAt.IsZero() && !c.ExpiresAt.After(time.Now()) {
		return nil, fail(op, ErrNotFound)
	}
	return c, nil
}

// RedeemCode spends the code and stores the grant it was minted for, with
// its first refresh token, in one transaction: either the code is spent and
// its grant exists, or neither. The conditional UPDATE is the arbiter, as
// in ConsumeCode; a concurrent caller waits for the winner's commit and then
// sees the code used (ErrReused, with the code).
func (s *store) RedeemCode(ctx context.Context, hash []byte, g *Grant, rt *RefreshToken) (*AuthCode, error) {
	const op = "redeeming code"
	if len(hash) == 0 {
		return nil, fail(op, ErrNotFound)
	}
	if g == nil || g.ID == "" {
		return nil, errors.New(op + ": no grant")
	}
	if rt != nil {
		if rt.GrantID == "" {
			rt.GrantID = g.ID
		}
		if rt.GrantID != g.ID {
			return nil, errors.New(op + ": refresh token belongs to another grant")
		}
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = time.Now()
	}
	var c *AuthCode
	var reused bool
	err := s.write(ctx, op, func(ctx context.Context, t *tx) error {
		// The user row before the code, in DeleteUser's order: a deletion
		// either committed (the user and the code are gone) or waits for
		// this commit and then revokes the grant it stores.
		if g.UserID != "" {
			var one int
			if err := t.row(ctx, `SELECT 1 FROM users WHERE id = ?`+t.d.forShare, g.UserID).Scan(&one); err != nil {
				return err // ErrNoRows: the user is gone
			}
		}
		now := ms(time.Now())
		var err error
		c, err = scanCode(t.row(ctx, `UPDATE codes SET used_at = ?
			WHERE hash = ? AND used_at IS NULL AND expires_at > ?
			RETURNING `+codeColumns, now, hash, now))
		if errors.Is(err, sql.ErrNoRows) {
			// Used before, by a racing winner, expired or unknown.
			c, err = scanCode(t.row(ctx, `SELECT `+codeColumns+` FROM codes WHERE hash = ?`, hash))
			if err != nil {
				return err
			}
			if !c.UsedAt.IsZero() {
				reused = true
				return ErrReused
			}
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if c.GrantID != g.ID || c.ClientID != g.ClientID || c.UserID != g.UserID {
			return errors.New("the grant is not the one the code was minted for")
		}
		return insertGrant(ctx, t, g, rt)
	})
	if err != nil {
		if reused {
			return c, err
		}
		return nil, err
	}
	return c, nil
}
