package authserver

import (
	"errors"
	"net/http"
	"strings"

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
		writeError(w, &Error{Code: codeInvalidRequest, Description: "method must be GET or POST", Status: http.StatusMethodNotAllowed})
		return
	}
	bearerError := func(status int, code, desc string) {
		ch := `Bearer realm="oauthgate"`
		if code != "" {
			ch += `, error="` + code + `", error_description="` + desc + `"`
		}
		if code == "insufficient_scope" {
			ch += `, scope="openid"`
		}
		h.Set("WWW-Authenticate", ch)
		if code == "" {
			code = codeInvalidRequest
		}
		writeJSON(w, status, &Error{Code: code, Description: desc})
	}
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") {
		bearerError(http.StatusUnauthorized, "", "a bearer access token is required")
		return
	}
	claims, err := s.tokens.Verify(strings.TrimSpace(auth[7:]))
	switch {
	case errors.Is(err, tokens.ErrUnavailable):
		h.Set("Retry-After", retryAfterSeconds)
		writeError(w, errUnavailable())
		return
	case err != nil:
		bearerError(http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
		return
	}
	if !contains(claims.Scopes, "openid") {
		bearerError(http.StatusForbidden, "insufficient_scope", "the access token lacks the openid scope")
		return
	}
	if claims.Subject == claims.ClientID {
		bearerError(http.StatusUnauthorized, "invalid_token", "the access token was not issued for a user")
		return
	}
	u, err := s.store.GetUser(r.Context(), claims.Subject)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		bearerError(http.StatusUnauthorized, "invalid_token", "the user no longer exists")
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
