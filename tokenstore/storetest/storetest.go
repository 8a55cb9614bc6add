// Package storetest is the conformance suite every tokenstore engine passes,
// and the helpers other packages' tests use to get a real database.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

type suite []struct {
	name string
	fn   func(t *testing.T, s tokenstore.Store)
}

func (tests suite) run(t *testing.T, open func(t *testing.T) tokenstore.Store) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// Run checks the behaviour tokenstore.Store promises, one call at a time.
// open must return a store on a fresh, empty database, and close it when the
// test ends.
func Run(t *testing.T, open func(t *testing.T) tokenstore.Store) {
	suite{
		{"NotFound", testNotFound},
		{"Conflict", testConflict},
		{"Unavailable", testUnavailable},
		{"Clients", testClients},
		{"DeleteClientCascades", testDeleteClientCascades},
		{"Registrations", testRegistrations},
		{"Codes", testCodes},
		{"RedeemCode", testRedeemCode},
		{"DeleteUserRevokes", testDeleteUserRevokes},
		{"Grants", testGrants},
		{"RefreshTokens", testRefreshTokens},
		{"AccessTokens", testAccessTokens},
		{"RevokeGrant", testRevokeGrant},
		{"CreateRevokedGrant", testCreateRevokedGrant},
		{"Consents", testConsents},
		{"ConsentResources", testConsentResources},
		{"RevokeGrantForgetsConsent", testRevokeGrantForgetsConsent},
		{"Keys", testKeys},
		{"RotateKeys", testRotateKeys},
		{"Users", testUsers},
		{"Businesses", testBusinesses},
		{"Memberships", testMemberships},
		{"LinkCreatedBusiness", testLinkCreatedBusiness},
		{"EditClient", testEditClient},
		{"Revocations", testRevocations},
		{"Failures", testFailures},
		{"ChangeFeed", testChangeFeed},
		{"Wakeup", testWakeup},
		{"Prune", testPrune},
		{"ErrorsCarryNoSecrets", testErrorsCarryNoSecrets},
	}.run(t, open)
}

// RunConcurrent checks that racing callers of the single-use and
// initialise-once operations agree on one winner. It is apart from Run so
// that it can be run alone under the race detector (-run Concurrent).
func RunConcurrent(t *testing.T, open func(t *testing.T) tokenstore.Store) {
	suite{
		{"ConsumeCode", testConcurrentConsumeCode},
		{"RedeemCode", testConcurrentRedeemCode},
		{"RedeemCodeVersusDeleteClient", testConcurrentRedeemDelete},
		{"RedeemCodeVersusDeleteUser", testConcurrentRedeemDeleteUser},
		{"SetMemberships", testConcurrentSetMemberships},
		{"RotateRefreshToken", testConcurrentRotate},
		{"InitKey", testConcurrentInitKey},
		{"RotateKeysWhenDue", testConcurrentRotateKeys},
		{"CreateVersusRevokeGrant", testConcurrentCreateRevoke},
		{"RecordFailures", testConcurrentRecordFailures},
		{"LinkCreatedBusiness", testConcurrentLinkCreatedBusiness},
		{"EditVersusLink", testConcurrentEditAndLink},
	}.run(t, open)
}

// base is a millisecond-precise UTC instant: what the store round-trips.
var base = time.Now().Truncate(time.Millisecond).UTC()

func at(d time.Duration) time.Time { return base.Add(d) }

// hash stands for the SHA-256 of a random secret.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func check(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

func wantErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", op, err, want)
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, deref(got), deref(want))
	}
}

// deref prints pointers and slices of pointers by value.
func deref(v any) string {
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.Pointer && !rv.IsNil():
		return fmt.Sprintf("%+v", rv.Elem().Interface())
	case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Pointer:
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = deref(rv.Index(i).Interface())
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("%+v", v)
}

func sampleClient(id string) *tokenstore.Client {
	return &tokenstore.Client{
		ID:           id,
		SecretHash:   hash("secret-" + id),
		Name:         "App " + id,
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Scopes:       []string{"openid", "read:invoices"},
		RedirectURIs: []string{"https://app.example/cb"},
		// Round-trips with the rest (migration 0002).
		PostLogoutRedirectURIs: []string{"https://app.example/signed-out"},
		// Migration 0004.
		IDTokenSignedResponseAlg: "RS256",
		// Migration 0007.
		// Migration 0007.
		DPoPBoundAccessTokens: true,
		// Migration 0008.
		OwnerID:         "usr_dev",
		OwnerBusinessID: "biz1",
		Businesses:      []string{"biz1"},
		CreatedAt:       at(0),
		UpdatedAt:       at(0),
	}
}

func sampleCode(secret string, ttl time.Duration) *tokenstore.AuthCode {
	return &tokenstore.AuthCode{
		Hash:                hash(secret),
		GrantID:             "grant-" + secret,
		ClientID:            "client1",
		RedirectURI:         "https://app.example/cb",
		UserID:              "user1",
		BusinessID:          "biz1",
		Scopes:              []string{"openid", "read:invoices"},
		Nonce:               "n-0S6_WzA2Mj",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		AuthTime:            at(-time.Minute),
		CreatedAt:           at(0),
		ExpiresAt:           time.Now().Add(ttl).Truncate(time.Millisecond).UTC(),
		Resources:           []string{"https://api.example/crm", "https://api.example/accounting"},
	}
}

func sampleGrant(id, clientID, userID string, created time.Time) *tokenstore.Grant {
	return &tokenstore.Grant{
		ID:         id,
		ClientID:   clientID,
		UserID:     userID,
		BusinessID: "biz1",
		Scopes:     []string{"read:invoices"},
		AuthTime:   created,
		CreatedAt:  created,
		ExpiresAt:  created.Add(30 * 24 * time.Hour),
		Resources:  []string{"https://api.example/crm"},
	}
}

func sampleRefresh(secret, grantID string, ttl time.Duration) *tokenstore.RefreshToken {
	return &tokenstore.RefreshToken{
		Hash:      hash(secret),
		GrantID:   grantID,
		ClientID:  "client1",
		Scopes:    []string{"read:invoices"},
		CreatedAt: at(0),
		ExpiresAt: time.Now().Add(ttl).Truncate(time.Millisecond).UTC(),
		// Migration 0007: the DPoP key of a public client's refresh token.
		JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
	}
}

func sampleKey(id string, created time.Time) *tokenstore.Key {
	return &tokenstore.Key{
		ID:         id,
		Alg:        "ES256",
		PrivateJWK: []byte(`{"kty":"EC","crv":"P-256","kid":"` + id + `","d":"private"}`),
		CreatedAt:  created,
	}
}

func sampleUser(id, email string) *tokenstore.User {
	return &tokenstore.User{
		ID:              id,
		Email:           email,
		Name:            "User " + id,
		PasswordHash:    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		CurrentBusiness: "biz1",
		CreatedAt:       at(0),
	}
}

// drain empties the Wakeup channel.
func drain(s tokenstore.Store) {
	for {
		select {
		case <-s.Wakeup():
		default:
			return
		}
	}
}

// changes returns every change after seq as "kind key" strings.
func changes(t *testing.T, s tokenstore.Store, seq int64) []string {
	t.Helper()
	cs, err := s.ChangesSince(t.Context(), seq, 0)
	check(t, "ChangesSince", err)
	var out []string
	for _, c := range cs {
		out = append(out, c.Kind+" "+c.Key)
	}
	return out
}

func last(t *testing.T, s tokenstore.Store) int64 {
	t.Helper()
	seq, err := s.LastChange(t.Context())
	check(t, "LastChange", err)
	return seq
}

func testNotFound(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateCode", s.CreateCode(ctx, sampleCode("expired", -time.Second)))
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "client1", "user1", at(0)),
		sampleRefresh("expired", "g1", -time.Second)))
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("u1", "a@example.com")))

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"GetClient", func() error { _, err := s.GetClient(ctx, "nope"); return err }},
		{"UpdateClient", func() error { return s.UpdateClient(ctx, sampleClient("nope")) }},
		{"DeleteClient", func() error { _, err := s.DeleteClient(ctx, "nope", at(time.Hour)); return err }},
		{"ConsumeCode unknown", func() error { _, err := s.ConsumeCode(ctx, hash("nope")); return err }},
		{"ConsumeCode empty", func() error { _, err := s.ConsumeCode(ctx, nil); return err }},
		{"ConsumeCode expired", func() error { _, err := s.ConsumeCode(ctx, hash("expired")); return err }},
		{"GetGrant", func() error { _, err := s.GetGrant(ctx, "nope"); return err }},
		{"GetRefreshToken unknown", func() error { _, err := s.GetRefreshToken(ctx, hash("nope")); return err }},
		{"GetRefreshToken expired", func() error { _, err := s.GetRefreshToken(ctx, hash("expired")); return err }},
		{"RotateRefreshToken unknown", func() error {
			_, err := s.RotateRefreshToken(ctx, hash("nope"), sampleRefresh("next1", "g1", time.Hour))
			return err
		}},
		{"RotateRefreshToken expired", func() error {
			_, err := s.RotateRefreshToken(ctx, hash("expired"), sampleRefresh("next2", "g1", time.Hour))
			return err
		}},
		{"GetConsent", func() error { _, err := s.GetConsent(ctx, "u1", "client1", "biz1"); return err }},
		{"GetUser", func() error { _, err := s.GetUser(ctx, "nope"); return err }},
		{"GetUserByEmail", func() error { _, err := s.GetUserByEmail(ctx, "nope@example.com"); return err }},
		{"UpdateUser", func() error { return s.UpdateUser(ctx, sampleUser("nope", "nope@example.com")) }},
		{"DeleteUser", func() error { _, err := s.DeleteUser(ctx, "nope", at(time.Hour)); return err }},
		{"GetBusiness", func() error { _, err := s.GetBusiness(ctx, "nope"); return err }},
		{"SetMemberships unknown user", func() error { return s.SetMemberships(ctx, "nope", nil) }},
		{"SetMemberships unknown business", func() error { return s.SetMemberships(ctx, "u1", []string{"nope"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), tokenstore.ErrNotFound)
		})
	}
	// Expired but unused records did not get used by the attempts.
	if _, err := s.ConsumeCode(ctx, hash("expired")); errors.Is(err, tokenstore.ErrReused) {
		t.Fatal("an expired code was marked used")
	}
}

