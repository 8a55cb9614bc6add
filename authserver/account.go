package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// The connected-apps page (<base>/account) shows a signed-in user every app
// that holds a live grant for them, per business, and lets them disconnect
// one, as the yAppointment guide describes: afterwards "the customer will
// need to re-authorize your app".
//
// Disconnecting revokes the app's live grants for that business through the
// token service, exactly as an operator's revocation does: the deny list of
// this node at once, the other nodes' through the change feed, and, in the
// same transaction, the remembered consent (tokenstore revokeGrant). An app
// authorized twice for one business (two devices, say) holds two grants but
// shows once, so Disconnect ends both: the page never shows an app that is
// "disconnected" yet still connected.
//
// The page works under both identity sources: whoever identitySource says
// is signed in. A signed-out browser is sent to sign in and back here.

// csrfAccount is the purpose of the Disconnect forms' CSRF token, bound to
// the sign-in they were shown to.
const csrfAccount = "account"

// accountView is what the connected-apps page shows.
type accountView struct {
	Action, CSRF        string
	UserName, UserEmail string
	Initials            string
	Groups              []appGroup
	// Apps counts the connected apps across the groups.
	Apps int
	// Disconnected names the app just disconnected, for the notice.
	Disconnected string
}

// appGroup is the apps connected for one business.
type appGroup struct {
	BusinessID, BusinessName string
	// BusinessMark is the business's initials, for its badge.
	BusinessMark string
	Apps         []connectedApp
}

// connectedApp is one app connected for one business: its live grants
// taken together.
type connectedApp struct {
	// GrantID is the newest live grant's; Disconnect ends them all.
	GrantID       string
	ClientID      string
	Name          string
	Initials      string
	Scopes        []scopeView
	Granted       timeView
	LastRefreshed timeView
	refreshed     time.Time
	// Unverified: the app registered itself (RFC 7591).
	Unverified bool
}

// timeView is a moment as the page says it: in words, with the exact UTC
// time for a machine (datetime) and a tooltip.
type timeView struct {
	Text, ISO, Full string
}

// serveAccount is the connected-apps page: GET shows it, POST disconnects
// an app.
func (s *Server) serveAccount(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.showAccount(w, r)
	case http.MethodPost:
		s.disconnect(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		s.accountError(w, &pageError{Status: http.StatusMethodNotAllowed, Title: "Method not allowed",
			Message: "This page cannot be used that way.", Code: oautherr.InvalidRequest.Code, Back: s.backToAccount()})
	}
}

// accountError shows a refusal or failure of the connected-apps page. It
// is not an outcome of the authorization endpoint, so unlike renderError
// it does not count as one.
func (s *Server) accountError(w http.ResponseWriter, e *pageError) {
	s.render(w, e.Status, "error", pageData{Title: e.Title, Error: e})
}

// accountFail is accountError for a signed-in user: the page keeps the
// footer of every signed-in page (Sign out, the account links).
func (s *Server) accountFail(w http.ResponseWriter, r *http.Request, acct *account, e *pageError) {
	s.render(w, e.Status, "error", pageData{Title: e.Title, Error: e,
		SignOut: s.signOutFor(w, r, acct), Nav: s.accountNav(acct, "")})
}

// accountUnavailable is the page for a failure of the store or the
// identity source, already logged by storeError or identityError.
func (s *Server) accountUnavailable(e *Error) *pageError {
	return &pageError{Status: e.Status, Title: "Temporarily unavailable",
		Message: "Your connected apps cannot be shown or changed right now. Please try again in a moment.",
		Code:    e.Code, Back: s.backToAccount()}
}

// accountUser is the signed-in user, or nil after answering: a signed-out
// browser is sent to sign in and come back, a failing identity source gets
// the unavailable page.
func (s *Server) accountUser(w http.ResponseWriter, r *http.Request) *account {
	acct, err := s.identity.signedIn(r)
	if err != nil {
		s.accountError(w, s.accountUnavailable(s.identityError(err)))
		return nil
	}
	if acct == nil {
		seeOther(w, s.identity.signInURL(s.paths.account, false))
		return nil
	}
	return acct
}

