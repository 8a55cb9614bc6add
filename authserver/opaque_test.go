package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// yAppointment's token formats, as its guide shows them.
var (
	opaqueAccessRE  = regexp.MustCompile(`^yapp_at_[A-Za-z0-9_-]{43}$`)
	opaqueRefreshRE = regexp.MustCompile(`^yapp_rt_[A-Za-z0-9_-]{43}$`)
)

// lookupFailStore fails opaque access-token reads on demand.
type lookupFailStore struct {
	tokenstore.Store
	down      atomic.Bool
	writeDown atomic.Bool
}

func (l *lookupFailStore) CreateAccessToken(ctx context.Context, t *tokenstore.AccessToken) error {
	if l.writeDown.Load() {
		return tokenstore.ErrUnavailable
	}
	return l.Store.CreateAccessToken(ctx, t)
}

func (l *lookupFailStore) GetAccessToken(ctx context.Context, hash []byte) (*tokenstore.AccessToken, error) {
	if l.down.Load() {
		return nil, tokenstore.ErrUnavailable
	}
	return l.Store.GetAccessToken(ctx, hash)
}

// newOpaqueRig is newRig with yAppointment's token formats: opaque access
// tokens prefixed yapp_at_, refresh tokens prefixed yapp_rt_.
func newOpaqueRig(t *testing.T) (*rig, *lookupFailStore) {
	t.Helper()
	return newOpaqueRigWith(t, "yapp_at_", "yapp_rt_")
}