func testConflict(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateClient", s.CreateClient(ctx, sampleClient("c1")))
	check(t, "CreateCode", s.CreateCode(ctx, sampleCode("code", time.Minute)))
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "c1", "u1", at(0)), sampleRefresh("rt1", "g1", time.Hour)))
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g2", "c1", "u1", at(0)), sampleRefresh("rt2", "g2", time.Hour)))
	check(t, "AddKey", s.AddKey(ctx, sampleKey("k1", at(0))))
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("u1", "a@example.com")))
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("u2", "b@example.com")))

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"CreateClient", func() error { return s.CreateClient(ctx, sampleClient("c1")) }},
		{"CreateCode", func() error { return s.CreateCode(ctx, sampleCode("code", time.Minute)) }},
		{"CreateGrant same id", func() error { return s.CreateGrant(ctx, sampleGrant("g1", "c1", "u1", at(0)), nil) }},
		{"CreateGrant same refresh token", func() error {
			return s.CreateGrant(ctx, sampleGrant("g3", "c1", "u1", at(0)), sampleRefresh("rt1", "g3", time.Hour))
		}},
		{"RotateRefreshToken onto an existing token", func() error {
			_, err := s.RotateRefreshToken(ctx, hash("rt2"), sampleRefresh("rt1", "g2", time.Hour))
			return err
		}},
		{"AddKey", func() error { return s.AddKey(ctx, sampleKey("k1", at(time.Second))) }},
		{"CreateUser same id", func() error { return s.CreateUser(ctx, sampleUser("u1", "c@example.com")) }},
		{"CreateUser same e-mail in other case", func() error {
			return s.CreateUser(ctx, sampleUser("u3", "A@Example.COM"))
		}},
		{"UpdateUser to a taken e-mail", func() error { return s.UpdateUser(ctx, sampleUser("u2", "a@example.com")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), tokenstore.ErrConflict)
		})
	}
	// The failed grant creation stored nothing, the failed rotation left the
	// old token unused.
	_, err := s.GetGrant(ctx, "g3")
	wantErr(t, "GetGrant after failed CreateGrant", err, tokenstore.ErrNotFound)
	rt, err := s.GetRefreshToken(ctx, hash("rt2"))
	check(t, "GetRefreshToken", err)
	if !rt.UsedAt.IsZero() {
		t.Fatal("a failed rotation marked the old token used")
	}
}

func testUnavailable(t *testing.T, s tokenstore.Store) {
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := s.GetClient(ctx, "c1")
	wantErr(t, "GetClient past its deadline", err, tokenstore.ErrUnavailable)
	err = s.AddRevocation(ctx, &tokenstore.Revocation{Kind: tokenstore.RevokeGrant, ID: "g1", ExpiresAt: at(time.Hour)})
	wantErr(t, "AddRevocation past its deadline", err, tokenstore.ErrUnavailable)
	check(t, "Ping", s.Ping(t.Context()))
}

func testClients(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	seq := last(t, s)
	b := sampleClient("b")
	a := sampleClient("a")
	public := &tokenstore.Client{ID: "pub", Name: "SPA", GrantTypes: []string{"authorization_code"},
		Public: true, CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
	for _, c := range []*tokenstore.Client{b, a, public} {
		check(t, "CreateClient", s.CreateClient(ctx, c))
	}
	got, err := s.GetClient(ctx, "a")
	check(t, "GetClient", err)
	equal(t, "GetClient", got, a)
	got, err = s.GetClient(ctx, "pub")
	check(t, "GetClient", err)
	equal(t, "public client", got, public)

	list, err := s.ListClients(ctx)
	check(t, "ListClients", err)
	equal(t, "ListClients (by id)", list, []*tokenstore.Client{a, b, public})
	mine, err := s.ListClientsByOwner(ctx, "usr_dev")
	check(t, "ListClientsByOwner", err)
	equal(t, "ListClientsByOwner (newest first, then by id)", mine, []*tokenstore.Client{a, b})
	nobody, err := s.ListClientsByOwner(ctx, "")
	check(t, "ListClientsByOwner", err)
	equal(t, "ListClientsByOwner of nobody", len(nobody), 0)

	upd := &tokenstore.Client{ID: "a", Name: "Renamed", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"write:invoices"}, Businesses: []string{"biz1", "biz2"}, FirstParty: true,
		PostLogoutRedirectURIs: []string{"https://app.example/bye", "https://app.example/bye?x=1"},
		CreatedAt:              at(time.Hour), UpdatedAt: at(time.Minute)}
	check(t, "UpdateClient", s.UpdateClient(ctx, upd))
	got, err = s.GetClient(ctx, "a")
	check(t, "GetClient", err)
	want := *upd
	want.CreatedAt = a.CreatedAt // kept
	equal(t, "updated client", got, &want)

	_, err = s.DeleteClient(ctx, "b", at(time.Hour))
	check(t, "DeleteClient", err)
	_, err = s.GetClient(ctx, "b")
	wantErr(t, "GetClient after delete", err, tokenstore.ErrNotFound)

	equal(t, "changes", changes(t, s, seq), []string{"client b", "client a", "client pub", "client a", "revocation client:b", "client b"})

	// Zero times are filled in.
	z := &tokenstore.Client{ID: "z", Name: "Z"}
	check(t, "CreateClient", s.CreateClient(ctx, z))
	got, err = s.GetClient(ctx, "z")
	check(t, "GetClient", err)
	if got.CreatedAt.IsZero() || !got.UpdatedAt.Equal(got.CreatedAt) || time.Since(got.CreatedAt) > time.Minute {
		t.Fatalf("zero times not filled: %+v", got)
	}
}

func testDeleteClientCascades(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateClient", s.CreateClient(ctx, sampleClient("client1")))
	check(t, "CreateClient", s.CreateClient(ctx, sampleClient("other")))
	check(t, "CreateCode", s.CreateCode(ctx, sampleCode("code", time.Minute)))
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "client1", "u1", at(0)), sampleRefresh("rt", "g1", time.Hour)))
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g2", "other", "u1", at(0)), nil))
	check(t, "SaveConsent", s.SaveConsent(ctx, &tokenstore.Consent{UserID: "u1", ClientID: "client1", BusinessID: "biz1"}))
	before := time.Now()
	revokedAt, err := s.DeleteClient(ctx, "client1", at(time.Hour))
	check(t, "DeleteClient", err)
	after := time.Now()
	// The revocation is recorded in the deletion's commit, dated after it.
	if revokedAt.Before(before.Add(tokenstore.ClientDeletionMargin).Truncate(time.Millisecond)) ||
		revokedAt.After(after.Add(tokenstore.ClientDeletionMargin)) {
		t.Fatalf("revocation time %v, want between %v and %v plus the margin", revokedAt, before, after)
	}
	revs, err := s.ActiveRevocations(ctx, time.Now())
	check(t, "ActiveRevocations", err)
	equal(t, "revocation of the deleted client", revs, []*tokenstore.Revocation{
		{Kind: tokenstore.RevokeClient, ID: "client1", CreatedAt: revokedAt, ExpiresAt: at(time.Hour)}})

	_, err = s.ConsumeCode(ctx, hash("code"))
	wantErr(t, "ConsumeCode", err, tokenstore.ErrNotFound)
	_, err = s.GetGrant(ctx, "g1")
	wantErr(t, "GetGrant", err, tokenstore.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, hash("rt"))
	wantErr(t, "GetRefreshToken", err, tokenstore.ErrNotFound)
	_, err = s.GetConsent(ctx, "u1", "client1", "biz1")
	wantErr(t, "GetConsent", err, tokenstore.ErrNotFound)
	_, err = s.GetGrant(ctx, "g2")
	check(t, "GetGrant of another client", err)
}

func testCodes(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	c := sampleCode("code", 10*time.Minute)
	check(t, "CreateCode", s.CreateCode(ctx, c))

	got, err := s.ConsumeCode(ctx, c.Hash)
	check(t, "ConsumeCode", err)
	if got.UsedAt.IsZero() || time.Since(got.UsedAt) > time.Minute {
		t.Fatalf("UsedAt = %v, want about now", got.UsedAt)
	}
	want := *c
	want.UsedAt = got.UsedAt
	equal(t, "consumed code", got, &want)

	again, err := s.ConsumeCode(ctx, c.Hash)
	wantErr(t, "ConsumeCode again", err, tokenstore.ErrReused)
	equal(t, "reused code", again, &want)

	// A used code stays "reused", not "not found", once expired.
	old := sampleCode("old", -time.Minute)
	old.ExpiresAt = time.Now().Add(300 * time.Millisecond)
	check(t, "CreateCode", s.CreateCode(ctx, old))
	_, err = s.ConsumeCode(ctx, old.Hash)
	check(t, "ConsumeCode", err)
	time.Sleep(400 * time.Millisecond)
	_, err = s.ConsumeCode(ctx, old.Hash)
	wantErr(t, "ConsumeCode used and expired", err, tokenstore.ErrReused)

	// A zero CreatedAt is filled in, Hash is required.
	z := sampleCode("zero", time.Minute)
	z.CreatedAt = time.Time{}
	check(t, "CreateCode", s.CreateCode(ctx, z))
	if z.CreatedAt.IsZero() {
		t.Fatal("CreatedAt not filled")
	}
	if err := s.CreateCode(ctx, &tokenstore.AuthCode{}); err == nil {
		t.Fatal("CreateCode without a hash succeeded")
	}
}

