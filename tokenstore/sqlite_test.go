package tokenstore_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
	"github.com/oauthgate/oauthgate/tokenstore/storetest"
)

func sqliteConfig(t *testing.T) tokenstore.Config {
	return tokenstore.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "data", "oauthgate.db")}
}

func openSQLite(t *testing.T) tokenstore.Store {
	s, err := tokenstore.Open(t.Context(), sqliteConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, openSQLite)
}

func TestSQLiteConcurrent(t *testing.T) {
	storetest.RunConcurrent(t, openSQLite)
}

func TestSQLiteReopen(t *testing.T) {
	cfg := sqliteConfig(t)
	storetest.RunReopen(t, cfg)
	if n, want := migrationsApplied(t, "sqlite", cfg.DSN), migrationFiles(t); n != want {
		t.Fatalf("schema_migrations has %d rows, want %d (one per migration)", n, want)
	}
}

func TestSQLiteFiles(t *testing.T) {
	cfg := sqliteConfig(t)
	cfg.MaxOpenConns = 3
	s, err := tokenstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("MaxOpenConnections = %d, want 3", got)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Dir(cfg.DSN): 0o700 | os.ModeDir,
		cfg.DSN:               0o600,
		cfg.DSN + "-wal":      0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
	}

	db, err := sql.Open("sqlite", cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
}

func TestSQLiteBadDSN(t *testing.T) {
	for _, dsn := range []string{"", ":memory:", "file:x.db", "x.db?mode=memory"} {
		if s, err := tokenstore.Open(t.Context(), tokenstore.Config{DSN: dsn}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
	if _, err := tokenstore.Open(t.Context(), tokenstore.Config{Driver: "mysql"}); err == nil {
		t.Error("Open with an unknown driver succeeded")
	}
}

// A writer kept waiting past the statement timeout by another process's
// lock is told the store is unavailable, not that the request is bad.
func TestSQLiteBusyIsUnavailable(t *testing.T) {
	cfg := sqliteConfig(t)
	cfg.StatementTimeout = 200 * time.Millisecond
	s, err := tokenstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	other, err := sql.Open("sqlite", cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")

	err = s.AddRevocation(t.Context(), &tokenstore.Revocation{Kind: tokenstore.RevokeGrant, ID: "g1", ExpiresAt: time.Now().Add(time.Hour)})
	if !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("AddRevocation while locked: %v, want ErrUnavailable", err)
	}
	_, err = s.ListClients(t.Context())
	if err != nil {
		t.Fatalf("reading while another process writes: %v", err)
	}
}

// migrationsApplied counts the rows of schema_migrations.
// migrationFiles counts the migrations the build embeds.
func migrationFiles(t *testing.T) int {
	t.Helper()
	m, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(m) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	return len(m)
}

func migrationsApplied(t *testing.T, driver, dsn string) int {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
