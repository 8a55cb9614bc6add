package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// testAccessTokens: an opaque access token round-trips by its hash, claims
// verbatim; a second token with the same hash is a conflict; an unknown hash
// is ErrNotFound; an expired one is still read (the caller judges) until
// Prune deletes it, and Prune leaves a live one.
func testAccessTokens(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	claims := []byte(`{"iss":"https://as.example","sub":"u1","aud":["https://api.example","https://other.example"],"cnf":{"jkt":"abc"},"gid":"g1"}`)
	live := &tokenstore.AccessToken{Hash: hash("live"), GrantID: "g1", ClientID: "c1", Claims: claims,
		CreatedAt: at(0), ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()}
	check(t, "CreateAccessToken", s.CreateAccessToken(ctx, live))
	got, err := s.GetAccessToken(ctx, hash("live"))
	check(t, "GetAccessToken", err)
	equal(t, "access token", got, live)

	dup := *live
	dup.GrantID = "g2"
	wantErr(t, "duplicate hash", s.CreateAccessToken(ctx, &dup), tokenstore.ErrConflict)
	_, err = s.GetAccessToken(ctx, hash("unknown"))
	wantErr(t, "unknown hash", err, tokenstore.ErrNotFound)
	_, err = s.GetAccessToken(ctx, nil)
	wantErr(t, "empty hash", err, tokenstore.ErrNotFound)
	if err := s.CreateAccessToken(ctx, &tokenstore.AccessToken{Hash: hash("x"), ExpiresAt: at(time.Hour)}); err == nil {
		t.Error("CreateAccessToken without claims succeeded")
	}

	dead := &tokenstore.AccessToken{Hash: hash("dead"), GrantID: "g1", ClientID: "c1", Claims: claims,
		ExpiresAt: time.Now().Add(-time.Second)}
	check(t, "CreateAccessToken expired", s.CreateAccessToken(ctx, dead))
	_, err = s.GetAccessToken(ctx, hash("dead"))
	check(t, "expired token before Prune", err)
	check(t, "Prune", s.Prune(ctx, time.Now()))
	_, err = s.GetAccessToken(ctx, hash("dead"))
	if !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("expired access token after Prune: %v, want ErrNotFound", err)
	}
	_, err = s.GetAccessToken(ctx, hash("live"))
	check(t, "live token after Prune", err)
}