func testRedeemCode(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("user1", "user1@example.com")))
	c := sampleCode("code", 10*time.Minute)
	check(t, "CreateCode", s.CreateCode(ctx, c))
	got, err := s.GetCode(ctx, c.Hash)
	check(t, "GetCode", err)
	equal(t, "GetCode leaves the code unused", got, c)

	// A grant for another id or client is refused and spends nothing.
	wrong := sampleGrant("other", c.ClientID, c.UserID, at(0))
	if _, err := s.RedeemCode(ctx, c.Hash, wrong, nil); err == nil || errors.Is(err, tokenstore.ErrReused) {
		t.Fatalf("RedeemCode for another grant id: %v, want a refusal", err)
	}
	wrong = sampleGrant(c.GrantID, "client2", c.UserID, at(0))
	if _, err := s.RedeemCode(ctx, c.Hash, wrong, nil); err == nil || errors.Is(err, tokenstore.ErrReused) {
		t.Fatalf("RedeemCode for another client: %v, want a refusal", err)
	}
	// A refresh token that cannot be stored (no hash) rolls the whole
	// redemption back: the code is still unused and no grant exists.
	g := sampleGrant(c.GrantID, c.ClientID, c.UserID, at(0))
	if _, err := s.RedeemCode(ctx, c.Hash, g, &tokenstore.RefreshToken{ExpiresAt: at(time.Hour)}); err == nil {
		t.Fatal("RedeemCode with an unstorable refresh token succeeded")
	}
	got, err = s.GetCode(ctx, c.Hash)
	check(t, "GetCode", err)
	if !got.UsedAt.IsZero() {
		t.Fatal("a failed redemption spent the code")
	}
	_, err = s.GetGrant(ctx, c.GrantID)
	wantErr(t, "GetGrant after a failed redemption", err, tokenstore.ErrNotFound)

	rt := sampleRefresh("rt", "", time.Hour)
	red, err := s.RedeemCode(ctx, c.Hash, g, rt)
	check(t, "RedeemCode", err)
	if red.UsedAt.IsZero() || red.GrantID != c.GrantID {
		t.Fatalf("redeemed code %+v, want it used", red)
	}
	gotG, err := s.GetGrant(ctx, c.GrantID)
	check(t, "GetGrant", err)
	equal(t, "grant stored with the redemption", gotG, g)
	gotRT, err := s.GetRefreshToken(ctx, rt.Hash)
	check(t, "GetRefreshToken", err)
	if gotRT.GrantID != c.GrantID {
		t.Fatalf("refresh token grant %q, want %q", gotRT.GrantID, c.GrantID)
	}
	used, err := s.GetCode(ctx, c.Hash)
	check(t, "GetCode used", err)
	if !used.UsedAt.Equal(red.UsedAt) {
		t.Fatalf("GetCode UsedAt %v, want %v", used.UsedAt, red.UsedAt)
	}

	again, err := s.RedeemCode(ctx, c.Hash, sampleGrant(c.GrantID, c.ClientID, c.UserID, at(0)), sampleRefresh("rt2", "", time.Hour))
	wantErr(t, "RedeemCode again", err, tokenstore.ErrReused)
	if again == nil || !again.UsedAt.Equal(red.UsedAt) {
		t.Fatalf("replayed code %+v, want the used code", again)
	}
	_, err = s.GetRefreshToken(ctx, hash("rt2"))
	wantErr(t, "refresh token of a replay", err, tokenstore.ErrNotFound)

	_, err = s.RedeemCode(ctx, hash("nope"), g, nil)
	wantErr(t, "RedeemCode unknown", err, tokenstore.ErrNotFound)
	_, err = s.GetCode(ctx, hash("nope"))
	wantErr(t, "GetCode unknown", err, tokenstore.ErrNotFound)
	exp := sampleCode("expired", -time.Second)
	check(t, "CreateCode", s.CreateCode(ctx, exp))
	_, err = s.GetCode(ctx, exp.Hash)
	wantErr(t, "GetCode expired", err, tokenstore.ErrNotFound)
	_, err = s.RedeemCode(ctx, exp.Hash, sampleGrant(exp.GrantID, exp.ClientID, exp.UserID, at(0)), nil)
	wantErr(t, "RedeemCode expired", err, tokenstore.ErrNotFound)

	// A revoked grant id is not brought alive, and the code stays unspent.
	rv := sampleCode("revoked", time.Minute)
	check(t, "CreateCode", s.CreateCode(ctx, rv))
	check(t, "RevokeGrant", s.RevokeGrant(ctx, rv.GrantID, at(time.Hour)))
	_, err = s.RedeemCode(ctx, rv.Hash, sampleGrant(rv.GrantID, rv.ClientID, rv.UserID, at(0)), nil)
	wantErr(t, "RedeemCode of a revoked grant", err, tokenstore.ErrRevoked)
	_, err = s.GetGrant(ctx, rv.GrantID)
	wantErr(t, "GetGrant of a revoked grant id", err, tokenstore.ErrNotFound)
}

// testConcurrentRedeemCode: of many exchanges of one code exactly one stores
// its grant and refresh token; every other returns only once that commit is
// visible, with the used code, and stores nothing.
func testConcurrentRedeemCode(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	const n = 50
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("user1", "user1@example.com")))
	c := sampleCode("code", time.Minute)
	check(t, "CreateCode", s.CreateCode(ctx, c))
	warm(t, s)
	got := make([]*tokenstore.AuthCode, n)
	errs := race(n, func(i int) error {
		var err error
		g := sampleGrant(c.GrantID, c.ClientID, c.UserID, at(0))
		got[i], err = s.RedeemCode(ctx, c.Hash, g, sampleRefresh(fmt.Sprintf("rt%d", i), "", time.Hour))
		if errors.Is(err, tokenstore.ErrReused) {
			// The winner's commit is visible to a loser once it returns.
			if _, gerr := s.GetRefreshToken(ctx, hash(fmt.Sprintf("rt%d", i))); !errors.Is(gerr, tokenstore.ErrNotFound) {
				return fmt.Errorf("a loser's refresh token: %v", gerr)
			}
			if _, gerr := s.GetGrant(ctx, c.GrantID); gerr != nil {
				return fmt.Errorf("a loser returned before the winner's grant was visible: %v", gerr)
			}
		}
		return err
	})
	w := oneWinner(t, errs)
	for i, g := range got {
		if g == nil || !g.UsedAt.Equal(got[w].UsedAt) {
			t.Fatalf("goroutine %d got %+v, want the code used at %v", i, g, got[w].UsedAt)
		}
	}
	if _, err := s.GetRefreshToken(ctx, hash(fmt.Sprintf("rt%d", w))); err != nil {
		t.Fatalf("the winner's refresh token: %v", err)
	}
}

// testConcurrentRedeemDelete: a redemption racing the deletion of its client
// either loses (nothing stored) or wins before it (and the deletion removes
// what it stored, with a revocation dated after it).
func testConcurrentRedeemDelete(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("user1", "user1@example.com")))
	for i := range 10 {
		id := fmt.Sprintf("client%d", i)
		check(t, "CreateClient", s.CreateClient(ctx, sampleClient(id)))
		c := sampleCode(fmt.Sprintf("code%d", i), time.Minute)
		c.ClientID = id
		check(t, "CreateCode", s.CreateCode(ctx, c))
		rt := sampleRefresh(fmt.Sprintf("rt%d", i), "", time.Hour)
		rt.ClientID = id
		var redeemed time.Time
		var revokedAt time.Time
		errs := race(2, func(j int) error {
			if j == 0 {
				_, err := s.RedeemCode(ctx, c.Hash, sampleGrant(c.GrantID, id, c.UserID, at(0)), rt)
				redeemed = time.Now()
				if errors.Is(err, tokenstore.ErrNotFound) {
					return nil
				}
				return err
			}
			var err error
			revokedAt, err = s.DeleteClient(ctx, id, at(time.Hour))
			return err
		})
		check(t, "RedeemCode", errs[0])
		check(t, "DeleteClient", errs[1])
		_, err := s.GetGrant(ctx, c.GrantID)
		wantErr(t, "grant after the deletion", err, tokenstore.ErrNotFound)
		_, err = s.GetRefreshToken(ctx, rt.Hash)
		wantErr(t, "refresh token after the deletion", err, tokenstore.ErrNotFound)
		if !revokedAt.After(redeemed.Add(-time.Second)) {
			t.Fatalf("revocation at %v, long before the redemption returned at %v", revokedAt, redeemed)
		}
	}
}

// testDeleteUserRevokes: deleting a user revokes the user's live grants,
// drops the refresh tokens and codes, in one commit, and a code of the user
// cannot be redeemed afterwards.
func testDeleteUserRevokes(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("user1", "user1@example.com")))
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("user2", "user2@example.com")))
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "client1", "user1", at(0)), sampleRefresh("rt1", "g1", time.Hour)))
	old := sampleGrant("g0", "client1", "user1", at(0))
	old.RevokedAt = at(time.Second)
	check(t, "CreateGrant", s.CreateGrant(ctx, old, nil))
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g2", "client1", "user2", at(0)), sampleRefresh("rt2", "g2", time.Hour)))
	c := sampleCode("code", time.Minute)
	check(t, "CreateCode", s.CreateCode(ctx, c))

	revoked, err := s.DeleteUser(ctx, "user1", at(time.Hour))
	check(t, "DeleteUser", err)
	equal(t, "grants revoked with the user", revoked, []string{"g1"})
	g, err := s.GetGrant(ctx, "g1")
	check(t, "GetGrant", err)
	if g.RevokedAt.IsZero() {
		t.Fatal("the deleted user's grant is live")
	}
	_, err = s.GetRefreshToken(ctx, hash("rt1"))
	wantErr(t, "the deleted user's refresh token", err, tokenstore.ErrNotFound)
	_, err = s.GetCode(ctx, c.Hash)
	wantErr(t, "the deleted user's code", err, tokenstore.ErrNotFound)
	revs, err := s.ActiveRevocations(ctx, time.Now())
	check(t, "ActiveRevocations", err)
	if len(revs) != 1 || revs[0].Kind != tokenstore.RevokeGrant || revs[0].ID != "g1" {
		t.Fatalf("revocations %+v, want the deleted user's grant", revs)
	}
	if _, err := s.GetRefreshToken(ctx, hash("rt2")); err != nil {
		t.Fatalf("another user's refresh token: %v", err)
	}

	// A code whose user is gone (one minted before and kept) is not redeemed.
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("user3", "user3@example.com")))
	c3 := sampleCode("code3", time.Minute)
	c3.UserID = "user3"
	check(t, "CreateCode", s.CreateCode(ctx, c3))
	_, err = s.DeleteUser(ctx, "user3", at(time.Hour))
	check(t, "DeleteUser", err)
	check(t, "CreateCode", s.CreateCode(ctx, c3)) // as if minted by a node that had not seen the deletion
	g3 := sampleGrant(c3.GrantID, c3.ClientID, "user3", at(0))
	_, err = s.RedeemCode(ctx, c3.Hash, g3, nil)
	wantErr(t, "RedeemCode for a deleted user", err, tokenstore.ErrNotFound)
	_, err = s.GetGrant(ctx, c3.GrantID)
	wantErr(t, "grant of a deleted user", err, tokenstore.ErrNotFound)
}