func (s *Server) showAccount(w http.ResponseWriter, r *http.Request) {
	acct := s.accountUser(w, r)
	if acct == nil {
		return
	}
	secret, err := s.csrfSecret(w, r)
	if err != nil {
		s.accountFail(w, r, acct, &pageError{Status: http.StatusInternalServerError, Title: "Something went wrong", Message: "Please try again.", Code: oautherr.ServerError.Code})
		return
	}
	v, err := s.accountView(r.Context(), acct)
	if err != nil {
		s.accountFail(w, r, acct, s.accountUnavailable(s.storeError("listing connected apps", err)))
		return
	}
	v.CSRF = csrfToken(secret, csrfAccount, acct.binding)
	if id := r.URL.Query().Get("disconnected"); id != "" && s.wasConnected(r.Context(), acct.ID, id) {
		// Named from the registry, never from the link, and only for an
		// app this user has a revoked grant of: a crafted link can put
		// neither its own words nor any registered app's name (an app
		// name chosen to read "Your account was suspended…") on the page.
		if c, err := s.tokens.Client(r.Context(), id); err == nil {
			v.Disconnected = c.Name
		}
	}
	s.render(w, http.StatusOK, "account", pageData{
		Title:   "Connected apps · " + s.cfg.Brand,
		Wide:    true,
		Account: v,
		SignOut: s.signOutFor(w, r, acct),
		Nav:     s.accountNav(acct, s.paths.account),
	})
}

// accountView gathers the user's live grants into apps per business: the
// current business first, then by name; apps by name.
func (s *Server) accountView(ctx context.Context, acct *account) (*accountView, error) {
	v := &accountView{Action: s.paths.account, UserName: acct.Name, UserEmail: acct.Email, Initials: initials(acct.Name)}
	gs, err := s.liveGrants(ctx, acct.ID, "", "")
	if err != nil {
		return nil, err
	}
	now := s.now()
	type key struct{ business, client string }
	apps := map[key]*connectedApp{}
	var order []key
	for _, g := range gs { // newest first
		k := key{g.BusinessID, g.ClientID}
		a := apps[k]
		if a == nil {
			name := g.ClientID
			if c, err := s.tokens.Client(ctx, g.ClientID); err == nil {
				name = c.Name
			} else if !errors.Is(err, tokenstore.ErrNotFound) {
				return nil, err
			}
			a = &connectedApp{GrantID: g.ID, ClientID: g.ClientID, Name: name, Initials: initials(name),
				Unverified: s.dynamicallyRegistered(ctx, g.ClientID)}
			apps[k] = a
			order = append(order, k)
		}
		// Older grants of the same app: the earliest grant, the latest
		// refresh, every scope.
		a.Granted = s.timeView(g.CreatedAt, now)
		if g.RefreshedAt.After(a.refreshed) {
			a.refreshed = g.RefreshedAt
			a.LastRefreshed = s.timeView(g.RefreshedAt, now)
		}
		for _, sc := range g.Scopes {
			if !slices.ContainsFunc(a.Scopes, func(x scopeView) bool { return x.Name == sc }) {
				a.Scopes = append(a.Scopes, s.describeScope(sc))
			}
		}
	}
	groups := map[string]*appGroup{}
	for _, k := range order {
		grp := groups[k.business]
		if grp == nil {
			name := s.businessName(ctx, acct, k.business)
			grp = &appGroup{BusinessID: k.business, BusinessName: name, BusinessMark: initials(name)}
			groups[k.business] = grp
		}
		grp.Apps = append(grp.Apps, *apps[k])
	}
	current := acct.defaultBusiness()
	for _, grp := range groups {
		slices.SortFunc(grp.Apps, func(x, y connectedApp) int {
			return cmpFold(x.Name, y.Name, x.ClientID, y.ClientID)
		})
		v.Groups = append(v.Groups, *grp)
		v.Apps += len(grp.Apps)
	}
	slices.SortFunc(v.Groups, func(x, y appGroup) int {
		switch {
		case x.BusinessID == current && y.BusinessID != current:
			return -1
		case y.BusinessID == current && x.BusinessID != current:
			return 1
		}
		return cmpFold(x.BusinessName, y.BusinessName, x.BusinessID, y.BusinessID)
	})
	return v, nil
}

// wasConnected reports whether userID has a revoked grant of clientID: the
// condition for the page's "… was disconnected" notice.
func (s *Server) wasConnected(ctx context.Context, userID, clientID string) bool {
	gs, err := s.store.ListGrants(ctx, clientID, userID)
	return err == nil && slices.ContainsFunc(gs, func(g *tokenstore.Grant) bool {
		return g.UserID == userID && g.ClientID == clientID && !g.RevokedAt.IsZero()
	})
}

// cmpFold orders by a, case-insensitively, then by b.
func cmpFold(a1, a2, b1, b2 string) int {
	if c := strings.Compare(strings.ToLower(a1), strings.ToLower(a2)); c != 0 {
		return c
	}
	return strings.Compare(b1, b2)
}

// liveGrants are the user's grants that are neither revoked nor expired,
// newest first; clientID and businessID, when not empty, filter.
func (s *Server) liveGrants(ctx context.Context, userID, clientID, businessID string) ([]*tokenstore.Grant, error) {
	gs, err := s.store.ListLiveGrants(ctx, userID, clientID, s.now())
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(gs, func(g *tokenstore.Grant) bool {
		return businessID != "" && g.BusinessID != businessID
	}), nil
}

