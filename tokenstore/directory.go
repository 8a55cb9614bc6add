package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

const userColumns = `id, email, name, password_hash, current_business, created_at`

func scanUser(r scanner) (*User, error) {
	var u User
	var created int64
	if err := r.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.CurrentBusiness, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMs(created)
	return &u, nil
}

func scanBusiness(r scanner) (*Business, error) {
	var b Business
	var created int64
	if err := r.Scan(&b.ID, &b.Name, &created); err != nil {
		return nil, err
	}
	b.CreatedAt = fromMs(created)
	return &b, nil
}

// CreateUser stores u with its e-mail lower-cased (in u too), filling a zero
// CreatedAt with now.
func (s *store) CreateUser(ctx context.Context, u *User) error {
	const op = "creating user"
	if u.ID == "" || u.Email == "" {
		return errors.New(op + ": empty id or e-mail")
	}
	u.Email = strings.ToLower(u.Email)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.read().exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, u.PasswordHash, u.CurrentBusiness, ms(u.CreatedAt))
	return fail(op, err)
}

// GetUser returns the user or ErrNotFound.
func (s *store) GetUser(ctx context.Context, id string) (*User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := scanUser(s.read().row(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return nil, fail("getting user", err)
	}
	return u, nil
}

// GetUserByEmail looks the e-mail up case-insensitively.
func (s *store) GetUserByEmail(ctx context.Context, email string) (*User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := scanUser(s.read().row(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, strings.ToLower(email)))
	if err != nil {
		return nil, fail("getting user by e-mail", err)
	}
	return u, nil
}

// ListUsers returns every user ordered by e-mail.
func (s *store) ListUsers(ctx context.Context) ([]*User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.read().query(ctx, `SELECT `+userColumns+` FROM users ORDER BY email`)
	out, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, fail("listing users", err)
	}
	return out, nil
}

// UpdateUser replaces every field but ID and CreatedAt; the e-mail is
// lower-cased (in u too) and must stay unique.
func (s *store) UpdateUser(ctx context.Context, u *User) error {
	const op = "updating user"
	if u.Email == "" {
		return errors.New(op + ": empty e-mail")
	}
	u.Email = strings.ToLower(u.Email)
	return s.write(ctx, op, func(ctx context.Context, t *tx) error {
		n, err := t.execN(ctx, `UPDATE users SET email = ?, name = ?, password_hash = ?, current_business = ?
			WHERE id = ?`, u.Email, u.Name, u.PasswordHash, u.CurrentBusiness, u.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return t.change(ctx, ChangeUser, u.ID)
	})
}

// DeleteUser deletes the user with its memberships and consents. Grants are
// left for the caller to revoke.
func (s *store) DeleteUser(ctx context.Context, id string, until time.Time) ([]string, error) {
	var revoked []string
	err := s.write(ctx, "deleting user", func(ctx context.Context, t *tx) error {
		revoked = nil
		// The user row first: RedeemCode takes it before the code, so an
		// exchange for this user either committed already (and its grant
		// is revoked below) or finds the user gone.
		n, err := t.execN(ctx, `DELETE FROM users WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		// Memberships go by ON DELETE CASCADE.
		for _, q := range []string{
			`DELETE FROM codes WHERE user_id = ?`,
			`DELETE FROM consents WHERE user_id = ?`,
		} {
			if _, err := t.exec(ctx, q, id); err != nil {
				return err
			}
		}
		rows, err := t.query(ctx, `SELECT id FROM grants WHERE user_id = ? AND revoked_at IS NULL ORDER BY id`, id)
		ids, err := collect(rows, err, func(r scanner) (string, error) {
			var g string
			return g, r.Scan(&g)
		})
		if err != nil {
			return err
		}
		now := time.Now()
		for _, g := range ids {
			if err := revokeGrant(ctx, t, g, now, until); err != nil {
				return err
			}
		}
		revoked = ids
		return t.change(ctx, ChangeUser, id)
	})
	if err != nil {
		return nil, err
	}
	return revoked, nil
}

// UpsertBusiness creates b or renames it; the creation time of an existing
// business is kept. A zero CreatedAt is filled with now.
func (s *store) UpsertBusiness(ctx context.Context, b *Business) error {
	const op = "saving business"
	if b.ID == "" {
		return errors.New(op + ": empty id")
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = time.Now()
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.read().exec(ctx, `INSERT INTO businesses (id, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name`, b.ID, b.Name, ms(b.CreatedAt))
	return fail(op, err)
}

// CreateBusiness stores a new business, filling a zero CreatedAt with now:
// ErrConflict when the id is taken.
func (s *store) CreateBusiness(ctx context.Context, b *Business) error {
	const op = "creating business"
	if b.ID == "" {
		return errors.New(op + ": empty id")
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = time.Now()
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.read().exec(ctx, `INSERT INTO businesses (id, name, created_at) VALUES (?, ?, ?)`, b.ID, b.Name, ms(b.CreatedAt))
	return fail(op, err)
}

// GetBusiness returns the business or ErrNotFound.
func (s *store) GetBusiness(ctx context.Context, id string) (*Business, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	b, err := scanBusiness(s.read().row(ctx, `SELECT id, name, created_at FROM businesses WHERE id = ?`, id))
	if err != nil {
		return nil, fail("getting business", err)
	}
	return b, nil
}

// ListBusinesses returns every business ordered by ID.
func (s *store) ListBusinesses(ctx context.Context) ([]*Business, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.read().query(ctx, `SELECT id, name, created_at FROM businesses ORDER BY id`)
	out, err := collect(rows, err, scanBusiness)
	if err != nil {
		return nil, fail("listing businesses", err)
	}
	return out, nil
}

// SetMemberships replaces the user's businesses. The user and every
// business must exist (ErrNotFound otherwise); duplicates are ignored.
func (s *store) SetMemberships(ctx context.Context, userID string, businessIDs []string) error {
	ids := slices.Clone(businessIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	return s.write(ctx, "setting memberships", func(ctx context.Context, t *tx) error {
		// Locking the user row serializes replacements for one user (nodes
		// starting together each set the configured user's): without it
		// both delete nothing, then both insert, and one conflicts.
		var one int
		if err := t.row(ctx, `SELECT 1 FROM users WHERE id = ?`+t.d.forUpdate, userID).Scan(&one); err != nil {
			return fmt.Errorf("user: %w", classify(err))
		}
		if _, err := t.exec(ctx, `DELETE FROM memberships WHERE user_id = ?`, userID); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := t.exec(ctx, `INSERT INTO memberships (user_id, business_id) VALUES (?, ?)`,
				userID, id); err != nil {
				if isForeignKeyViolation(err) {
					return fmt.Errorf("business: %w", ErrNotFound)
				}
				return err
			}
		}
		return t.change(ctx, ChangeUser, userID)
	})
}

// Memberships lists the businesses the user administers, ordered by ID; an
// unknown user has none.
func (s *store) Memberships(ctx context.Context, userID string) ([]*Business, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.read().query(ctx, `SELECT b.id, b.name, b.created_at
		FROM memberships m JOIN businesses b ON b.id = m.business_id
		WHERE m.user_id = ? ORDER BY b.id`, userID)
	out, err := collect(rows, err, scanBusiness)
	if err != nil {
		return nil, fail("listing memberships", err)
	}
	return out, nil
}
