package tokenstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs portable queries on a pool or a transaction.
type conn struct {
	q querier
	d dialect
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.d.rebind(query), args...)
}

// execN runs a statement and reports how many rows it touched.
func (c conn) execN(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.d.rebind(query), args...)
}

func (c conn) row(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.d.rebind(query), args...)
}

// tx is a write transaction that knows whether it recorded a change.
type tx struct {
	conn
	tx      *sql.Tx
	changed bool
}

// change appends to the change feed in the same transaction as the mutation
// it announces, so that no committed mutation goes unannounced.
func (t *tx) change(ctx context.Context, kind, key string) error {
	// Without this lock, PostgreSQL could commit seq 8 before seq 7, and a
	// reader that saw 8 would skip 7 for ever.
	if err := t.d.acquire(ctx, t.tx, lockFeed); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO changes (kind, item, created_at) VALUES (?, ?, ?)`,
		kind, key, ms(time.Now())); err != nil {
		return err
	}
	if t.d.notify != "" {
		if _, err := t.exec(ctx, t.d.notify); err != nil {
			return err
		}
	}
	t.changed = true
	return nil
}

// read runs a query outside any transaction.
func (s *store) read() conn { return conn{q: s.db, d: s.d} }

// write runs fn in one transaction under the statement timeout and signals
// Wakeup once it has committed a change.
func (s *store) write(ctx context.Context, op string, fn func(ctx context.Context, t *tx) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(op, err)
	}
	t := &tx{conn: conn{q: sqlTx, d: s.d}, tx: sqlTx}
	if err := fn(ctx, t); err != nil {
		_ = sqlTx.Rollback()
		return fail(op, err)
	}
	if err := sqlTx.Commit(); err != nil {
		return fail(op, err)
	}
	if t.changed {
		s.wake()
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// collect scans every row with scan.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Times are stored as unix milliseconds; the zero time is 0 (or NULL where a
// zero time means "not yet").
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func nullMs(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func fromNullMs(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMs(v.Int64)
}

// Lists are stored as JSON arrays in TEXT columns: written as list(v),
// scanned into (*strList)(&v).
func list(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v) // strings always marshal
	return string(b)
}

// strList scans a stored list.
type strList []string

// Scan implements sql.Scanner; an empty list scans as nil.
func (l *strList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("decoding stored list: unexpected %T", src)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("decoding stored list: %w", err)
	}
	if len(out) == 0 {
		out = nil
	}
	*l = out
	return nil
}

// Booleans are stored as INTEGER 0 or 1.
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// blob keeps an empty hash NULL on every engine.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
