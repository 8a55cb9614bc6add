package tokenstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

const grantColumns = `id, client_id, user_id, business_id, scopes, auth_time, created_at, expires_at, revoked_at, refreshed_at, resources`

func scanGrant(r scanner) (*Grant, error) {
	var g Grant
	var authTime, created, expires int64
	var revoked, refreshed sql.NullInt64
	if err := r.Scan(&g.ID, &g.ClientID, &g.UserID, &g.BusinessID, (*strList)(&g.Scopes),
		&authTime, &created, &expires, &revoked, &refreshed, (*strList)(&g.Resources)); err != nil {
		return nil, err
	}
	g.AuthTime, g.CreatedAt, g.ExpiresAt = fromMs(authTime), fromMs(created), fromMs(expires)
	g.RevokedAt, g.RefreshedAt = fromNullMs(revoked), fromNullMs(refreshed)
	return &g, nil
}

const refreshColumns = `hash, grant_id, client_id, scopes, created_at, expires_at, used_at, jkt`

func scanRefresh(r scanner) (*RefreshToken, error) {
	var t RefreshToken
	var created, expires int64
	var used sql.NullInt64
	if err := r.Scan(&t.Hash, &t.GrantID, &t.ClientID, (*strList)(&t.Scopes), &created, &expires, &used, &t.JKT); err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMs(created), fromMs(expires), fromNullMs(used)
	return &t, nil
}

func insertRefresh(ctx context.Context, t *tx, rt *RefreshToken) error {
	if len(rt.Hash) == 0 {
		return errors.New("empty refresh token hash")
	}
	if rt.CreatedAt.IsZero() {
		rt.CreatedAt = time.Now()
	}
	_, err := t.exec(ctx, `INSERT INTO refresh_tokens (`+refreshColumns+`) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)`,
		rt.Hash, rt.GrantID, rt.ClientID, list(rt.Scopes), ms(rt.CreatedAt), ms(rt.ExpiresAt), rt.JKT)
	return err
}

// CreateGrant stores g and rt, filling zero CreatedAt with now and an empty
// rt.GrantID with g.ID.
func (s *store) CreateGrant(ctx context.Context, g *Grant, rt *RefreshToken) error {
	const op = "creating grant"
	if g.ID == "" {
		return errors.New(op + ": empty id")
	}
	if rt != nil {
		if rt.GrantID == "" {
			rt.GrantID = g.ID
		}
		if rt.GrantID != g.ID {
			return errors.New(op + ": refresh token belongs to another grant")
		}
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = time.Now()
	}
	return s.write(ctx, op, func(ctx context.Context, t *tx) error {
		return insertGrant(ctx, t, g, rt)
	})
}

// insertGrant stores g and, when rt is not nil, its first refresh token in
// t, refusing a grant id already revoked.
func insertGrant(ctx context.Context, t *tx, g *Grant, rt *RefreshToken) error {
	if err := t.d.acquire(ctx, t.tx, grantLock(g.ID)); err != nil {
		return err
	}
	var one int
	switch err := t.row(ctx, `SELECT 1 FROM revocations WHERE kind = ? AND id = ?`, RevokeGrant, g.ID).Scan(&one); {
	case err == nil:
		return ErrRevoked
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO grants (`+grantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.ClientID, g.UserID, g.BusinessID, list(g.Scopes), ms(g.AuthTime), ms(g.CreatedAt),
		ms(g.ExpiresAt), nullMs(g.RevokedAt), nullMs(g.RefreshedAt), list(g.Resources)); err != nil {
		return err
	}
	if rt == nil {
		return nil
	}
	return insertRefresh(ctx, t, rt)
}

// GetGrant returns the grant, revoked or expired ones included (the caller
// judges), or ErrNotFound.
func (s *store) GetGrant(ctx context.Context, id string) (*Grant, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	g, err := scanGrant(s.read().row(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	if err != nil {
		return nil, fail("getting grant", err)
	}
	return g, nil
}

// ListGrants returns the grants of a client, of a user, or of both, newest
// first; an empty argument does not filter.
func (s *store) ListGrants(ctx context.Context, clientID, userID string) ([]*Grant, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	q := `SELECT ` + grantColumns + ` FROM grants WHERE 1 = 1`
	var args []any
	if clientID != "" {
		q += ` AND client_id = ?`
		args = append(args, clientID)
	}
	if userID != "" {
		q += ` AND user_id = ?`
		args = append(args, userID)
	}
	rows, err := s.read().query(ctx, q+` ORDER BY created_at DESC, id`, args...)
	out, err := collect(rows, err, scanGrant)
	if err != nil {
		return nil, fail("listing grants", err)
	}
	return out, nil
}

// ListLiveGrants returns the user's grants (of clientID only, when not
// empty) neither revoked nor expired at now, newest first. A grant stored
// without an expiry counts as live.
func (s *store) ListLiveGrants(ctx context.Context, userID, clientID string, now time.Time) ([]*Grant, error) {
	const op = "listing live grants"
	if userID == "" {
		return nil, errors.New(op + ": empty user id")
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	q := `SELECT ` + grantColumns + ` FROM grants WHERE user_id = ? AND revoked_at IS NULL AND (expires_at = 0 OR expires_at > ?)`
	args := []any{userID, ms(now)}
	if clientID != "" {
		q += ` AND client_id = ?`
		args = append(args, clientID)
	}
	rows, err := s.read().query(ctx, q+` ORDER BY created_at DESC, id`, args...)
	out, err := collect(rows, err, scanGrant)
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// RevokeGrant revokes the grant row (if any), deletes its refresh tokens,
// forgets the consent it was issued under and records the revocation and its
// change, in one transaction.
func (s *store) RevokeGrant(ctx context.Context, id string, until time.Time) error {
	const op = "revoking grant"
	if id == "" {
		return errors.New(op + ": empty id")
	}
	now := time.Now()
	return s.write(ctx, op, func(ctx context.Context, t *tx) error {
		return revokeGrant(ctx, t, id, now, until)
	})
}

// revokeGrant revokes the grant in t: its row, its refresh tokens, the
// remembered consent of its user to its client for its business, and a
// revocation with its change.
//
// Consent ends with the grant: whichever way a live grant ends (the client
// revoking a token, an operator, a replayed code or refresh token, the user
// disconnecting the app), the next authorization request asks again. Only
// the revocation that ends a live grant forgets the consent, so revoking an
// already revoked grant again leaves a consent given since alone.
func revokeGrant(ctx context.Context, t *tx, id string, now, until time.Time) error {
	if err := t.d.acquire(ctx, t.tx, grantLock(id)); err != nil {
		return err
	}
	// Updating the grant row first waits for a concurrent rotation of
	// one of its tokens (which locks that row), so that the DELETE below
	// sees the token that rotation inserted.
	var userID, clientID, businessID string
	switch err := t.row(ctx, `UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL
		RETURNING user_id, client_id, business_id`, ms(now), id).Scan(&userID, &clientID, &businessID); {
	case errors.Is(err, sql.ErrNoRows):
		// No grant row, or revoked before.
	case err != nil:
		return err
	case userID != "":
		if _, err := t.exec(ctx, `DELETE FROM consents WHERE user_id = ? AND client_id = ? AND business_id = ?`,
			userID, clientID, businessID); err != nil {
			return err
		}
	}
	if _, err := t.exec(ctx, `DELETE FROM refresh_tokens WHERE grant_id = ?`, id); err != nil {
		return err
	}
	return addRevocation(ctx, t, &Revocation{Kind: RevokeGrant, ID: id, CreatedAt: now, ExpiresAt: until})
}

// GetRefreshToken returns an unexpired token, used or not, or ErrNotFound.
func (s *store) GetRefreshToken(ctx context.Context, hash []byte) (*RefreshToken, error) {
	const op = "getting refresh token"
	if len(hash) == 0 {
		return nil, fail(op, ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rt, err := scanRefresh(s.read().row(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens
		WHERE hash = ? AND expires_at > ?`, hash, ms(time.Now())))
	if err != nil {
		return nil, fail(op, err)
	}
	return rt, nil
}

