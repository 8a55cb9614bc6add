package tokenstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrations are append-only: NNNN_name.sql, applied in order, each exactly
// once per database. Never edit one that has shipped; add the next.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded migrations in version order.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and _", base)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && out[len(out)-1].version == v {
			return nil, fmt.Errorf("migration %s: version %d used twice", base, v)
		}
		out = append(out, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// statements splits a migration into statements: each ends with a semicolon
// at the end of a line. Comment lines are dropped.
func statements(script string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.Lines(script) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// migrate applies pending migrations in one transaction that holds the
// migration lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so
// nodes starting together neither race nor apply anything twice, and a
// failed migration leaves no trace. A database migrated by a newer build is
// accepted: migrations only add.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	sqlTx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer sqlTx.Rollback()
	c := conn{q: sqlTx, d: d}

	if d.migrateSetup != "" {
		if _, err := c.exec(ctx, d.migrateSetup); err != nil {
			return err
		}
	}
	if err := d.acquire(ctx, sqlTx, lockMigrate); err != nil {
		return err
	}
	if _, err := c.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := c.query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	pending := 0
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		pending++
		for _, stmt := range statements(d.schema.Replace(m.sql)) {
			if _, err := c.exec(ctx, stmt); err != nil {
				return fmt.Errorf("applying %s: %w", m.name, err)
			}
		}
		if _, err := c.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, ms(time.Now())); err != nil {
			return fmt.Errorf("recording %s: %w", m.name, err)
		}
	}
	if pending == 0 {
		return nil // the deferred rollback releases the lock; nothing was written
	}
	return sqlTx.Commit()
}
