package authserver

import (
	"errors"
	"net/http"
	"slices"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// userinfo is the OIDC UserInfo response: the standard claims plus the
// business claims of the id_token.
type userinfo struct {
	Sub                  string   `json:"sub"`
	UserID               string   `json:"user_id"`
	Name                 string   `json:"name,omitempty"`
	UserName             string   `json:"user_name,omitempty"`
	Email                string   `json:"email,omitempty"`
	UserEmail            string   `json:"user_email,omitempty"`
	DefaultBusinessID    string   `json:"default_business_id,omitempty"`
	BusinessIDs          []string `json:"business_ids"`
	AuthorizedBusinessID string   `json:"authorized_business_id,omitempty"`
}

// serveUserinfo implements OIDC Core §5.3: a bearer access token with the
// openid scope, sent in the Authorization header, by GET or POST.
func (s *Server) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		h.Set("Allow", "GET, POST")
		writeError(w, oautherr.InvalidRequest.WithDescription("method must be GET or POST").WithStatus(http.StatusMethodNotAllowed))
		return
	}
	// bearerError answers with RFC 6750 §3's challenge, written by the
	// same package as oauth_protect's; nil is the bare challenge for a
	// request without a token (§3.1).
	bearerError := func(e *Error) {
		c := bearer.Challenge{Realm: "oauthgate"}
		if e == nil {
			e = oautherr.InvalidRequest.WithDescription("a bearer access token is required").WithStatus(http.StatusUnauthorized)
		} else {
			c.Error, c.Description = e.Code, e.Description
			if e.Code == oautherr.InsufficientScope.Code {
				c.Scope = "openid"
			}
		}
		bearer.SetHeaders(h, e.Status, c)
		writeJSON(w, e.Status, e)
	}
	raw, scheme, present, malformed := bearer.Credential(r.Header)
	switch {
	case !present:
		bearerError(nil)
		return
	case malformed:
		bearerError(oautherr.InvalidRequest.WithDescription("the Authorization header is not a single Bearer token"))
		return
	}
	claims, err := s.tokens.Verify(raw)
	switch {
	case errors.Is(err, tokens.ErrUnavailable):
		// writeError sends the 503 with its one Retry-After.
		writeError(w, errUnavailable())
		return
	case err != nil:
		bearerError(oautherr.InvalidToken.WithDescription("the access token is invalid, expired or revoked"))
		return
	}
	if e := s.resourceProof(r, s.paths.userinfo, raw, scheme, claims.JKT); e != nil {
		s.writeDPoPError(w, e)
		return
	}
	if !slices.Contains(claims.Scopes, "openid") {
		bearerError(oautherr.InsufficientScope.WithDescription("the access token lacks the openid scope"))
		return
	}
	if !claims.User {
		bearerError(oautherr.InvalidToken.WithDescription("the access token was not issued for a user"))
		return
	}
	u, err := s.store.GetUser(r.Context(), claims.Subject)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		bearerError(oautherr.InvalidToken.WithDescription("the user no longer exists"))
		return
	case err != nil:
		writeError(w, s.storeError("loading user for userinfo", err))
		return
	}
	bs, err := s.store.Memberships(r.Context(), u.ID)
	if err != nil {
		writeError(w, s.storeError("loading memberships for userinfo", err))
		return
	}
	ui := userinfo{Sub: u.ID, UserID: u.ID, Name: u.Name, UserName: u.Name, Email: u.Email, UserEmail: u.Email,
		DefaultBusinessID: u.CurrentBusiness, BusinessIDs: make([]string, 0, len(bs)), AuthorizedBusinessID: claims.BusinessID}
	for _, b := range bs {
		ui.BusinessIDs = append(ui.BusinessIDs, b.ID)
	}
	writeJSON(w, http.StatusOK, ui)
}