// testConcurrentRedeemDeleteUser: an exchange racing the deletion of its
// user either stores nothing or stores a grant the deletion revokes.
func testConcurrentRedeemDeleteUser(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	for i := range 10 {
		uid := fmt.Sprintf("user%d", i)
		check(t, "CreateUser", s.CreateUser(ctx, sampleUser(uid, uid+"@example.com")))
		c := sampleCode(fmt.Sprintf("code%d", i), time.Minute)
		c.UserID = uid
		check(t, "CreateCode", s.CreateCode(ctx, c))
		errs := race(2, func(j int) error {
			if j == 0 {
				_, err := s.RedeemCode(ctx, c.Hash, sampleGrant(c.GrantID, c.ClientID, uid, at(0)), sampleRefresh(fmt.Sprintf("rt%d", i), "", time.Hour))
				if errors.Is(err, tokenstore.ErrNotFound) {
					return nil
				}
				return err
			}
			_, err := s.DeleteUser(ctx, uid, at(time.Hour))
			return err
		})
		check(t, "RedeemCode", errs[0])
		check(t, "DeleteUser", errs[1])
		switch g, err := s.GetGrant(ctx, c.GrantID); {
		case errors.Is(err, tokenstore.ErrNotFound):
		case err != nil:
			t.Fatal(err)
		case g.RevokedAt.IsZero():
			t.Fatalf("round %d: a grant stored while its user was deleted is live", i)
		}
		_, err := s.GetRefreshToken(ctx, hash(fmt.Sprintf("rt%d", i)))
		wantErr(t, "refresh token after the user's deletion", err, tokenstore.ErrNotFound)
	}
}

// testConcurrentSetMemberships: nodes starting together each set the
// configured user's businesses; every one of them succeeds.
func testConcurrentSetMemberships(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("u1", "u1@example.com")))
	for _, b := range []string{"a", "b"} {
		check(t, "UpsertBusiness", s.UpsertBusiness(ctx, &tokenstore.Business{ID: b, Name: b}))
	}
	warm(t, s)
	for i, err := range race(contenders, func(int) error { return s.SetMemberships(ctx, "u1", []string{"a", "b"}) }) {
		check(t, fmt.Sprintf("SetMemberships %d", i), err)
	}
	got, err := s.Memberships(ctx, "u1")
	check(t, "Memberships", err)
	if len(got) != 2 {
		t.Fatalf("memberships %+v, want a and b", got)
	}
}

// race runs fn in n goroutines released together.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Go(func() {
			start.Wait()
			errs[i] = fn(i)
		})
	}
	start.Done()
	done.Wait()
	return errs
}

// warm opens as many pooled connections as the contenders can use, so that
// they race on the database rather than queue for connections to be made.
func warm(t *testing.T, s tokenstore.Store) {
	for range 10 {
		st := s.Stats()
		if st.OpenConnections >= min(contenders, st.MaxOpenConnections) {
			return
		}
		race(contenders, func(int) error { return s.Ping(t.Context()) })
	}
}

// oneWinner checks that exactly one error is nil and every other is
// ErrReused, and returns the winner.
func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("goroutines %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, tokenstore.ErrReused):
			t.Fatalf("goroutine %d: %v, want ErrReused", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("nobody won")
	}
	return winner
}

const contenders = 20

func testConcurrentConsumeCode(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	c := sampleCode("code", time.Minute)
	check(t, "CreateCode", s.CreateCode(ctx, c))
	warm(t, s)
	got := make([]*tokenstore.AuthCode, contenders)
	errs := race(contenders, func(i int) error {
		var err error
		got[i], err = s.ConsumeCode(ctx, c.Hash)
		return err
	})
	w := oneWinner(t, errs)
	for i, g := range got {
		if g == nil || g.GrantID != c.GrantID || !g.UsedAt.Equal(got[w].UsedAt) {
			t.Fatalf("goroutine %d got %+v, want the code used at %v", i, g, got[w].UsedAt)
		}
	}
}

// testConcurrentRecordFailures: nodes counting failures of one key
// together lose none, and the feed carries the counts in order.
func testConcurrentRecordFailures(t *testing.T, s tokenstore.Store) {
	warm(t, s)
	const n = 20
	now := time.Now()
	seq := last(t, s)
	counts := make([]int, n)
	errs := race(n, func(i int) error {
		got, err := s.RecordFailures(context.Background(), []string{"k", fmt.Sprint("other", i)}, now, now.Add(-time.Hour), now.Add(time.Hour))
		if err == nil {
			counts[i] = got[0].Count
		}
		return err
	})
	for _, err := range errs {
		check(t, "RecordFailures", err)
	}
	seen := make(map[int]bool)
	for _, c := range counts {
		seen[c] = true
	}
	for c := 1; c <= n; c++ {
		if !seen[c] {
			t.Fatalf("counts %v: %d missing", counts, c)
		}
	}
	cs, err := s.ChangesSince(t.Context(), seq, 0)
	check(t, "ChangesSince", err)
	want := 1
	for _, c := range cs {
		f, ok := tokenstore.ParseFailuresChange(c.Key)
		if !ok || f.Key != "k" {
			continue
		}
		if f.Count != want {
			t.Fatalf("feed carries count %d where %d was due", f.Count, want)
		}
		want++
	}
	equal(t, "counts in the feed", want-1, n)
}

func testGrants(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	g1 := sampleGrant("g1", "c1", "u1", at(0))
	g2 := sampleGrant("g2", "c1", "u2", at(time.Second))
	g3 := sampleGrant("g3", "c2", "u1", at(2*time.Second))
	cc := sampleGrant("cc", "c2", "", at(3*time.Second)) // client credentials
	cc.RevokedAt = at(4 * time.Second)
	for _, g := range []*tokenstore.Grant{g1, g2, g3, cc} {
		check(t, "CreateGrant", s.CreateGrant(ctx, g, nil))
	}
	got, err := s.GetGrant(ctx, "g1")
	check(t, "GetGrant", err)
	equal(t, "GetGrant", got, g1)
	got, err = s.GetGrant(ctx, "cc")
	check(t, "GetGrant", err)
	equal(t, "GetGrant revoked", got, cc)

	for _, tc := range []struct {
		client, user string
		want         []*tokenstore.Grant
	}{
		{"", "", []*tokenstore.Grant{cc, g3, g2, g1}},
		{"c1", "", []*tokenstore.Grant{g2, g1}},
		{"", "u1", []*tokenstore.Grant{g3, g1}},
		{"c2", "u1", []*tokenstore.Grant{g3}},
		{"c3", "", nil},
	} {
		list, err := s.ListGrants(ctx, tc.client, tc.user)
		check(t, "ListGrants", err)
		equal(t, fmt.Sprintf("ListGrants(%q, %q) newest first", tc.client, tc.user), list, tc.want)
	}

	// Live grants of a user: revoked and expired ones left out, a grant
	// stored without an expiry kept.
	now := at(10 * time.Second)
	expired := sampleGrant("g-expired", "c1", "u1", at(0))
	expired.ExpiresAt = now
	noExpiry := sampleGrant("g-noexp", "c2", "u1", at(0))
	noExpiry.ExpiresAt = time.Time{}
	revoked := sampleGrant("g-revoked", "c1", "u1", at(5*time.Second))
	revoked.RevokedAt = at(6 * time.Second)
	for _, g := range []*tokenstore.Grant{expired, noExpiry, revoked} {
		check(t, "CreateGrant", s.CreateGrant(ctx, g, nil))
	}
	for _, tc := range []struct {
		user, client string
		want         []*tokenstore.Grant
	}{
		{"u1", "", []*tokenstore.Grant{g3, noExpiry, g1}},
		{"u1", "c1", []*tokenstore.Grant{g1}},
		{"u2", "c2", nil},
	} {
		list, err := s.ListLiveGrants(ctx, tc.user, tc.client, now)
		check(t, "ListLiveGrants", err)
		equal(t, fmt.Sprintf("ListLiveGrants(%q, %q)", tc.user, tc.client), list, tc.want)
	}
	if _, err := s.ListLiveGrants(ctx, "", "", now); err == nil {
		t.Error("ListLiveGrants of no user succeeded")
	}

	// The refresh token's grant id defaults to the grant's; another is refused.
	rt := sampleRefresh("rt", "", time.Hour)
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g4", "c1", "u1", at(0)), rt))
	if rt.GrantID != "g4" {
		t.Fatalf("refresh token GrantID = %q, want g4", rt.GrantID)
	}
	if err := s.CreateGrant(ctx, sampleGrant("g5", "c1", "u1", at(0)), sampleRefresh("rt5", "g1", time.Hour)); err == nil {
		t.Fatal("CreateGrant with another grant's refresh token succeeded")
	}
}

func testRefreshTokens(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	rt1 := sampleRefresh("rt1", "g1", time.Hour)
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "client1", "u1", at(0)), rt1))
	got, err := s.GetRefreshToken(ctx, rt1.Hash)
	check(t, "GetRefreshToken", err)
	equal(t, "GetRefreshToken", got, rt1)

	rt2 := sampleRefresh("rt2", "", time.Hour)
	rt2.ClientID = ""
	old, err := s.RotateRefreshToken(ctx, rt1.Hash, rt2)
	check(t, "RotateRefreshToken", err)
	if old.UsedAt.IsZero() {
		t.Fatal("rotated token not marked used")
	}
	want := *rt1
	want.UsedAt = old.UsedAt
	equal(t, "rotated token", old, &want)
	if rt2.GrantID != "g1" || rt2.ClientID != "client1" {
		t.Fatalf("next token not filled from the old one: %+v", rt2)
	}
	got, err = s.GetRefreshToken(ctx, rt2.Hash)
	check(t, "GetRefreshToken next", err)
	equal(t, "next token", got, rt2)
	g, err := s.GetGrant(ctx, "g1")
	check(t, "GetGrant", err)
	if !g.RefreshedAt.Equal(old.UsedAt) {
		t.Fatalf("grant RefreshedAt = %v, want the rotation's time %v", g.RefreshedAt, old.UsedAt)
	}
	got, err = s.GetRefreshToken(ctx, rt1.Hash)
	check(t, "GetRefreshToken used", err)
	equal(t, "used token still readable", got, &want)

	reused, err := s.RotateRefreshToken(ctx, rt1.Hash, sampleRefresh("rt3", "g1", time.Hour))
	wantErr(t, "RotateRefreshToken reuse", err, tokenstore.ErrReused)
	equal(t, "reused token", reused, &want)
	_, err = s.GetRefreshToken(ctx, hash("rt3"))
	wantErr(t, "next token of a reuse", err, tokenstore.ErrNotFound)

	// Another grant's id is refused and leaves the old token unused.
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g2", "client1", "u1", at(0)), nil))
	if _, err := s.RotateRefreshToken(ctx, rt2.Hash, sampleRefresh("rt4", "g2", time.Hour)); err == nil {
		t.Fatal("rotation onto another grant succeeded")
	}
	got, err = s.GetRefreshToken(ctx, rt2.Hash)
	check(t, "GetRefreshToken", err)
	if !got.UsedAt.IsZero() {
		t.Fatal("failed rotation used the token")
	}
}