// RotateRefreshToken marks the old token used and stores next in one
// transaction, and returns the old token. An empty next.GrantID or ClientID
// is filled from the old token; a different grant is refused. As with codes,
// a used token is ErrReused until Prune removes it, even once expired.
func (s *store) RotateRefreshToken(ctx context.Context, oldHash []byte, next *RefreshToken) (*RefreshToken, error) {
	const op = "rotating refresh token"
	if len(oldHash) == 0 {
		return nil, fail(op, ErrNotFound)
	}
	if next == nil {
		return nil, errors.New(op + ": no next token")
	}
	var old *RefreshToken
	var reused bool
	err := s.write(ctx, op, func(ctx context.Context, t *tx) error {
		now := time.Now()
		var err error
		old, err = scanRefresh(t.row(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = ?`, oldHash))
		if err != nil {
			return err
		}
		if !old.UsedAt.IsZero() {
			reused = true
			return ErrReused
		}
		if !old.ExpiresAt.After(now) {
			return ErrNotFound
		}
		if next.GrantID == "" {
			next.GrantID = old.GrantID
		}
		if next.ClientID == "" {
			next.ClientID = old.ClientID
		}
		if next.GrantID != old.GrantID {
			return errors.New("next refresh token belongs to another grant")
		}
		// Lock the grant row, which RevokeGrant updates first, so that a
		// revocation either precedes this rotation (and the old token is
		// gone) or follows it (and deletes the next token too).
		var one int
		if err := t.row(ctx, `SELECT 1 FROM grants WHERE id = ? AND revoked_at IS NULL`+t.d.forUpdate,
			old.GrantID).Scan(&one); err != nil {
			return err // ErrNoRows: revoked meanwhile
		}
		// The arbiter: of concurrent rotations exactly one sees used_at NULL.
		n, err := t.execN(ctx, `UPDATE refresh_tokens SET used_at = ?
			WHERE hash = ? AND used_at IS NULL AND expires_at > ?`, ms(now), oldHash, ms(now))
		if err != nil {
			return err
		}
		if n == 0 {
			old, err = scanRefresh(t.row(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = ?`, oldHash))
			if err != nil {
				return err
			}
			if !old.UsedAt.IsZero() {
				reused = true
				return ErrReused
			}
			return ErrNotFound
		}
		old.UsedAt = fromMs(ms(now))
		// The grant row is locked above already: recording the refresh,
		// and the later expiry the next token gives the grant, costs no
		// extra wait.
		if _, err := t.exec(ctx, `UPDATE grants SET refreshed_at = ?,
			expires_at = CASE WHEN expires_at < ? THEN ? ELSE expires_at END WHERE id = ?`,
			ms(now), ms(next.ExpiresAt), ms(next.ExpiresAt), old.GrantID); err != nil {
			return err
		}
		return insertRefresh(ctx, t, next)
	})
	if err != nil {
		if reused {
			return old, err
		}
		return nil, err
	}
	return old, nil
}
