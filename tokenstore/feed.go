package tokenstore

import (
	"context"
	"fmt"
	"time"
)

// ChangeRetention is how long Prune keeps changes: a node whose last seen
// change has been pruned cannot tell what it missed and must reload
// everything it caches. The newest change is always kept, so LastChange never
// goes back.
const ChangeRetention = time.Hour

// DefaultChangesLimit is the page size of ChangesSince when limit <= 0.
const DefaultChangesLimit = 1000

// ActiveRevocations lists revocations unexpired at now, oldest first.
func (s *store) ActiveRevocations(ctx context.Context, now time.Time) ([]*Revocation, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.read().query(ctx, `SELECT kind, id, created_at, expires_at FROM revocations
		WHERE expires_at > ? ORDER BY created_at, kind, id`, ms(now))
	out, err := collect(rows, err, func(r scanner) (*Revocation, error) {
		var v Revocation
		var created, expires int64
		if err := r.Scan(&v.Kind, &v.ID, &created, &expires); err != nil {
			return nil, err
		}
		v.CreatedAt, v.ExpiresAt = fromMs(created), fromMs(expires)
		return &v, nil
	})
	if err != nil {
		return nil, fail("listing revocations", err)
	}
	return out, nil
}

// AddRevocation records r and its change. Recording the same Kind and ID
// again keeps the later ExpiresAt and the later CreatedAt (a client revoked
// twice denies every token issued up to the second time). A zero CreatedAt
// is filled with now.
func (s *store) AddRevocation(ctx context.Context, r *Revocation) error {
	const op = "adding revocation"
	if r.Kind != RevokeGrant && r.Kind != RevokeClient {
		return fmt.Errorf("%s: unknown kind %q", op, r.Kind)
	}
	if r.ID == "" {
		return fmt.Errorf("%s: empty id", op)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	return s.write(ctx, op, func(ctx context.Context, t *tx) error {
		return addRevocation(ctx, t, r)
	})
}

func addRevocation(ctx context.Context, t *tx, r *Revocation) error {
	if _, err := t.exec(ctx, `INSERT INTO revocations (kind, id, created_at, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET
		created_at = CASE WHEN excluded.created_at > revocations.created_at
			THEN excluded.created_at ELSE revocations.created_at END,
		expires_at = CASE WHEN excluded.expires_at > revocations.expires_at
			THEN excluded.expires_at ELSE revocations.expires_at END`,
		r.Kind, r.ID, ms(r.CreatedAt), ms(r.ExpiresAt)); err != nil {
		return err
	}
	return t.change(ctx, ChangeRevocation, r.Kind+":"+r.ID)
}

// LastChange returns the newest change's Seq, where a node that has just
// loaded its caches starts following the feed.
func (s *store) LastChange(ctx context.Context) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var seq int64
	if err := s.read().row(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return 0, fail("reading last change", err)
	}
	return seq, nil
}

// ChangesSince returns up to limit (DefaultChangesLimit when limit <= 0)
// changes after seq, oldest first. Seqs are increasing but may have gaps;
// changes become visible in Seq order, so a reader that has seen N has seen
// everything before N.
func (s *store) ChangesSince(ctx context.Context, seq int64, limit int) ([]Change, error) {
	if limit <= 0 {
		limit = DefaultChangesLimit
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.read().query(ctx, `SELECT seq, kind, item FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`,
		seq, limit)
	out, err := collect(rows, err, func(r scanner) (Change, error) {
		var c Change
		err := r.Scan(&c.Seq, &c.Kind, &c.Key)
		return c, err
	})
	if err != nil {
		return nil, fail("reading changes", err)
	}
	return out, nil
}

// Wakeup is signalled after every local commit that recorded a change and,
// on PostgreSQL, on every notification from any node and after every
// reconnection of the listener (changes may have been missed meanwhile).
func (s *store) Wakeup() <-chan struct{} { return s.wakeup }

// Prune deletes codes, refresh and opaque access tokens, revocations and
// failure records expired at now, and changes older than ChangeRetention
// before now but the newest. Used codes and tokens are kept until they expire so that their
// replay is detected.
func (s *store) Prune(ctx context.Context, now time.Time) error {
	return s.write(ctx, "pruning", func(ctx context.Context, t *tx) error {
		for _, q := range []string{
			`DELETE FROM codes WHERE expires_at <= ?`,
			`DELETE FROM refresh_tokens WHERE expires_at <= ?`,
			`DELETE FROM access_tokens WHERE expires_at <= ?`,
			`DELETE FROM revocations WHERE expires_at <= ?`,
			`DELETE FROM auth_failures WHERE expires_at <= ?`,
		} {
			if _, err := t.exec(ctx, q, ms(now)); err != nil {
				return err
			}
		}
		_, err := t.exec(ctx, `DELETE FROM changes WHERE created_at < ?
			AND seq < (SELECT MAX(seq) FROM changes)`, ms(now.Add(-ChangeRetention)))
		return err
	})
}
