package tokenstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

const keyColumns = `id, alg, private_jwk, created_at, retired_at`

func scanKey(r scanner) (*Key, error) {
	var k Key
	var jwk string
	var created int64
	var retired sql.NullInt64
	if err := r.Scan(&k.ID, &k.Alg, &jwk, &created, &retired); err != nil {
		return nil, err
	}
	k.PrivateJWK = []byte(jwk)
	k.CreatedAt, k.RetiredAt = fromMs(created), fromNullMs(retired)
	return &k, nil
}

func insertKey(ctx context.Context, t *tx, k *Key) error {
	if k.ID == "" {
		return errors.New("empty key id")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	_, err := t.exec(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?)`,
		k.ID, k.Alg, string(k.PrivateJWK), ms(k.CreatedAt), nullMs(k.RetiredAt))
	return err
}

// ListKeys returns every key, newest first.
func (s *store) ListKeys(ctx context.Context) ([]*Key, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.read().query(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at DESC, id DESC`)
	out, err := collect(rows, err, scanKey)
	if err != nil {
		return nil, fail("listing keys", err)
	}
	return out, nil
}

// AddKey stores k and retires, as of now, every other active key. A zero
// CreatedAt is filled with now.
func (s *store) AddKey(ctx context.Context, k *Key) error {
	return s.write(ctx, "adding key", func(ctx context.Context, t *tx) error {
		if err := t.d.acquire(ctx, t.tx, lockKeys); err != nil {
			return err
		}
		if err := insertKey(ctx, t, k); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND id <> ?`,
			ms(time.Now()), k.ID); err != nil {
			return err
		}
		return t.change(ctx, ChangeKeys, "")
	})
}

// DeleteKeysRetiredBefore removes keys retired before t; active keys stay.
func (s *store) DeleteKeysRetiredBefore(ctx context.Context, before time.Time) error {
	return s.write(ctx, "deleting retired keys", func(ctx context.Context, t *tx) error {
		n, err := t.execN(ctx, `DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?`, ms(before))
		if err != nil || n == 0 {
			return err
		}
		return t.change(ctx, ChangeKeys, "")
	})
}

// InitKey stores k when there is no active key (in particular, no key at
// all) and returns the active key. Callers are serialised, so nodes starting
// together all get the key the first of them stored.
func (s *store) InitKey(ctx context.Context, k *Key) (*Key, error) {
	var active *Key
	err := s.write(ctx, "initialising key", func(ctx context.Context, t *tx) error {
		if err := t.d.acquire(ctx, t.tx, lockKeys); err != nil {
			return err
		}
		var err error
		active, err = scanKey(t.row(ctx, `SELECT `+keyColumns+` FROM signing_keys
			WHERE retired_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1`))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if !k.RetiredAt.IsZero() {
			return errors.New("the initial key is retired")
		}
		if err := insertKey(ctx, t, k); err != nil {
			return err
		}
		cp := *k
		active = &cp
		return t.change(ctx, ChangeKeys, "")
	})
	if err != nil {
		return nil, err
	}
	return active, nil
}

// RotateKeys stores keys and retires every other active key, if due agrees
// with the active keys it finds under the key lock.
func (s *store) RotateKeys(ctx context.Context, keys []*Key, due func(active []*Key) bool) (bool, error) {
	if len(keys) == 0 {
		return false, errors.New("rotating keys: no key given")
	}
	var rotated bool
	err := s.write(ctx, "rotating keys", func(ctx context.Context, t *tx) error {
		rotated = false
		if err := t.d.acquire(ctx, t.tx, lockKeys); err != nil {
			return err
		}
		if due != nil {
			rows, err := t.query(ctx, `SELECT `+keyColumns+` FROM signing_keys
				WHERE retired_at IS NULL ORDER BY created_at DESC, id DESC`+t.d.forUpdate)
			active, err := collect(rows, err, scanKey)
			if err != nil {
				return err
			}
			if !due(active) {
				return nil
			}
		}
		ids := make([]any, 0, len(keys)+1)
		ids = append(ids, ms(time.Now()))
		for _, k := range keys {
			if !k.RetiredAt.IsZero() {
				return errors.New("a new key is retired")
			}
			if err := insertKey(ctx, t, k); err != nil {
				return err
			}
			ids = append(ids, k.ID)
		}
		in := strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")
		if _, err := t.exec(ctx, `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND id NOT IN (`+in+`)`, ids...); err != nil {
			return err
		}
		rotated = true
		return t.change(ctx, ChangeKeys, "")
	})
	if err != nil {
		return false, err
	}
	return rotated, nil
}
