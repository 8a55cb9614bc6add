package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresDSN is the server tests use unless OAUTHGATE_TEST_PG says
// otherwise: a local PostgreSQL with trust authentication.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresDSN creates a database of its own for the test and returns its
// DSN; the database is dropped when the test ends. Without a reachable
// server the test is skipped, unless CI=true, where that is a failure.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("OAUTHGATE_TEST_PG")
	if base == "" {
		base = DefaultPostgresDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("postgres unreachable: %v", err)
		}
		t.Skipf("postgres unreachable (set OAUTHGATE_TEST_PG): %v", err)
	}
	defer admin.Close(context.Background())

	name := "oauthgate_test_" + hex.EncodeToString(randomBytes(6))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
		}
	})
	return withDatabase(t, base, name)
}

// withDatabase points a URL or keyword/value DSN at another database.
func withDatabase(t testing.TB, dsn, name string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal("OAUTHGATE_TEST_PG is not a valid URL") // the error would repeat a password
		}
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