func testConcurrentRotate(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	rt := sampleRefresh("rt", "g1", time.Hour)
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "client1", "u1", at(0)), rt))
	warm(t, s)
	got := make([]*tokenstore.RefreshToken, contenders)
	errs := race(contenders, func(i int) error {
		var err error
		got[i], err = s.RotateRefreshToken(ctx, rt.Hash, sampleRefresh(fmt.Sprint("next", i), "g1", time.Hour))
		return err
	})
	w := oneWinner(t, errs)
	for i := range contenders {
		if got[i] == nil || got[i].GrantID != "g1" || got[i].UsedAt.IsZero() {
			t.Fatalf("goroutine %d got %+v, want the used token", i, got[i])
		}
		_, err := s.GetRefreshToken(ctx, hash(fmt.Sprint("next", i)))
		if i == w {
			check(t, "winner's next token", err)
		} else {
			wantErr(t, "loser's next token", err, tokenstore.ErrNotFound)
		}
	}
}

// testCreateRevokedGrant: a replayed code may revoke a grant id before the
// first exchange stores the grant; the grant must then never come alive.
func testCreateRevokedGrant(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "RevokeGrant", s.RevokeGrant(ctx, "g-early", time.Now().Add(time.Hour)))
	err := s.CreateGrant(ctx, sampleGrant("g-early", "client1", "u1", at(0)), sampleRefresh("rt-early", "g-early", time.Hour))
	wantErr(t, "CreateGrant of a revoked id", err, tokenstore.ErrRevoked)
	_, err = s.GetGrant(ctx, "g-early")
	wantErr(t, "GetGrant", err, tokenstore.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, hash("rt-early"))
	wantErr(t, "GetRefreshToken", err, tokenstore.ErrNotFound)
	// Another id is unaffected.
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g-late", "client1", "u1", at(0)), nil))
}

// testConcurrentCreateRevoke races a grant's creation with its revocation,
// many times: whichever wins, the grant must end revoked with no live
// refresh token.
func testConcurrentCreateRevoke(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	warm(t, s)
	for i := range 30 {
		id := fmt.Sprint("race", i)
		rt := sampleRefresh("rt-"+id, id, time.Hour)
		errs := race(2, func(j int) error {
			if j == 0 {
				return s.CreateGrant(ctx, sampleGrant(id, "client1", "u1", at(0)), rt)
			}
			return s.RevokeGrant(ctx, id, time.Now().Add(time.Hour))
		})
		if errs[1] != nil {
			t.Fatalf("round %d: RevokeGrant: %v", i, errs[1])
		}
		if errs[0] != nil && !errors.Is(errs[0], tokenstore.ErrRevoked) {
			t.Fatalf("round %d: CreateGrant: %v", i, errs[0])
		}
		if g, err := s.GetGrant(ctx, id); err == nil && g.RevokedAt.IsZero() {
			t.Fatalf("round %d: the grant is live after its revocation", i)
		}
		if _, err := s.GetRefreshToken(ctx, rt.Hash); !errors.Is(err, tokenstore.ErrNotFound) {
			t.Fatalf("round %d: a refresh token of the revoked grant survives: %v", i, err)
		}
	}
}

func testRevokeGrant(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "client1", "u1", at(0)), sampleRefresh("rt1", "g1", time.Hour)))
	_, err := s.RotateRefreshToken(ctx, hash("rt1"), sampleRefresh("rt2", "g1", time.Hour))
	check(t, "RotateRefreshToken", err)
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g2", "client1", "u1", at(0)), sampleRefresh("other", "g2", time.Hour)))
	seq := last(t, s)
	drain(s)

	until := time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()
	check(t, "RevokeGrant", s.RevokeGrant(ctx, "g1", until))
	select {
	case <-s.Wakeup():
	case <-time.After(time.Second):
		t.Fatal("RevokeGrant did not signal Wakeup")
	}

	g, err := s.GetGrant(ctx, "g1")
	check(t, "GetGrant", err)
	if g.RevokedAt.IsZero() || time.Since(g.RevokedAt) > time.Minute {
		t.Fatalf("RevokedAt = %v, want about now", g.RevokedAt)
	}
	for _, secret := range []string{"rt1", "rt2"} {
		_, err := s.GetRefreshToken(ctx, hash(secret))
		wantErr(t, "GetRefreshToken "+secret, err, tokenstore.ErrNotFound)
	}
	_, err = s.RotateRefreshToken(ctx, hash("rt2"), sampleRefresh("rt3", "g1", time.Hour))
	wantErr(t, "RotateRefreshToken of a revoked grant", err, tokenstore.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, hash("other"))
	check(t, "another grant's token survives", err)

	revs, err := s.ActiveRevocations(ctx, time.Now())
	check(t, "ActiveRevocations", err)
	if len(revs) != 1 || revs[0].Kind != tokenstore.RevokeGrant || revs[0].ID != "g1" || !revs[0].ExpiresAt.Equal(until) {
		t.Fatalf("ActiveRevocations = %s", deref(revs))
	}
	equal(t, "changes", changes(t, s, seq), []string{"revocation grant:g1"})

	// Revoking again, or revoking a grant without a row, is not an error and
	// is still announced.
	check(t, "RevokeGrant again", s.RevokeGrant(ctx, "g1", until))
	check(t, "RevokeGrant stateless", s.RevokeGrant(ctx, "stateless", until))
	g2, err := s.GetGrant(ctx, "g1")
	check(t, "GetGrant", err)
	equal(t, "RevokedAt after a second revocation", g2.RevokedAt, g.RevokedAt)
	equal(t, "changes", changes(t, s, seq),
		[]string{"revocation grant:g1", "revocation grant:g1", "revocation grant:stateless"})
}

func testConsents(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	c := &tokenstore.Consent{UserID: "u1", ClientID: "c1", BusinessID: "biz1", Scopes: []string{"read:invoices"}, CreatedAt: at(0)}
	check(t, "SaveConsent", s.SaveConsent(ctx, c))
	got, err := s.GetConsent(ctx, "u1", "c1", "biz1")
	check(t, "GetConsent", err)
	equal(t, "GetConsent", got, c)

	c2 := &tokenstore.Consent{UserID: "u1", ClientID: "c1", BusinessID: "biz1",
		Scopes: []string{"read:invoices", "write:invoices"}, CreatedAt: at(time.Minute)}
	check(t, "SaveConsent upsert", s.SaveConsent(ctx, c2))
	got, err = s.GetConsent(ctx, "u1", "c1", "biz1")
	check(t, "GetConsent", err)
	equal(t, "GetConsent after upsert", got, c2)

	for _, k := range [][3]string{{"u1", "c1", "biz2"}, {"u1", "c2", "biz1"}, {"u2", "c1", "biz1"}} {
		check(t, "SaveConsent", s.SaveConsent(ctx, &tokenstore.Consent{UserID: k[0], ClientID: k[1], BusinessID: k[2]}))
	}
	check(t, "DeleteConsents", s.DeleteConsents(ctx, "u1", "c1"))
	for _, tc := range []struct {
		user, client, business string
		want                   error
	}{
		{"u1", "c1", "biz1", tokenstore.ErrNotFound},
		{"u1", "c1", "biz2", tokenstore.ErrNotFound},
		{"u1", "c2", "biz1", nil},
		{"u2", "c1", "biz1", nil},
	} {
		_, err := s.GetConsent(ctx, tc.user, tc.client, tc.business)
		wantErr(t, fmt.Sprintf("GetConsent(%s, %s, %s) after DeleteConsents(u1, c1)", tc.user, tc.client, tc.business), err, tc.want)
	}
	check(t, "DeleteConsents of every client", s.DeleteConsents(ctx, "u1", ""))
	_, err = s.GetConsent(ctx, "u1", "c2", "biz1")
	wantErr(t, "GetConsent", err, tokenstore.ErrNotFound)
	check(t, "DeleteConsents of nothing", s.DeleteConsents(ctx, "nobody", "c1"))
}

// testConsentResources: a consent's resources round-trip, an upsert
// replaces them, and a consent whose resources are unknown (a NULL column,
// as migration 0011 leaves rows from before it) reads back as unknown,
// not as "no limit".
func testConsentResources(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	get := func(what string) *tokenstore.Consent {
		t.Helper()
		got, err := s.GetConsent(ctx, "u1", "c1", "biz1")
		check(t, what, err)
		return got
	}
	limited := &tokenstore.Consent{UserID: "u1", ClientID: "c1", BusinessID: "biz1", Scopes: []string{"read:invoices"},
		Resources: []string{"https://api.example.test/crm", "https://api.example.test/accounting"}, CreatedAt: at(0)}
	check(t, "SaveConsent limited", s.SaveConsent(ctx, limited))
	equal(t, "GetConsent limited", get("GetConsent"), limited)

	unknown := &tokenstore.Consent{UserID: "u1", ClientID: "c1", BusinessID: "biz1", Scopes: []string{"read:invoices"},
		ResourcesUnknown: true, CreatedAt: at(time.Minute)}
	check(t, "SaveConsent unknown", s.SaveConsent(ctx, unknown))
	equal(t, "GetConsent unknown", get("GetConsent"), unknown)

	unlimited := &tokenstore.Consent{UserID: "u1", ClientID: "c1", BusinessID: "biz1", Scopes: []string{"read:invoices"},
		CreatedAt: at(2 * time.Minute)}
	check(t, "SaveConsent without resources", s.SaveConsent(ctx, unlimited))
	equal(t, "GetConsent without resources", get("GetConsent"), unlimited)

	// A limit replaces no limit: the upsert writes the column too.
	limited.CreatedAt = at(3 * time.Minute)
	check(t, "SaveConsent limited again", s.SaveConsent(ctx, limited))
	equal(t, "GetConsent limited again", get("GetConsent"), limited)

	// Consent still ends with the grant, whatever its resources.
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "c1", "u1", at(0)), nil))
	check(t, "RevokeGrant", s.RevokeGrant(ctx, "g1", at(time.Hour)))
	_, err := s.GetConsent(ctx, "u1", "c1", "biz1")
	wantErr(t, "GetConsent after RevokeGrant", err, tokenstore.ErrNotFound)
}

