package tokenstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to look behind the store's back

	"github.com/oauthgate/oauthgate/tokenstore"
	"github.com/oauthgate/oauthgate/tokenstore/storetest"
)

func postgresConfig(t *testing.T) tokenstore.Config {
	return tokenstore.Config{Driver: "postgres", DSN: storetest.PostgresDSN(t)}
}

func openPostgres(t *testing.T, cfg tokenstore.Config) tokenstore.Store {
	s, err := tokenstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func freshPostgres(t *testing.T) tokenstore.Store {
	return openPostgres(t, postgresConfig(t))
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, freshPostgres)
}

func TestPostgresConcurrent(t *testing.T) {
	storetest.RunConcurrent(t, freshPostgres)
}

func TestPostgresReopen(t *testing.T) {
	cfg := postgresConfig(t)
	storetest.RunReopen(t, cfg)
	if n, want := migrationsApplied(t, "pgx", cfg.DSN), migrationFiles(t); n != want {
		t.Fatalf("schema_migrations has %d rows, want %d (one per migration)", n, want)
	}
}

func TestPostgresStats(t *testing.T) {
	s := openPostgres(t, postgresConfig(t))
	if got := s.Stats().MaxOpenConnections; got != 10 {
		t.Errorf("default MaxOpenConnections = %d, want 10", got)
	}
}

// waitWakeup fails unless s is woken within a second.
func waitWakeup(t *testing.T, s tokenstore.Store, why string) {
	t.Helper()
	select {
	case <-s.Wakeup():
	case <-time.After(time.Second):
		t.Fatalf("no wakeup within a second of %s", why)
	}
}

func drainWakeup(s tokenstore.Store) {
	for {
		select {
		case <-s.Wakeup():
		default:
			return
		}
	}
}

// A revocation on one node wakes every other node of the cluster.
func TestPostgresNotifyWakesOtherNode(t *testing.T) {
	cfg := postgresConfig(t)
	a, b := openPostgres(t, cfg), openPostgres(t, cfg)
	drainWakeup(b)
	if err := a.AddRevocation(t.Context(), &tokenstore.Revocation{
		Kind: tokenstore.RevokeGrant, ID: "g1", ExpiresAt: time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	waitWakeup(t, b, "another node's revocation")
	cs, err := b.ChangesSince(t.Context(), 0, 0)
	if err != nil || len(cs) != 1 || cs[0].Key != "grant:g1" {
		t.Fatalf("ChangesSince on the other node = %+v, %v", cs, err)
	}

	// Nothing is announced for writes that invalidate nothing.
	drainWakeup(b)
	if err := a.SaveConsent(t.Context(), &tokenstore.Consent{UserID: "u1", ClientID: "c1", BusinessID: "b1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Wakeup():
		t.Fatal("a consent woke the other node")
	case <-time.After(200 * time.Millisecond):
	}
}

// The listener survives its connection being killed: it reconnects, wakes
// its node (it may have missed something) and hears the next change.
func TestPostgresListenerReconnects(t *testing.T) {
	cfg := postgresConfig(t)
	a, b := openPostgres(t, cfg), openPostgres(t, cfg)

	db, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var killed int
	if err := db.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 2 {
		t.Fatalf("terminated %d listeners, want 2", killed)
	}
	drainWakeup(b)
	waitWakeup(t, b, "the listener's reconnection")

	drainWakeup(b)
	if err := a.CreateClient(t.Context(), &tokenstore.Client{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	waitWakeup(t, b, "another node's new client after reconnecting")
}

func TestPostgresUnreachableIsUnavailable(t *testing.T) {
	start := time.Now()
	_, err := tokenstore.Open(t.Context(), tokenstore.Config{
		Driver:         "postgres",
		DSN:            "postgres://postgres:s3cret-password@127.0.0.1:1/postgres?sslmode=disable",
		ConnectTimeout: time.Second,
	})
	if !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("Open on a closed port: %v, want ErrUnavailable", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Open took %v to fail", time.Since(start))
	}
	for _, secret := range []string{"s3cret-password"} {
		if msg := err.Error(); len(msg) == 0 || containsFold(msg, secret) {
			t.Fatalf("error %q carries the password", msg)
		}
	}
	if _, err := tokenstore.Open(t.Context(), tokenstore.Config{Driver: "postgres", DSN: "postgres://u:s3cret@[::1"}); err == nil ||
		containsFold(err.Error(), "s3cret") {
		t.Fatalf("Open with a bad DSN: %v", err)
	}
}

// A statement stuck behind another session's lock ends at the statement
// timeout as ErrUnavailable.
func TestPostgresStatementTimeoutIsUnavailable(t *testing.T) {
	cfg := postgresConfig(t)
	cfg.StatementTimeout = 300 * time.Millisecond
	s := openPostgres(t, cfg)

	db, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), "LOCK TABLE clients IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetClient(t.Context(), "c1")
	if !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("GetClient behind a lock: %v, want ErrUnavailable", err)
	}
	tx.Rollback()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after the lock is gone: %v", err)
	}
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