// businessName names a business as the user knows it: from their sign-in,
// else the directory, else its id (a business they no longer administer
// keeps its apps on the page, so they can still disconnect them).
func (s *Server) businessName(ctx context.Context, acct *account, id string) string {
	for _, b := range acct.Businesses {
		if b.ID == id && b.Name != "" {
			return b.Name
		}
	}
	if b, err := s.store.GetBusiness(ctx, id); err == nil && b.Name != "" {
		return b.Name
	}
	return id
}

// describeScope is a scope with the catalogue's description.
func (s *Server) describeScope(sc string) scopeView {
	d := s.scopes[sc]
	if d == "" {
		d = standardScopes[sc]
	}
	return scopeView{Name: sc, Description: d}
}

// timeView says t relative to now ("3 hours ago"); a zero t is the zero
// view (never).
func (s *Server) timeView(t, now time.Time) timeView {
	if t.IsZero() {
		return timeView{}
	}
	t = t.UTC()
	return timeView{Text: ago(t, now), ISO: t.Format(time.RFC3339), Full: t.Format("2 January 2006, 15:04 MST")}
}

// ago is a past moment in words.
func ago(t, now time.Time) string {
	d := now.Sub(t)
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit + " ago"
		}
		return fmt.Sprintf("%d %ss ago", n, unit)
	}
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour")
	case d < 7*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	case t.Year() == now.Year():
		return "on " + t.Format("2 January")
	default:
		return "on " + t.Format("2 January 2006")
	}
}

// backToAccount is the error pages' way back to the connected-apps page.
func (s *Server) backToAccount() *navLink {
	return &navLink{Label: "Back to connected apps", URL: s.paths.account}
}

// disconnect ends the app of the posted grant for its business. The grant
// must be the signed-in user's: another user's grant id, a client
// credentials grant and an unknown id are one and the same answer, so the
// form cannot probe for grants.
func (s *Server) disconnect(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		s.accountError(w, &pageError{Status: http.StatusBadRequest, Title: "Invalid request", Message: "The form could not be read.", Code: oautherr.InvalidRequest.Code})
		return
	}
	f := r.PostForm
	// Signed out (or a cross-site post, which carries no SameSite=Lax
	// session cookie): nothing happens, and the user signs in and sees
	// the page again.
	acct := s.accountUser(w, r)
	if acct == nil {
		return
	}
	if !s.checkCSRF(r, csrfAccount, acct.binding, f.Get("csrf_token")) {
		s.accountFail(w, r, acct, &pageError{Status: http.StatusForbidden, Title: "Request refused",
			Message: "This form was not sent from your connected-apps page, or your sign-in changed. Nothing was disconnected.",
			Code:    oautherr.AccessDenied.Code, Back: s.backToAccount()})
		return
	}
	notConnected := &pageError{Status: http.StatusNotFound, Title: "App not connected",
		Message: "This app is not connected to your account. Nothing was disconnected.", Code: oautherr.InvalidRequest.Code,
		Back: s.backToAccount()}
	id := f.Get("grant_id")
	if id == "" || len(f["grant_id"]) > 1 {
		s.accountFail(w, r, acct, notConnected)
		return
	}
	g, err := s.store.GetGrant(r.Context(), id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		s.accountFail(w, r, acct, notConnected)
		return
	case err != nil:
		s.accountFail(w, r, acct, s.accountUnavailable(s.storeError("loading grant", err)))
		return
	case g.UserID == "" || g.UserID != acct.ID:
		s.accountFail(w, r, acct, notConnected)
		return
	}
	// Every live grant of the app for the business, this one included
	// (already revoked when the form is sent twice: then there is nothing
	// left to do, and the answer is the same).
	gs, err := s.liveGrants(r.Context(), acct.ID, g.ClientID, g.BusinessID)
	if err != nil {
		s.accountFail(w, r, acct, s.accountUnavailable(s.storeError("listing grants", err)))
		return
	}
	for _, lg := range gs {
		if err := s.tokens.RevokeGrant(r.Context(), lg.ID); err != nil {
			s.accountFail(w, r, acct, s.accountUnavailable(s.storeError("disconnecting an app", err)))
			return
		}
	}
	if len(gs) > 0 {
		// The user's own act, as the portal logs a developer's: which
		// app, whose, for which business (no token).
		s.log.Info("connected apps: app disconnected", zap.String("client_id", g.ClientID),
			zap.String("user_id", acct.ID), zap.String("business_id", g.BusinessID), zap.Int("grants", len(gs)))
	}
	seeOther(w, s.paths.account+"?"+url.Values{"disconnected": {g.ClientID}}.Encode())
}