// testRevokeGrantForgetsConsent: revoking a live grant forgets the consent
// of its user to its client for its business, in the same commit, and no
// other; revoking it again does not forget a consent given since.
func testRevokeGrantForgetsConsent(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "c1", "u1", at(0)), sampleRefresh("rt1", "g1", time.Hour)))
	cc := sampleGrant("cc", "c1", "", at(0)) // client credentials: no user, no consent
	check(t, "CreateGrant", s.CreateGrant(ctx, cc, nil))
	for _, k := range [][3]string{{"u1", "c1", "biz1"}, {"u1", "c1", "biz2"}, {"u1", "c2", "biz1"}, {"u2", "c1", "biz1"}, {"", "c1", "biz1"}} {
		check(t, "SaveConsent", s.SaveConsent(ctx, &tokenstore.Consent{UserID: k[0], ClientID: k[1], BusinessID: k[2], Scopes: []string{"read:invoices"}}))
	}
	check(t, "RevokeGrant", s.RevokeGrant(ctx, "g1", at(time.Hour)))
	check(t, "RevokeGrant of a client-credentials grant", s.RevokeGrant(ctx, "cc", at(time.Hour)))
	for _, tc := range []struct {
		user, client, business string
		want                   error
	}{
		{"u1", "c1", "biz1", tokenstore.ErrNotFound},
		{"u1", "c1", "biz2", nil},
		{"u1", "c2", "biz1", nil},
		{"u2", "c1", "biz1", nil},
		{"", "c1", "biz1", nil},
	} {
		_, err := s.GetConsent(ctx, tc.user, tc.client, tc.business)
		wantErr(t, fmt.Sprintf("GetConsent(%s, %s, %s) after RevokeGrant(g1)", tc.user, tc.client, tc.business), err, tc.want)
	}

	// A consent given after the grant ended belongs to the next grant.
	check(t, "SaveConsent again", s.SaveConsent(ctx, &tokenstore.Consent{UserID: "u1", ClientID: "c1", BusinessID: "biz1", Scopes: []string{"read:invoices"}}))
	check(t, "RevokeGrant again", s.RevokeGrant(ctx, "g1", at(time.Hour)))
	_, err := s.GetConsent(ctx, "u1", "c1", "biz1")
	check(t, "GetConsent after revoking a revoked grant", err)

	// The next grant, once revoked, forgets it in turn.
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g2", "c1", "u1", at(0)), nil))
	check(t, "RevokeGrant", s.RevokeGrant(ctx, "g2", at(time.Hour)))
	_, err = s.GetConsent(ctx, "u1", "c1", "biz1")
	wantErr(t, "GetConsent after revoking the next grant", err, tokenstore.ErrNotFound)
}

func testKeys(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	keys, err := s.ListKeys(ctx)
	check(t, "ListKeys", err)
	if len(keys) != 0 {
		t.Fatalf("ListKeys on an empty store = %s", deref(keys))
	}
	seq := last(t, s)

	k1 := sampleKey("k1", at(0))
	got, err := s.InitKey(ctx, k1)
	check(t, "InitKey", err)
	equal(t, "InitKey on an empty store", got, k1)
	got, err = s.InitKey(ctx, sampleKey("k-other", at(time.Second)))
	check(t, "InitKey", err)
	equal(t, "InitKey with a key present", got, k1)

	k2 := sampleKey("k2", at(time.Minute))
	check(t, "AddKey", s.AddKey(ctx, k2))
	keys, err = s.ListKeys(ctx)
	check(t, "ListKeys", err)
	if len(keys) != 2 || keys[0].ID != "k2" || keys[1].ID != "k1" {
		t.Fatalf("ListKeys = %s, want k2, k1 (newest first)", deref(keys))
	}
	equal(t, "active key", keys[0], k2)
	if keys[1].RetiredAt.IsZero() || time.Since(keys[1].RetiredAt) > time.Minute {
		t.Fatalf("k1 RetiredAt = %v, want about now", keys[1].RetiredAt)
	}
	got, err = s.InitKey(ctx, sampleKey("k-other", at(time.Hour)))
	check(t, "InitKey", err)
	equal(t, "InitKey after rotation", got, k2)

	k3 := sampleKey("k3", at(2*time.Minute))
	check(t, "AddKey", s.AddKey(ctx, k3))
	equal(t, "changes", changes(t, s, seq), []string{"keys ", "keys ", "keys "})

	// Nothing retired before then: no deletion, no change.
	check(t, "DeleteKeysRetiredBefore", s.DeleteKeysRetiredBefore(ctx, time.Now().Add(-time.Hour)))
	keys, err = s.ListKeys(ctx)
	check(t, "ListKeys", err)
	if len(keys) != 3 {
		t.Fatalf("ListKeys = %s, want 3 keys", deref(keys))
	}
	check(t, "DeleteKeysRetiredBefore", s.DeleteKeysRetiredBefore(ctx, time.Now().Add(time.Minute)))
	keys, err = s.ListKeys(ctx)
	check(t, "ListKeys", err)
	equal(t, "keys after deleting the retired ones", keys, []*tokenstore.Key{k3})
	equal(t, "changes", changes(t, s, seq), []string{"keys ", "keys ", "keys ", "keys "})
}

func testConcurrentInitKey(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	warm(t, s)
	got := make([]*tokenstore.Key, contenders)
	errs := race(contenders, func(i int) error {
		var err error
		got[i], err = s.InitKey(ctx, sampleKey(fmt.Sprint("k", i), at(time.Duration(i)*time.Millisecond)))
		return err
	})
	for i, err := range errs {
		check(t, fmt.Sprint("InitKey ", i), err)
	}
	for i := range got {
		if got[i].ID != got[0].ID {
			t.Fatalf("InitKey callers disagree: %s and %s", got[0].ID, got[i].ID)
		}
	}
	keys, err := s.ListKeys(ctx)
	check(t, "ListKeys", err)
	if len(keys) != 1 {
		t.Fatalf("ListKeys = %s, want one key", deref(keys))
	}
	equal(t, "changes", changes(t, s, 0), []string{"keys "})
}

func testRotateKeys(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	seq := last(t, s)
	if _, err := s.RotateKeys(ctx, nil, nil); err == nil {
		t.Fatal("RotateKeys of no key succeeded")
	}
	// An empty store: due sees no active key.
	var seen [][]*tokenstore.Key
	dueIfNone := func(active []*tokenstore.Key) bool {
		seen = append(seen, active)
		return len(active) == 0
	}
	a1, a2 := sampleKey("a1", at(0)), sampleKey("a2", at(0))
	a2.Alg = "RS256"
	ok, err := s.RotateKeys(ctx, []*tokenstore.Key{a1, a2}, dueIfNone)
	check(t, "RotateKeys on an empty store", err)
	if !ok || len(seen) != 1 || len(seen[0]) != 0 {
		t.Fatalf("RotateKeys on an empty store: rotated %v, due saw %s", ok, deref(seen))
	}
	// Not due: nothing stored, nothing retired, no change.
	ok, err = s.RotateKeys(ctx, []*tokenstore.Key{sampleKey("x", at(time.Minute))}, dueIfNone)
	check(t, "RotateKeys not due", err)
	keys, err := s.ListKeys(ctx)
	check(t, "ListKeys", err)
	if ok || len(keys) != 2 || !keys[0].RetiredAt.IsZero() || !keys[1].RetiredAt.IsZero() {
		t.Fatalf("RotateKeys not due: rotated %v, keys %s", ok, deref(keys))
	}
	if ids := []string{seen[1][0].ID, seen[1][1].ID}; len(seen[1]) != 2 || !slices.Contains(ids, "a1") || !slices.Contains(ids, "a2") {
		t.Fatalf("due saw %s, want the two active keys", deref(seen[1]))
	}
	// Always (nil due): the new pair is active, the old pair retired.
	b1, b2 := sampleKey("b1", at(time.Hour)), sampleKey("b2", at(time.Hour))
	ok, err = s.RotateKeys(ctx, []*tokenstore.Key{b1, b2}, nil)
	check(t, "RotateKeys", err)
	keys, err = s.ListKeys(ctx)
	check(t, "ListKeys", err)
	active := map[string]bool{}
	for _, k := range keys {
		active[k.ID] = k.RetiredAt.IsZero()
	}
	if !ok || !reflect.DeepEqual(active, map[string]bool{"a1": false, "a2": false, "b1": true, "b2": true}) {
		t.Fatalf("after RotateKeys: rotated %v, active %v", ok, active)
	}
	equal(t, "changes", changes(t, s, seq), []string{"keys ", "keys "})
}

// testConcurrentRotateKeys: nodes that find the key set due at the same
// moment make one rotation between them.
func testConcurrentRotateKeys(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "AddKey", s.AddKey(ctx, sampleKey("old", at(-48*time.Hour))))
	warm(t, s)
	seq := last(t, s)
	dueBefore := at(-24 * time.Hour)
	rotated := make([]bool, contenders)
	errs := race(contenders, func(i int) error {
		var err error
		rotated[i], err = s.RotateKeys(ctx, []*tokenstore.Key{sampleKey(fmt.Sprint("k", i), at(0))},
			func(active []*tokenstore.Key) bool { return len(active) == 0 || active[0].CreatedAt.Before(dueBefore) })
		return err
	})
	n := 0
	for i, err := range errs {
		check(t, fmt.Sprint("RotateKeys ", i), err)
		if rotated[i] {
			n++
		}
	}
	keys, err := s.ListKeys(ctx)
	check(t, "ListKeys", err)
	if n != 1 || len(keys) != 2 {
		t.Fatalf("%d of %d racing callers rotated; keys %s", n, contenders, deref(keys))
	}
	equal(t, "changes", changes(t, s, seq), []string{"keys "})
}

func testUsers(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	seq := last(t, s)
	bob := sampleUser("u-bob", "Bob@Example.com")
	alice := sampleUser("u-alice", "alice@example.com")
	check(t, "CreateUser", s.CreateUser(ctx, bob))
	check(t, "CreateUser", s.CreateUser(ctx, alice))
	if bob.Email != "bob@example.com" {
		t.Fatalf("e-mail stored as %q, want it lower-cased", bob.Email)
	}
	got, err := s.GetUser(ctx, "u-bob")
	check(t, "GetUser", err)
	equal(t, "GetUser", got, bob)
	got, err = s.GetUserByEmail(ctx, "BOB@example.COM")
	check(t, "GetUserByEmail", err)
	equal(t, "GetUserByEmail ignores case", got, bob)

	users, err := s.ListUsers(ctx)
	check(t, "ListUsers", err)
	equal(t, "ListUsers (by e-mail)", users, []*tokenstore.User{alice, bob})

	upd := &tokenstore.User{ID: "u-bob", Email: "Robert@Example.com", Name: "Robert",
		PasswordHash: "$2a$10$other", CurrentBusiness: "biz2", CreatedAt: at(time.Hour)}
	check(t, "UpdateUser", s.UpdateUser(ctx, upd))
	got, err = s.GetUserByEmail(ctx, "robert@example.com")
	check(t, "GetUserByEmail", err)
	want := *upd
	want.CreatedAt = bob.CreatedAt
	equal(t, "updated user", got, &want)
	_, err = s.GetUserByEmail(ctx, "bob@example.com")
	wantErr(t, "old e-mail", err, tokenstore.ErrNotFound)

	_, err = s.DeleteUser(ctx, "u-alice", at(time.Hour))
	check(t, "DeleteUser", err)
	_, err = s.GetUser(ctx, "u-alice")
	wantErr(t, "GetUser after delete", err, tokenstore.ErrNotFound)
	// The e-mail is free again.
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("u-alice2", "alice@example.com")))

	equal(t, "changes", changes(t, s, seq), []string{"user u-bob", "user u-alice"})
}

