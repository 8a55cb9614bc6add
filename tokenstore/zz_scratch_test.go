package tokenstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

func TestZZMessages(t *testing.T) {
	_, err := tokenstore.Open(t.Context(), tokenstore.Config{Driver: "postgres",
		DSN: "postgres://postgres:s3cret-password@127.0.0.1:1/postgres?sslmode=disable", ConnectTimeout: time.Second})
	t.Logf("unreachable: %v", err)
	_, err = tokenstore.Open(t.Context(), tokenstore.Config{Driver: "postgres", DSN: "postgres://u:s3cret@[::1"})
	t.Logf("bad dsn: %v", err)
	for _, open := range []func(*testing.T) tokenstore.Store{openSQLite, func(t *testing.T) tokenstore.Store { return openPostgres(t, postgresConfig(t)) }} {
		s := open(t)
		ctx := t.Context()
		_ = s.CreateClient(ctx, &tokenstore.Client{ID: "c"})
		t.Logf("conflict: %v", s.CreateClient(ctx, &tokenstore.Client{ID: "c"}))
		_, err := s.GetClient(ctx, "x")
		t.Logf("notfound: %v", err)
		t.Logf("fk: %v", s.SetMemberships(ctx, "x", []string{"y"}))
		_ = s.CreateUser(ctx, &tokenstore.User{ID: "u", Email: "e"})
		t.Logf("fk: %v", s.SetMemberships(ctx, "u", []string{"y"}))
		_ = s.CreateGrant(ctx, &tokenstore.Grant{ID: "g"}, &tokenstore.RefreshToken{Hash: []byte("h"), ExpiresAt: time.Now().Add(time.Hour)})
		_, err = s.RotateRefreshToken(ctx, []byte("h"), &tokenstore.RefreshToken{Hash: []byte("h2")})
		_, err = s.RotateRefreshToken(ctx, []byte("h"), &tokenstore.RefreshToken{Hash: []byte("h3")})
		t.Logf("reused: %v", err)
		ctx2, c := context.WithTimeout(ctx, -1)
		c()
		_, err = s.GetClient(ctx2, "x")
		t.Logf("unavail: %v", err)
		s.Close()
		_, err = s.GetClient(ctx, "x")
		t.Logf("closed: %v", err)
	}
}
