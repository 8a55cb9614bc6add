package authserver

import (
	"net/http"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// The admin API's grants: what users authorized clients to do, listed by
// user and/or client, and revoked one at a time or all of a user's at
// once (the operator's side of the connected-apps page's Disconnect).
//
//	GET    /oauthgate/grants?user_id=&client_id=&live=true
//	DELETE /oauthgate/grants/{id}
//	DELETE /oauthgate/grants?user_id=<id>[&client_id=<id>]
//
// User ids are the identity source's: the built-in directory's, or the
// platform's under delegated identity.

func (s *Server) adminGrantRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /oauthgate/grants", s.adminListGrants)
	mux.HandleFunc("DELETE /oauthgate/grants/{id}", s.adminRevokeGrant)
	mux.HandleFunc("DELETE /oauthgate/grants", s.adminRevokeUserGrants)
}

// grantView is a grant as the admin API shows it.
type grantView struct {
	ID         string   `json:"id"`
	ClientID   string   `json:"client_id"`
	UserID     string   `json:"user_id,omitempty"`
	BusinessID string   `json:"business_id,omitempty"`
	Scopes     []string `json:"scopes"`
	// CreatedAt is when the user authorized the client.
	CreatedAt time.Time `json:"created_at"`
	// RefreshedAt is when its refresh token was last exchanged.
	RefreshedAt *time.Time `json:"refreshed_at,omitempty"`
	// ExpiresAt is when its last token expires (omitted when unknown).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Live: neither revoked nor expired.
	Live bool `json:"live"`
	// Revoked is kept for callers of earlier versions: RevokedAt is set.
	Revoked bool `json:"revoked"`
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) viewGrant(g *tokenstore.Grant, now time.Time) grantView {
	scopes := g.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return grantView{ID: g.ID, ClientID: g.ClientID, UserID: g.UserID, BusinessID: g.BusinessID, Scopes: scopes,
		CreatedAt: g.CreatedAt, RefreshedAt: optionalTime(g.RefreshedAt), ExpiresAt: optionalTime(g.ExpiresAt),
		RevokedAt: optionalTime(g.RevokedAt), Live: grantLive(g, now), Revoked: !g.RevokedAt.IsZero()}
}

// grantLive: not revoked, and not past its expiry (a grant stored without
// one counts as live).
func grantLive(g *tokenstore.Grant, now time.Time) bool {
	return g.RevokedAt.IsZero() && (g.ExpiresAt.IsZero() || g.ExpiresAt.After(now))
}

// adminListGrants lists grants, newest first, filtered by user_id and
// client_id; live=true leaves out revoked and expired ones.
func (s *Server) adminListGrants(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	live, ok := boolParam(q.Get("live"))
	if !ok {
		adminError(w, http.StatusBadRequest, "live must be true or false")
		return
	}
	gs, err := s.store.ListGrants(r.Context(), q.Get("client_id"), q.Get("user_id"))
	if err != nil {
		s.adminStoreError(w, "listing grants", err)
		return
	}
	now := s.now()
	out := make([]grantView, 0, len(gs))
	for _, g := range gs {
		if live && !grantLive(g, now) {
			continue
		}
		out = append(out, s.viewGrant(g, now))
	}
	adminJSON(w, http.StatusOK, out)
}

func boolParam(v string) (value, ok bool) {
	switch v {
	case "", "false", "0":
		return false, true
	case "true", "1":
		return true, true
	}
	return false, false
}

// adminRevokeGrant revokes one grant. An unknown id is revoked all the
// same (204): a client-credentials token's grant has no row, and its
// tokens are denied by id.
func (s *Server) adminRevokeGrant(w http.ResponseWriter, r *http.Request) {
	if err := s.tokens.RevokeGrant(r.Context(), r.PathValue("id")); err != nil {
		s.adminStoreError(w, "revoking grant", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminRevokeUserGrants revokes every live grant of user_id (of client_id
// only, when given) and forgets the user's remembered consents to those
// clients, so each app must ask again. It answers the revoked grant ids.
// Without user_id it refuses: revoking everyone's grants is not one
// request away from a typo.
func (s *Server) adminRevokeUserGrants(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user, client := q.Get("user_id"), q.Get("client_id")
	if user == "" {
		adminError(w, http.StatusBadRequest, "user_id is required (DELETE /oauthgate/grants/{id} revokes one grant)")
		return
	}
	gs, err := s.store.ListLiveGrants(r.Context(), user, client, s.now())
	if err != nil {
		s.adminStoreError(w, "listing grants", err)
		return
	}
	revoked := []string{}
	for _, g := range gs {
		if err := s.tokens.RevokeGrant(r.Context(), g.ID); err != nil {
			s.adminStoreError(w, "revoking grant", err)
			return
		}
		revoked = append(revoked, g.ID)
	}
	// A consent whose grant is gone (a code never exchanged, say) is
	// forgotten too.
	if err := s.store.DeleteConsents(r.Context(), user, client); err != nil {
		s.adminStoreError(w, "forgetting consents", err)
		return
	}
	adminJSON(w, http.StatusOK, map[string]any{"revoked": revoked})
}