func testBusinesses(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	b2 := &tokenstore.Business{ID: "biz2", Name: "Two", CreatedAt: at(0)}
	b1 := &tokenstore.Business{ID: "biz1", Name: "One", CreatedAt: at(time.Second)}
	check(t, "UpsertBusiness", s.UpsertBusiness(ctx, b2))
	check(t, "UpsertBusiness", s.UpsertBusiness(ctx, b1))
	got, err := s.GetBusiness(ctx, "biz2")
	check(t, "GetBusiness", err)
	equal(t, "GetBusiness", got, b2)

	check(t, "UpsertBusiness rename", s.UpsertBusiness(ctx, &tokenstore.Business{ID: "biz2", Name: "Deux", CreatedAt: at(time.Hour)}))
	got, err = s.GetBusiness(ctx, "biz2")
	check(t, "GetBusiness", err)
	equal(t, "renamed business keeps its creation time", got, &tokenstore.Business{ID: "biz2", Name: "Deux", CreatedAt: at(0)})

	list, err := s.ListBusinesses(ctx)
	check(t, "ListBusinesses", err)
	equal(t, "ListBusinesses (by id)", list, []*tokenstore.Business{b1, got})

	// CreateBusiness never renames: a taken id is ErrConflict.
	wantErr(t, "CreateBusiness of a taken id", s.CreateBusiness(ctx, &tokenstore.Business{ID: "biz2", Name: "Zwei"}), tokenstore.ErrConflict)
	got, err = s.GetBusiness(ctx, "biz2")
	check(t, "GetBusiness", err)
	equal(t, "a refused CreateBusiness leaves the name", got.Name, "Deux")
	b3 := &tokenstore.Business{ID: "biz3", Name: "Three", CreatedAt: at(2 * time.Second)}
	check(t, "CreateBusiness", s.CreateBusiness(ctx, b3))
	got, err = s.GetBusiness(ctx, "biz3")
	check(t, "GetBusiness", err)
	equal(t, "CreateBusiness", got, b3)
}

func testMemberships(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("u1", "u1@example.com")))
	var bs []*tokenstore.Business
	for _, id := range []string{"c", "a", "b"} {
		b := &tokenstore.Business{ID: id, Name: "Business " + id, CreatedAt: at(0)}
		check(t, "UpsertBusiness", s.UpsertBusiness(ctx, b))
		bs = append(bs, b)
	}
	c, a, b := bs[0], bs[1], bs[2]
	seq := last(t, s)

	for _, tc := range []struct {
		set  []string
		want []*tokenstore.Business
	}{
		{[]string{"c", "a"}, []*tokenstore.Business{a, c}},
		{[]string{"b", "b", "a"}, []*tokenstore.Business{a, b}},
		{nil, nil},
	} {
		check(t, "SetMemberships", s.SetMemberships(ctx, "u1", tc.set))
		got, err := s.Memberships(ctx, "u1")
		check(t, "Memberships", err)
		equal(t, fmt.Sprintf("Memberships after SetMemberships(%v), sorted by id", tc.set), got, tc.want)
	}
	got, err := s.Memberships(ctx, "nobody")
	check(t, "Memberships of an unknown user", err)
	equal(t, "Memberships of an unknown user", got, []*tokenstore.Business(nil))

	// A failed replacement keeps the old memberships.
	check(t, "SetMemberships", s.SetMemberships(ctx, "u1", []string{"a"}))
	wantErr(t, "SetMemberships with an unknown business", s.SetMemberships(ctx, "u1", []string{"b", "nope"}), tokenstore.ErrNotFound)
	got, err = s.Memberships(ctx, "u1")
	check(t, "Memberships", err)
	equal(t, "Memberships after a failed SetMemberships", got, []*tokenstore.Business{a})

	_, err = s.DeleteUser(ctx, "u1", at(time.Hour))
	check(t, "DeleteUser", err)
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("u1", "u1@example.com")))
	got, err = s.Memberships(ctx, "u1")
	check(t, "Memberships", err)
	equal(t, "Memberships of a re-created user", got, []*tokenstore.Business(nil))

	equal(t, "changes", changes(t, s, seq), []string{"user u1", "user u1", "user u1", "user u1", "user u1"})
}

func testRevocations(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond).UTC()
	seq := last(t, s)
	client := &tokenstore.Revocation{Kind: tokenstore.RevokeClient, ID: "c1", CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
	grant := &tokenstore.Revocation{Kind: tokenstore.RevokeGrant, ID: "g1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	expired := &tokenstore.Revocation{Kind: tokenstore.RevokeGrant, ID: "g0", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	for _, r := range []*tokenstore.Revocation{client, grant, expired} {
		check(t, "AddRevocation", s.AddRevocation(ctx, r))
	}
	revs, err := s.ActiveRevocations(ctx, now)
	check(t, "ActiveRevocations", err)
	equal(t, "ActiveRevocations (unexpired, oldest first)", revs, []*tokenstore.Revocation{client, grant})

	// Idempotent on Kind+ID: later times win, earlier ones change nothing.
	for _, r := range []*tokenstore.Revocation{
		{Kind: tokenstore.RevokeClient, ID: "c1", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Minute)},
		{Kind: tokenstore.RevokeGrant, ID: "g1", CreatedAt: now.Add(time.Second), ExpiresAt: now.Add(2 * time.Hour)},
	} {
		check(t, "AddRevocation again", s.AddRevocation(ctx, r))
	}
	revs, err = s.ActiveRevocations(ctx, now)
	check(t, "ActiveRevocations", err)
	equal(t, "ActiveRevocations after re-adding", revs, []*tokenstore.Revocation{client,
		{Kind: tokenstore.RevokeGrant, ID: "g1", CreatedAt: now.Add(time.Second), ExpiresAt: now.Add(2 * time.Hour)}})
	revs, err = s.ActiveRevocations(ctx, now.Add(90*time.Minute))
	check(t, "ActiveRevocations later", err)
	if len(revs) != 1 || revs[0].ID != "g1" {
		t.Fatalf("ActiveRevocations in 90 minutes = %s, want g1 only", deref(revs))
	}

	equal(t, "changes", changes(t, s, seq), []string{"revocation client:c1", "revocation grant:g1",
		"revocation grant:g0", "revocation client:c1", "revocation grant:g1"})

	for _, r := range []*tokenstore.Revocation{
		{Kind: "user", ID: "u1", ExpiresAt: now.Add(time.Hour)},
		{Kind: tokenstore.RevokeGrant, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := s.AddRevocation(ctx, r); err == nil {
			t.Fatalf("AddRevocation(%+v) succeeded", r)
		}
	}
}

func testFailures(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond).UTC()
	expires := now.Add(time.Hour)
	seq := last(t, s)
	record := func(at time.Time, keys ...string) []tokenstore.Failures {
		t.Helper()
		got, err := s.RecordFailures(ctx, keys, at, at.Add(-15*time.Minute), at.Add(time.Hour))
		check(t, "RecordFailures", err)
		return got
	}

	equal(t, "first failures", record(now, "a:1", "ip:1"), []tokenstore.Failures{
		{Key: "a:1", Count: 1, LastAt: now, ExpiresAt: expires},
		{Key: "ip:1", Count: 1, LastAt: now, ExpiresAt: expires}})
	record(now.Add(time.Second), "a:1")
	got := record(now.Add(2*time.Second), "a:1")
	equal(t, "third failure counts 3", got, []tokenstore.Failures{
		{Key: "a:1", Count: 3, LastAt: now.Add(2 * time.Second), ExpiresAt: expires.Add(2 * time.Second)}})
	// A failure recorded with an older clock (another node's) counts but
	// moves neither the last failure nor the expiry back.
	got = record(now.Add(time.Second), "a:1")
	equal(t, "failure from a slower clock", got, []tokenstore.Failures{
		{Key: "a:1", Count: 4, LastAt: now.Add(2 * time.Second), ExpiresAt: expires.Add(2 * time.Second)}})

	list, err := s.ListFailures(ctx, now)
	check(t, "ListFailures", err)
	equal(t, "ListFailures", list, []tokenstore.Failures{
		{Key: "a:1", Count: 4, LastAt: now.Add(2 * time.Second), ExpiresAt: expires.Add(2 * time.Second)},
		{Key: "ip:1", Count: 1, LastAt: now, ExpiresAt: expires}})
	list, err = s.ListFailures(ctx, expires.Add(time.Second))
	check(t, "ListFailures later", err)
	equal(t, "ListFailures once ip:1 expired", len(list), 1)

	// A failure after a quiet spell longer than the window counts from 1.
	later := now.Add(20 * time.Minute)
	equal(t, "failure after the window", record(later, "a:1"), []tokenstore.Failures{
		{Key: "a:1", Count: 1, LastAt: later, ExpiresAt: later.Add(time.Hour)}})

	check(t, "ClearFailures", s.ClearFailures(ctx, []string{"a:1", "unknown"}, later))
	list, err = s.ListFailures(ctx, now)
	check(t, "ListFailures after clearing", err)
	equal(t, "ListFailures after clearing", list, []tokenstore.Failures{
		{Key: "ip:1", Count: 1, LastAt: now, ExpiresAt: expires}})

	// Every count reaches the feed, in order, and decodes; clearing an
	// unknown key announces nothing.
	var feed []tokenstore.Failures
	cs, err := s.ChangesSince(ctx, seq, 0)
	check(t, "ChangesSince", err)
	for _, c := range cs {
		if c.Kind != tokenstore.ChangeFailures {
			t.Fatalf("unexpected change %+v", c)
		}
		f, ok := tokenstore.ParseFailuresChange(c.Key)
		if !ok {
			t.Fatalf("ParseFailuresChange(%q) failed", c.Key)
		}
		feed = append(feed, f)
	}
	ms := func(d time.Duration) time.Time { return now.Add(d) }
	equal(t, "feed", feed, []tokenstore.Failures{
		{Key: "a:1", Count: 1, LastAt: ms(0)}, {Key: "ip:1", Count: 1, LastAt: ms(0)},
		{Key: "a:1", Count: 2, LastAt: ms(time.Second)}, {Key: "a:1", Count: 3, LastAt: ms(2 * time.Second)},
		{Key: "a:1", Count: 4, LastAt: ms(2 * time.Second)}, {Key: "a:1", Count: 1, LastAt: later},
		{Key: "a:1", Count: 0, LastAt: later}})

	// Prune deletes expired records.
	check(t, "Prune", s.Prune(ctx, expires.Add(time.Second)))
	list, err = s.ListFailures(ctx, time.Time{})
	check(t, "ListFailures after Prune", err)
	equal(t, "records after Prune", len(list), 0)

	// Keys the feed encoding cannot carry are refused.
	for _, k := range []string{"", "a b", "a\n", strings.Repeat("k", 129)} {
		if _, err := s.RecordFailures(ctx, []string{k}, now, now, expires); err == nil {
			t.Fatalf("RecordFailures(%q) succeeded", k)
		}
	}
	for _, bad := range []string{"", "k", "k 1", "k x 1", "k 1 x", "k -1 5"} {
		if _, ok := tokenstore.ParseFailuresChange(bad); ok {
			t.Fatalf("ParseFailuresChange(%q) succeeded", bad)
		}
	}
}