// newOpaqueRigWith is newOpaqueRig with the given prefixes.
func newOpaqueRigWith(t *testing.T, accessPrefix, refreshPrefix string) (*rig, *lookupFailStore) {
	t.Helper()
	clock := newFakeClock()
	cfg := Config{Issuer: testIssuer, Clock: clock.Now, RefreshPrefix: refreshPrefix}
	db, err := tokenstore.Open(context.Background(), tokenstore.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "og.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &lookupFailStore{Store: db}
	ts, err := tokens.New(context.Background(), st, tokens.Config{Issuer: testIssuer, StaticClients: rigClients(),
		Clock: clock.Now, MaxStaleness: -1, AccessFormat: tokens.FormatOpaque, AccessPrefix: accessPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	s, err := New(cfg, st, ts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.EnsureUser(ctx, UserSpec{Email: "u@example.com", PasswordHash: rigPasswordHash(), Name: "U",
		Businesses: []BusinessSpec{{ID: "b1", Name: "B One"}}}); err != nil {
		t.Fatal(err)
	}
	u, err := s.store.GetUserByEmail(ctx, "u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, s: s, clock: clock, user: u}, st
}

// TestOpaqueTokenFormats: the token endpoint hands out the prefixed formats
// for every grant, and the refresh grant takes and returns prefixed refresh
// tokens.
func TestOpaqueTokenFormats(t *testing.T) {
	r, _ := newOpaqueRig(t)
	resp := r.exchange(r.code("app", []string{"openid", "read:invoices"}, "", true))
	access, _ := resp.body["access_token"].(string)
	refresh, _ := resp.body["refresh_token"].(string)
	if resp.Code != 200 || !opaqueAccessRE.MatchString(access) || !opaqueRefreshRE.MatchString(refresh) {
		t.Fatalf("code exchange: %d access %q refresh %q", resp.Code, access, refresh)
	}
	if resp.body["token_type"] != "Bearer" || resp.body["expires_in"] != float64(3600) || resp.body["id_token"] == nil {
		t.Errorf("token response %v", resp.body)
	}
	next := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, "app:app-secret")
	if a, _ := next.body["access_token"].(string); next.Code != 200 || !opaqueAccessRE.MatchString(a) {
		t.Fatalf("refresh: %d %v", next.Code, next.body)
	}
	if rt, _ := next.body["refresh_token"].(string); !opaqueRefreshRE.MatchString(rt) || rt == refresh {
		t.Errorf("rotated refresh token %q", rt)
	}
	cc := r.token(url.Values{"grant_type": {"client_credentials"}}, "svc:svc-secret")
	if a, _ := cc.body["access_token"].(string); cc.Code != 200 || !opaqueAccessRE.MatchString(a) {
		t.Fatalf("client credentials: %d %v", cc.Code, cc.body)
	}
}

// TestOpaqueIntrospection: RFC 7662 for opaque access tokens, with a wrong
// hint too (§2.1: the server extends its search), and the refresh tokens
// with their prefix.
func TestOpaqueIntrospection(t *testing.T) {
	r, _ := newOpaqueRig(t)
	access, refresh := r.userTokens("read:invoices")
	unknown, err := tokens.NewSecret("yapp_at_")
	if err != nil {
		t.Fatal(err)
	}
	introspect := func(basic, token, hint string) response {
		f := url.Values{"token": {token}}
		if hint != "" {
			f.Set("token_type_hint", hint)
		}
		return r.postForm("/oauth/introspect", f, basic)
	}
	for _, tc := range []struct {
		rule, basic, token, hint string
		active                   bool
	}{
		{"an opaque access token of the caller is active", "app:app-secret", access, "", true},
		{"with the access_token hint", "app:app-secret", access, "access_token", true},
		{"§2.1: with a wrong refresh_token hint", "app:app-secret", access, "refresh_token", true},
		{"a prefixed refresh token is active", "app:app-secret", refresh, "refresh_token", true},
		{"a prefixed refresh token without a hint", "app:app-secret", refresh, "", true},
		{"a first-party client reads any token", "first:first-secret", access, "", true},
		{"another client's token is inactive", "svc:svc-secret", access, "", false},
		{"an unknown opaque token is inactive", "app:app-secret", unknown, "", false},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			resp := introspect(tc.basic, tc.token, tc.hint)
			if resp.Code != 200 || resp.body["active"] != tc.active {
				t.Fatalf("%d %v, want active=%v", resp.Code, resp.body, tc.active)
			}
			if tc.active && (resp.body["client_id"] != "app" || resp.body["sub"] != r.user.ID ||
				resp.body["scope"] != "read:invoices" || resp.body["authorized_business_id"] != "b1") {
				t.Errorf("body %v", resp.body)
			}
			if tc.active && tc.token == access && (resp.body["token_type"] != "Bearer" || resp.body["aud"] != testIssuer || resp.body["jti"] == nil) {
				t.Errorf("access token body %v", resp.body)
			}
		})
	}
}

// TestOpaqueRevocation: RFC 7009 for an opaque access token: revoking it
// ends the grant (its refresh token and the token itself); a lookup that
// fails is 503, never a 200 that would claim a live token revoked.
func TestOpaqueRevocation(t *testing.T) {
	r, st := newOpaqueRig(t)
	revoke := func(token string) response {
		return r.postForm("/oauth/revoke", url.Values{"token": {token}}, "app:app-secret")
	}

	access, refresh := r.userTokens("read:invoices")
	st.down.Store(true)
	if resp := revoke(access); resp.Code != http.StatusServiceUnavailable || resp.errorCode() != "temporarily_unavailable" {
		t.Fatalf("revoke with the lookup failing: %d %v, want 503", resp.Code, resp.body)
	}
	st.down.Store(false)
	if _, err := r.s.tokens.Verify(access); err != nil {
		t.Fatalf("a failed revocation revoked: %v", err)
	}

	if resp := revoke(access); resp.Code != 200 {
		t.Fatalf("revoke: %d %v", resp.Code, resp.body)
	}
	if _, err := r.s.tokens.Verify(access); err == nil {
		t.Error("the revoked opaque token still verifies")
	}
	if resp := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, "app:app-secret"); resp.Code == 200 {
		t.Error("the grant's refresh token still works")
	}
	if resp := r.postForm("/oauth/introspect", url.Values{"token": {access}}, "app:app-secret"); resp.body["active"] != false {
		t.Errorf("introspection of the revoked token: %v", resp.body)
	}
}

// TestOpaqueUserinfo: /userinfo accepts an opaque access token, and refuses
// an unknown one as invalid_token and a failed lookup with 503.
func TestOpaqueUserinfo(t *testing.T) {
	r, st := newOpaqueRig(t)
	access, _ := r.userTokens("openid", "read:invoices")
	get := func(token string) response {
		req := httptest.NewRequest(http.MethodGet, "/oauth/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return r.do(req)
	}
	if resp := get(access); resp.Code != 200 || resp.body["sub"] != r.user.ID || resp.body["authorized_business_id"] != "b1" {
		t.Fatalf("userinfo: %d %v", resp.Code, resp.body)
	}
	unknown, _ := tokens.NewSecret("yapp_at_")
	if resp := get(unknown); resp.Code != 401 || resp.errorCode() != "invalid_token" {
		t.Errorf("unknown opaque token: %d %v", resp.Code, resp.body)
	}
	st.down.Store(true)
	if resp := get(unknown); resp.Code != 503 {
		t.Errorf("unknown opaque token with the store down: %d %v, want 503", resp.Code, resp.body)
	}
}

// TestOpaqueStoreWriteFails: an opaque token that cannot be stored is a 503
// that spends nothing: the same code exchange and refresh succeed once the
// store is back.
func TestOpaqueStoreWriteFails(t *testing.T) {
	r, st := newOpaqueRig(t)
	code := r.code("app", []string{"read:invoices"}, "", true)
	st.writeDown.Store(true)
	if resp := r.exchange(code); resp.Code != http.StatusServiceUnavailable || resp.errorCode() != "temporarily_unavailable" {
		t.Fatalf("code exchange with the store failing: %d %v", resp.Code, resp.body)
	}
	st.writeDown.Store(false)
	resp := r.exchange(code)
	if resp.Code != 200 {
		t.Fatalf("the same code afterwards: %d %v", resp.Code, resp.body)
	}
	refresh := resp.body["refresh_token"].(string)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	st.writeDown.Store(true)
	if resp := r.token(form, "app:app-secret"); resp.Code != http.StatusServiceUnavailable {
		t.Fatalf("refresh with the store failing: %d %v", resp.Code, resp.body)
	}
	st.writeDown.Store(false)
	if resp := r.token(form, "app:app-secret"); resp.Code != 200 {
		t.Fatalf("the same refresh token afterwards: %d %v", resp.Code, resp.body)
	}
	st.writeDown.Store(true)
	if resp := r.token(url.Values{"grant_type": {"client_credentials"}}, "svc:svc-secret"); resp.Code != http.StatusServiceUnavailable {
		t.Errorf("client credentials with the store failing: %d %v", resp.Code, resp.body)
	}
}

// TestOpaqueEqualPrefixes: with no prefixes (the opaque format's default)
// or one prefix for both kinds, an access and a refresh token have the same
// shape. Nothing relies on telling them apart: introspection and
// revocation find either kind whatever the hint, and the gateway refuses a
// refresh token as an unknown access token.
func TestOpaqueEqualPrefixes(t *testing.T) {
	for _, prefix := range []string{"", "yapp_"} {
		t.Run("prefix "+strconv.Quote(prefix), func(t *testing.T) {
			r, _ := newOpaqueRigWith(t, prefix, prefix)
			access, refresh := r.userTokens("read:invoices")
			if len(access) != len(refresh) || access[:len(prefix)] != prefix || refresh[:len(prefix)] != prefix {
				t.Fatalf("tokens %d and %d characters long", len(access), len(refresh))
			}
			if _, err := r.s.tokens.Verify(refresh); !errors.Is(err, tokens.ErrInvalidToken) {
				t.Errorf("a refresh token as an access token: %v", err)
			}
			for _, token := range []string{access, refresh} {
				for _, hint := range []string{"", "access_token", "refresh_token"} {
					f := url.Values{"token": {token}}
					if hint != "" {
						f.Set("token_type_hint", hint)
					}
					if resp := r.postForm("/oauth/introspect", f, "app:app-secret"); resp.Code != 200 || resp.body["active"] != true {
						t.Errorf("introspect (access %v, hint %q): %d %v", token == access, hint, resp.Code, resp.body)
					}
				}
			}
			// Revoking the access token with the wrong hint ends the grant.
			if resp := r.postForm("/oauth/revoke", url.Values{"token": {access}, "token_type_hint": {"refresh_token"}}, "app:app-secret"); resp.Code != 200 {
				t.Fatalf("revoke: %d %v", resp.Code, resp.body)
			}
			if _, err := r.s.tokens.Verify(access); !errors.Is(err, tokens.ErrRevoked) {
				t.Errorf("the revoked access token: %v", err)
			}
			if resp := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, "app:app-secret"); resp.Code == 200 {
				t.Error("the revoked grant's refresh token still works")
			}
		})
	}
}
