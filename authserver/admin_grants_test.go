package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// TestAdminUserGrants: an operator lists a user's grants (all, or only the
// live ones) and revokes one or all of them; revoking all forgets the
// user's consents, so each app asks again, and leaves other users alone.
func TestAdminUserGrants(t *testing.T) {
	r := newAccountRig(t)
	ctx := context.Background()
	g1, access, refresh := r.grant("read:invoices")
	g2, _, _ := r.grant("read:invoices")
	now := r.clock.Now()
	for _, g := range []*tokenstore.Grant{
		{ID: "g-spa", ClientID: "spa", UserID: r.user.ID, BusinessID: "b2", Scopes: []string{"read:invoices"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: "g-old", ClientID: "spa", UserID: r.user.ID, BusinessID: "b2", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
		{ID: "g-other", ClientID: "app", UserID: "usr_other", BusinessID: "b1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := r.s.store.CreateGrant(ctx, g, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*tokenstore.Consent{
		{UserID: r.user.ID, ClientID: "app", BusinessID: "b1"}, {UserID: r.user.ID, ClientID: "spa", BusinessID: "b2"},
		{UserID: "usr_other", ClientID: "app", BusinessID: "b1"},
	} {
		if err := r.s.store.SaveConsent(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(v any) []string {
		var out []string
		list, _ := v.([]any)
		for _, g := range list {
			out = append(out, field(g, "id").(string))
		}
		return out
	}
	user := url.QueryEscape(r.user.ID)

	status, v := r.admin("GET", "/oauthgate/grants?user_id="+user, "")
	if status != 200 || len(ids(v)) != 4 {
		t.Fatalf("all grants: %d %v", status, v)
	}
	status, v = r.admin("GET", "/oauthgate/grants?live=true&user_id="+user, "")
	if got := ids(v); status != 200 || len(got) != 3 || slices.Contains(got, "g-old") {
		t.Fatalf("live grants: %d %v", status, got)
	}
	for _, g := range v.([]any) {
		if field(g, "live") != true || field(g, "expires_at") == nil || field(g, "created_at") == nil {
			t.Errorf("live grant view %v", g)
		}
	}
	if status, v := r.admin("GET", "/oauthgate/grants?live=yes", ""); status != 400 {
		t.Errorf("live=yes: %d %v, want 400", status, v)
	}
	if status, v := r.admin("DELETE", "/oauthgate/grants", ""); status != 400 {
		t.Errorf("revoke all without user_id: %d %v, want 400", status, v)
	}

	// One client's grants of the user.
	status, v = r.admin("DELETE", "/oauthgate/grants?client_id=spa&user_id="+user, "")
	if got, _ := field(v, "revoked").([]any); status != 200 || len(got) != 1 || got[0] != "g-spa" {
		t.Fatalf("revoke the user's spa grants: %d %v", status, v)
	}
	if !r.live(g1) || !r.live(g2) {
		t.Fatal("revoking spa's grants revoked app's")
	}
	if _, err := r.s.store.GetConsent(ctx, r.user.ID, "spa", "b2"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("spa consent: %v, want forgotten", err)
	}
	if _, err := r.s.store.GetConsent(ctx, r.user.ID, "app", "b1"); err != nil {
		t.Errorf("app consent: %v, want kept", err)
	}

	// All of them.
	status, v = r.admin("DELETE", "/oauthgate/grants?user_id="+user, "")
	if got, _ := field(v, "revoked").([]any); status != 200 || len(got) != 2 {
		t.Fatalf("revoke all: %d %v", status, v)
	}
	if r.live(g1) || r.live(g2) || !r.live("g-other") {
		t.Fatal("revoke all: wrong grants revoked")
	}
	if _, err := r.s.tokens.Verify(access); err == nil {
		t.Error("the access token still verifies")
	}
	if resp := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, "app:app-secret"); resp.errorCode() != "invalid_grant" {
		t.Errorf("refresh: %d %v, want invalid_grant", resp.Code, resp.body)
	}
	if _, err := r.s.store.GetConsent(ctx, r.user.ID, "app", "b1"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("app consent: %v, want forgotten", err)
	}
	if _, err := r.s.store.GetConsent(ctx, "usr_other", "app", "b1"); err != nil {
		t.Errorf("another user's consent: %v, want kept", err)
	}
	// Nothing left: an empty list, not an error.
	if status, v := r.admin("DELETE", "/oauthgate/grants?user_id="+user, ""); status != 200 || len(field(v, "revoked").([]any)) != 0 {
		t.Errorf("revoke all again: %d %v", status, v)
	}
	if status, _ := r.admin(http.MethodGet, "/oauthgate/grants?live=1&user_id="+user, ""); status != 200 {
		t.Errorf("live=1: %d", status)
	}
}