func testChangeFeed(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	equal(t, "LastChange of an empty store", last(t, s), int64(0))
	cs, err := s.ChangesSince(ctx, 0, 10)
	check(t, "ChangesSince", err)
	if len(cs) != 0 {
		t.Fatalf("ChangesSince on an empty store = %+v", cs)
	}

	// Writes that invalidate nothing are not in the feed.
	check(t, "CreateCode", s.CreateCode(ctx, sampleCode("code", time.Minute)))
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "c1", "u1", at(0)), sampleRefresh("rt", "g1", time.Hour)))
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("u1", "u1@example.com")))
	check(t, "UpsertBusiness", s.UpsertBusiness(ctx, &tokenstore.Business{ID: "b1", Name: "B"}))
	check(t, "SaveConsent", s.SaveConsent(ctx, &tokenstore.Consent{UserID: "u1", ClientID: "c1", BusinessID: "b1"}))
	equal(t, "LastChange after writes that invalidate nothing", last(t, s), int64(0))

	check(t, "CreateClient", s.CreateClient(ctx, sampleClient("c1")))
	check(t, "AddKey", s.AddKey(ctx, sampleKey("k1", at(0))))
	check(t, "SetMemberships", s.SetMemberships(ctx, "u1", []string{"b1"}))
	check(t, "RevokeGrant", s.RevokeGrant(ctx, "g1", at(time.Hour)))
	check(t, "AddRevocation", s.AddRevocation(ctx, &tokenstore.Revocation{Kind: tokenstore.RevokeClient, ID: "c1", ExpiresAt: at(time.Hour)}))
	check(t, "UpdateUser", s.UpdateUser(ctx, sampleUser("u1", "u1@example.com")))

	want := []string{"client c1", "keys ", "user u1", "revocation grant:g1", "revocation client:c1", "user u1"}
	equal(t, "ChangesSince(0)", changes(t, s, 0), want)
	all, err := s.ChangesSince(ctx, 0, 0)
	check(t, "ChangesSince", err)
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("changes out of order: %+v", all)
		}
	}
	equal(t, "LastChange", last(t, s), all[len(all)-1].Seq)

	page, err := s.ChangesSince(ctx, all[1].Seq, 2)
	check(t, "ChangesSince with a limit", err)
	equal(t, "a page of changes", page, all[2:4])
	page, err = s.ChangesSince(ctx, all[len(all)-1].Seq, 10)
	check(t, "ChangesSince the last", err)
	if len(page) != 0 {
		t.Fatalf("ChangesSince(last) = %+v, want none", page)
	}
}

func testWakeup(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateUser", s.CreateUser(ctx, sampleUser("u1", "u1@example.com")))
	check(t, "AddKey", s.AddKey(ctx, sampleKey("k1", at(0))))
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"CreateClient", func() error { return s.CreateClient(ctx, sampleClient("c1")) }},
		{"UpdateClient", func() error { return s.UpdateClient(ctx, sampleClient("c1")) }},
		{"DeleteClient", func() error { _, err := s.DeleteClient(ctx, "c1", at(time.Hour)); return err }},
		{"AddKey", func() error { return s.AddKey(ctx, sampleKey("k2", at(time.Second))) }},
		{"DeleteKeysRetiredBefore", func() error { return s.DeleteKeysRetiredBefore(ctx, time.Now().Add(time.Hour)) }},
		{"UpdateUser", func() error { return s.UpdateUser(ctx, sampleUser("u1", "u1@example.com")) }},
		{"SetMemberships", func() error { return s.SetMemberships(ctx, "u1", nil) }},
		{"DeleteUser", func() error { _, err := s.DeleteUser(ctx, "u1", at(time.Hour)); return err }},
		{"AddRevocation", func() error {
			return s.AddRevocation(ctx, &tokenstore.Revocation{Kind: tokenstore.RevokeGrant, ID: "g1", ExpiresAt: at(time.Hour)})
		}},
		{"RevokeGrant", func() error { return s.RevokeGrant(ctx, "g2", at(time.Hour)) }},
	} {
		drain(s)
		check(t, tc.name, tc.call())
		select {
		case <-s.Wakeup():
		case <-time.After(time.Second):
			t.Fatalf("%s did not signal Wakeup", tc.name)
		}
	}

	// A signal nobody receives does not block writers.
	drain(s)
	for i := range 3 {
		check(t, "CreateClient", s.CreateClient(ctx, sampleClient(fmt.Sprint("x", i))))
	}
}

func testPrune(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	now := time.Now()
	check(t, "CreateCode", s.CreateCode(ctx, sampleCode("live", 3*time.Hour)))
	check(t, "CreateCode", s.CreateCode(ctx, sampleCode("dead", -time.Second)))
	used := sampleCode("used", time.Hour)
	check(t, "CreateCode", s.CreateCode(ctx, used))
	_, err := s.ConsumeCode(ctx, used.Hash)
	check(t, "ConsumeCode", err)
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "c1", "u1", at(0)), sampleRefresh("live", "g1", time.Hour)))
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g2", "c1", "u1", at(0)), sampleRefresh("dead", "g2", -time.Second)))
	check(t, "AddRevocation", s.AddRevocation(ctx, &tokenstore.Revocation{Kind: tokenstore.RevokeGrant, ID: "live", ExpiresAt: now.Add(time.Hour)}))
	check(t, "AddRevocation", s.AddRevocation(ctx, &tokenstore.Revocation{Kind: tokenstore.RevokeGrant, ID: "dead", ExpiresAt: now.Add(-time.Second)}))
	seq := last(t, s)

	check(t, "Prune now", s.Prune(ctx, now))
	_, err = s.ConsumeCode(ctx, hash("dead"))
	wantErr(t, "expired code", err, tokenstore.ErrNotFound)
	_, err = s.ConsumeCode(ctx, used.Hash)
	wantErr(t, "used unexpired code is kept for reuse detection", err, tokenstore.ErrReused)
	_, err = s.RotateRefreshToken(ctx, hash("dead"), sampleRefresh("x", "g2", time.Hour))
	wantErr(t, "expired refresh token", err, tokenstore.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, hash("live"))
	check(t, "live refresh token", err)
	revs, err := s.ActiveRevocations(ctx, now.Add(-time.Hour))
	check(t, "ActiveRevocations", err)
	if len(revs) != 1 || revs[0].ID != "live" {
		t.Fatalf("revocations after Prune = %s, want the live one only", deref(revs))
	}
	equal(t, "changes younger than the retention are kept", len(changes(t, s, 0)), 2)

	// Changes older than ChangeRetention go, but the newest stays so that
	// LastChange never goes back.
	check(t, "Prune later", s.Prune(ctx, now.Add(tokenstore.ChangeRetention+time.Minute)))
	equal(t, "changes after a late Prune", changes(t, s, 0), []string{"revocation grant:dead"})
	equal(t, "LastChange after Prune", last(t, s), seq)
	_, err = s.ConsumeCode(ctx, hash("live"))
	check(t, "live code", err)
}

func testErrorsCarryNoSecrets(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	c := sampleCode("code", time.Minute)
	check(t, "CreateCode", s.CreateCode(ctx, c))
	rt := sampleRefresh("rt", "g1", time.Hour)
	check(t, "CreateGrant", s.CreateGrant(ctx, sampleGrant("g1", "client1", "u1", at(0)), rt))
	_, err := s.ConsumeCode(ctx, c.Hash)
	check(t, "ConsumeCode", err)
	_, err = s.RotateRefreshToken(ctx, rt.Hash, sampleRefresh("rt2", "", time.Hour))
	check(t, "RotateRefreshToken", err)

	var errs []error
	_, err = s.ConsumeCode(ctx, c.Hash)
	errs = append(errs, err)
	errs = append(errs, s.CreateCode(ctx, c))
	_, err = s.RotateRefreshToken(ctx, rt.Hash, sampleRefresh("rt3", "", time.Hour))
	errs = append(errs, err)
	_, err = s.RotateRefreshToken(ctx, hash("rt2"), sampleRefresh("rt2", "", time.Hour))
	errs = append(errs, err)
	errs = append(errs, s.CreateClient(ctx, sampleClient("c1")), s.CreateClient(ctx, sampleClient("c1")))
	for _, err := range errs {
		if err == nil {
			continue
		}
		msg := err.Error()
		for _, secret := range [][]byte{c.Hash, rt.Hash, hash("rt2"), hash("secret-c1")} {
			if strings.Contains(msg, hex.EncodeToString(secret)) || strings.Contains(msg, string(secret)) ||
				strings.Contains(strings.ToLower(msg), fmt.Sprintf("%x", secret[:4])) {
				t.Fatalf("error %q carries a hash", msg)
			}
		}
		if msg != strings.ToLower(msg[:1])+msg[1:] {
			t.Fatalf("error %q does not start in lower case", msg)
		}
	}
}
