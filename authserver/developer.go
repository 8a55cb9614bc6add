package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// The developer portal at <base>/developer: a signed-in developer registers
// apps (clients) for the authorization-code flow, sees their client_id and
// client_secret once, rotates the secret, edits the name, the redirect URIs
// and whether its tokens must be DPoP-bound (RFC 9449), and deletes the app. Every app has an owner, the user who registered it;
// nobody else sees or touches it, except the platform admins, who see every
// app and may mark one first-party.
//
// Pages:
//
//	GET  <base>/developer                        the developer's apps
//	GET  <base>/developer/new                    the registration form
//	POST <base>/developer/new                    register; shows the credentials once
//	GET  <base>/developer/apps/{id}              one app, with the edit form
//	POST <base>/developer/apps/{id}              save name and redirect URIs
//	POST <base>/developer/apps/{id}/secret       rotate the secret; shows it once
//	GET  <base>/developer/apps/{id}/delete       asks
//	POST <base>/developer/apps/{id}/delete       deletes; its tokens are refused at once
//	POST <base>/developer/apps/{id}/first-party  platform admins: first-party on or off
//
// Every mutation is a POST carrying a CSRF token bound to the sign-in; the
// registration form also carries a one-time form id from which the
// client_id is derived, so a second submit of the same form (a double
// click, a reload of the credentials page) finds the app it made instead of
// making another.

// DeveloperPortal configures the developer portal.
type DeveloperPortal struct {
	// Register says who may register apps: "anyone" signed in (default) or
	// "business_admins", users who administer at least one business.
	Register string
	// PlatformAdmins are users, by id or e-mail address, who see every
	// app in the portal and may mark one first-party.
	PlatformAdmins []string
}

// Limits of the registration form.
const (
	maxAppNameLen = 100
	// maxAppsPerDeveloper bounds what one account can register, so a
	// stolen or scripted session cannot fill the registry.
	maxAppsPerDeveloper = 50
	// csrfDeveloper is the purpose of the portal forms' CSRF tokens.
	csrfDeveloper = "developer"
)

// checkDeveloperPortal checks the portal's configuration.
func checkDeveloperPortal(p *DeveloperPortal) error {
	switch p.Register {
	case "", "anyone", "business_admins":
	default:
		return fmt.Errorf("developer_portal register %q: want anyone or business_admins", p.Register)
	}
	for _, a := range p.PlatformAdmins {
		if strings.TrimSpace(a) == "" {
			return errors.New("developer_portal platform_admins: an empty user")
		}
	}
	return nil
}

// developerView is what the portal pages show.
type developerView struct {
	Brand        string
	Base, NewURL string
	// CSRF protects every form on the page.
	CSRF          string
	UserName      string
	UserEmail     string
	PlatformAdmin bool
	// CanRegister is false when register business_admins excludes the
	// user; NoRegisterReason says why.
	CanRegister      bool
	NoRegisterReason string
	Apps             []appView
	// Others are every other developer's apps, for platform admins.
	Others []appView
	// Notice is a one-line confirmation (saved, deleted).
	Notice string
	Form   *appForm
	App    *appView
	Secret *secretView
	// Delete asks before deleting App.
	Delete bool
}

// appView is one app as the portal shows it.
type appView struct {
	ID, Name, Initials, URL string
	RedirectURIs            []string
	Scopes                  []string
	Business                string
	Created                 string
	Public, FirstParty      bool
	// DPoP: the app's access tokens are bound to a key (RFC 9449).
	DPoP bool
	// Unverified: the app registered itself (RFC 7591), shown to a
	// platform admin.
	Unverified bool
	// Owner names the developer, on apps shown to a platform admin.
	Owner string
	// Mine is false on another developer's app shown to a platform admin.
	Mine bool
}

// appForm is the registration or edit form, with what was typed and the
// message next to each refused field.
type appForm struct {
	Action, FormID string
	Editing        bool
	Name           string
	RedirectURIs   string
	Type           string
	Business       string
	Scopes         []scopeChoice
	Businesses     []businessOption
	NeedsBusiness  bool
	// DPoP is the "require DPoP-bound tokens" checkbox.
	DPoP   bool
	Errors map[string]string
}

type scopeChoice struct {
	Name, Description string
	Checked           bool
}

// secretView is the one-time reveal of an app's credentials.
type secretView struct {
	ClientID, ClientSecret string
	// Rotated is true after a rotation (only the secret is new).
	Rotated bool
	// Already is true when the registration form was submitted again: the
	// app exists and its secret is not shown.
	Already bool
}

// serveDeveloper routes the portal's pages; rest is the path below
// <base>/developer. It reports whether it was one of them.
func (s *Server) serveDeveloper(w http.ResponseWriter, r *http.Request, rest string) bool {
	if s.cfg.DeveloperPortal == nil || !portalPath(rest) {
		return false
	}
	acct, err := s.identity.signedIn(r)
	if err != nil {
		s.renderPortalError(w, s.unavailablePage(err))
		return true
	}
	if acct == nil {
		// Sign in, then come back here (a form's data is not kept: the
		// page is shown again). A POST-only address (rotate, first-party)
		// comes back to its app's page, where its form is, rather than to
		// a GET it refuses.
		back := r.URL.Path
		switch {
		case r.Method == http.MethodGet && r.URL.RawQuery != "":
			back += "?" + r.URL.RawQuery
		case r.Method == http.MethodPost && (strings.HasSuffix(rest, "/secret") || strings.HasSuffix(rest, "/first-party")):
			back = back[:strings.LastIndexByte(back, '/')]
		}
		seeOther(w, s.identity.signInURL(back, false))
		return true
	}
	secret, err := s.csrfSecret(w, r)
	if err != nil {
		s.renderPortalError(w, &pageError{Status: http.StatusInternalServerError, Title: "Something went wrong", Message: "Please try again.", Code: oautherr.ServerError.Code})
		return true
	}
	dp := &developerPage{s: s, w: w, r: r, acct: acct, csrf: csrfToken(secret, csrfDeveloper, acct.binding)}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			dp.fail(&pageError{Status: http.StatusBadRequest, Title: "Invalid request", Message: "The form could not be read.", Code: oautherr.InvalidRequest.Code})
			return true
		}
		if !s.checkCSRF(r, csrfDeveloper, acct.binding, r.PostForm.Get("csrf_token")) {
			dp.fail(&pageError{Status: http.StatusForbidden, Title: "Request refused",
				Message: "This form was not sent from your developer portal, or your sign-in changed. Open the portal and try again.",
				Code:    oautherr.AccessDenied.Code})
			return true
		}
	}
	route := func(allowed string, get, post func()) {
		switch {
		case r.Method == http.MethodGet && get != nil, r.Method == http.MethodHead && get != nil:
			get()
		case r.Method == http.MethodPost && post != nil:
			post()
		default:
			w.Header().Set("Allow", allowed)
			dp.fail(&pageError{Status: http.StatusMethodNotAllowed, Title: "Method not allowed",
				Message: "This page cannot be used that way.", Code: oautherr.InvalidRequest.Code})
		}
	}
	switch {
	case rest == "":
		route("GET", dp.list, nil)
	case rest == "/new":
		route("GET, POST", dp.newForm, dp.register)
	default:
		id, action, _ := strings.Cut(strings.TrimPrefix(rest, "/apps/"), "/")
		switch action {
		case "":
			route("GET, POST", func() { dp.withApp(id, dp.show) }, func() { dp.withApp(id, dp.ownerOnly(dp.edit)) })
		case "secret":
			route("POST", nil, func() { dp.withApp(id, dp.ownerOnly(dp.rotate)) })
		case "delete":
			route("GET, POST", func() { dp.withApp(id, dp.confirmDelete) }, func() { dp.withApp(id, dp.delete) })
		case "first-party":
			route("POST", nil, func() { dp.withApp(id, dp.setFirstParty) })
		}
	}
	return true
}

// portalPath reports whether rest (the path below <base>/developer) is one
// of the portal's pages, before anyone is asked who is signed in.
func portalPath(rest string) bool {
	if rest == "" || rest == "/new" {
		return true
	}
	app, ok := strings.CutPrefix(rest, "/apps/")
	if !ok {
		return false
	}
	id, action, _ := strings.Cut(app, "/")
	return id != "" && (action == "" || action == "secret" || action == "delete" || action == "first-party")
}

// developerPage is one request to the portal by a signed-in user.
type developerPage struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	acct *account
	csrf string
}

func (s *Server) renderPortalError(w http.ResponseWriter, e *pageError) {
	s.render(w, e.Status, "error", pageData{Title: e.Title, Error: e})
}

// fail shows a refusal or failure to the signed-in developer on the error
// page, with the footer of every signed-in page (Sign out, the account
// links) and a way back to their apps.
func (dp *developerPage) fail(e *pageError) {
	if e.Back == nil {
		c := *e
		c.Back, e = &navLink{Label: "Back to your apps", URL: dp.s.paths.developer}, &c
	}
	dp.s.render(dp.w, e.Status, "error", pageData{Title: e.Title, Error: e,
		SignOut: dp.s.signOutFor(dp.w, dp.r, dp.acct), Nav: dp.s.accountNav(dp.acct, "")})
}

func (dp *developerPage) ctx() context.Context { return dp.r.Context() }

// audit logs a change to an app: which, and by whom. Never a secret.
func (dp *developerPage) audit(what, clientID string) {
	dp.s.log.Info("developer portal: "+what, zap.String("client_id", clientID), zap.String("user_id", dp.acct.ID))
}

// platformAdmin reports whether the user is one of the configured platform
// admins (by id, or by e-mail without regard to case).
func (dp *developerPage) platformAdmin() bool {
	return slices.ContainsFunc(dp.s.cfg.DeveloperPortal.PlatformAdmins, func(a string) bool {
		return a == dp.acct.ID || (dp.acct.Email != "" && strings.EqualFold(a, dp.acct.Email))
	})
}

// mayRegister says whether the user may register apps, and if not why.
func (dp *developerPage) mayRegister() (bool, string) {
	if dp.s.cfg.DeveloperPortal.Register == "business_admins" && len(dp.acct.Businesses) == 0 && !dp.platformAdmin() {
		return false, "Only administrators of a business can register apps on " + dp.s.cfg.Brand + "."
	}
	return true, ""
}

func (dp *developerPage) view() *developerView {
	ok, why := dp.mayRegister()
	return &developerView{Brand: dp.s.cfg.Brand, Base: dp.s.paths.developer, NewURL: dp.s.paths.developer + "/new", CSRF: dp.csrf,
		UserName: dp.acct.Name, UserEmail: dp.acct.Email, PlatformAdmin: dp.platformAdmin(),
		CanRegister: ok, NoRegisterReason: why}
}

func (dp *developerPage) render(status int, title string, v *developerView) {
	dp.s.render(dp.w, status, "developer", pageData{Title: title + " · " + dp.s.cfg.Brand + " developers", Developer: v, Wide: true,
		SignOut: dp.s.signOutFor(dp.w, dp.r, dp.acct), Nav: dp.s.accountNav(dp.acct, dp.s.paths.developer)})
}

func (dp *developerPage) storeFailure(op string, err error) {
	e := dp.s.storeError(op, err)
	dp.fail(&pageError{Status: e.Status, Title: "Temporarily unavailable",
		Message: "The developer portal cannot reach its data right now. Please try again in a moment.", Code: e.Code})
}

var noSuchApp = &pageError{Status: http.StatusNotFound, Title: "No such app",
	Message: "There is no app with that client ID among yours.", Code: oautherr.InvalidRequest.Code}

// list shows the developer's apps (and, to a platform admin, everyone's).
func (dp *developerPage) list() {
	mine, err := dp.s.store.ListClientsByOwner(dp.ctx(), dp.acct.ID)
	if err != nil {
		dp.storeFailure("listing apps", err)
		return
	}
	v := dp.view()
	for _, c := range mine {
		v.Apps = append(v.Apps, dp.appView(c, nil))
	}
	if v.PlatformAdmin {
		all, err := dp.s.store.ListClients(dp.ctx())
		if err != nil {
			dp.storeFailure("listing apps", err)
			return
		}
		owners := map[string]string{}
		for _, c := range all {
			if c.OwnerID != dp.acct.ID {
				v.Others = append(v.Others, dp.appView(c, owners))
			}
		}
	}
	switch dp.r.URL.Query().Get("notice") {
	case "deleted":
		v.Notice = "The app was deleted. Its tokens no longer work."
	}
	dp.render(http.StatusOK, "Your apps", v)
}

// appView describes c; owners caches owners' e-mail addresses for a
// platform admin's list (nil: c is the user's own).
func (dp *developerPage) appView(c *tokenstore.Client, owners map[string]string) appView {
	a := appView{ID: c.ID, Name: c.Name, Initials: initials(c.Name), URL: dp.s.paths.developer + "/apps/" + url.PathEscape(c.ID),
		RedirectURIs: c.RedirectURIs, Scopes: c.Scopes, Public: c.Public, FirstParty: c.FirstParty, DPoP: c.DPoPBoundAccessTokens,
		Created: c.CreatedAt.UTC().Format("2 Jan 2006"), Mine: c.OwnerID == dp.acct.ID}
	a.Business = c.OwnerBusinessID
	for _, b := range dp.acct.Businesses {
		if b.ID == c.OwnerBusinessID && b.Name != "" {
			a.Business = b.Name
		}
	}
	if !a.Mine {
		switch {
		case c.OwnerID == "" && dp.s.dynamicallyRegistered(dp.ctx(), c.ID):
			a.Owner, a.Unverified = "Registered itself (dynamic registration)", true
		case c.OwnerID == "":
			a.Owner = "Operator (admin API or configuration)"
		case owners != nil:
			if _, ok := owners[c.OwnerID]; !ok {
				owners[c.OwnerID] = c.OwnerID
				if u, err := dp.s.store.GetUser(dp.ctx(), c.OwnerID); err == nil {
					owners[c.OwnerID] = u.Email
				}
			}
			a.Owner = owners[c.OwnerID]
		default:
			a.Owner = c.OwnerID
		}
		if b, err := dp.s.store.GetBusiness(dp.ctx(), c.OwnerBusinessID); c.OwnerBusinessID != "" && err == nil && b.Name != "" {
			a.Business = b.Name
		}
	}
	return a
}

// withApp loads the app id and calls f if the user may see it: its owner,
// or a platform admin. Anyone else is told there is no such app, exactly as
// for an id that does not exist.
func (dp *developerPage) withApp(id string, f func(*tokenstore.Client)) {
	c, err := dp.s.store.GetClient(dp.ctx(), id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		dp.fail(noSuchApp)
		return
	case err != nil:
		dp.storeFailure("loading app", err)
		return
	}
	if c.OwnerID != dp.acct.ID && !dp.platformAdmin() {
		dp.fail(noSuchApp)
		return
	}
	f(c)
}

// ownerOnly lets only the app's developer call f. A platform admin sees
// every app, marks one first-party and may delete one (a takedown reveals
// nothing and redirects nothing), but neither rotates another developer's
// secret (the new one would be shown to the admin, who could then act as
// the app) nor edits its redirect URIs (which would send its users'
// authorization codes elsewhere). The operator's apps change on the admin
// API.
func (dp *developerPage) ownerOnly(f func(*tokenstore.Client)) func(*tokenstore.Client) {
	return func(c *tokenstore.Client) {
		if c.OwnerID != dp.acct.ID {
			dp.fail(&pageError{Status: http.StatusForbidden, Title: "Request refused",
				Message: "Only the app's developer can change its settings or its secret.", Code: oautherr.AccessDenied.Code})
			return
		}
		f(c)
	}
}

// scopeChoices are the scopes the form offers: the third-party set, or for
// a platform admin the whole catalogue with openid and offline_access.
func (dp *developerPage) scopeChoices(checked []string) []scopeChoice {
	names := dp.s.thirdParty
	if dp.platformAdmin() {
		names = nil
		for _, sc := range dp.s.cfg.Scopes {
			names = append(names, sc.Name)
		}
		names = append(names, "openid", "offline_access")
	}
	out := make([]scopeChoice, 0, len(names))
	for _, n := range names {
		d := dp.s.scopes[n]
		if d == "" {
			d = standardScopes[n]
		}
		out = append(out, scopeChoice{Name: n, Description: d, Checked: slices.Contains(checked, n)})
	}
	return out
}

func (dp *developerPage) businessChoices(selected string) []businessOption {
	if selected == "" {
		selected = dp.acct.defaultBusiness()
	}
	out := make([]businessOption, 0, len(dp.acct.Businesses))
	for _, b := range dp.acct.Businesses {
		name := b.Name
		if name == "" {
			name = b.ID
		}
		out = append(out, businessOption{ID: b.ID, Name: name, Selected: b.ID == selected})
	}
	return out
}

func (dp *developerPage) newForm() {
	v := dp.view()
	if !v.CanRegister {
		dp.render(http.StatusForbidden, "Register an app", v)
		return
	}
	formID, err := tokens.NewSecret("")
	if err != nil {
		dp.storeFailure("making a form id", err)
		return
	}
	v.Form = &appForm{Action: v.NewURL, FormID: formID, Type: "confidential",
		Scopes: dp.scopeChoices(nil), Businesses: dp.businessChoices(""), NeedsBusiness: len(dp.acct.Businesses) > 0}
	dp.render(http.StatusOK, "Register an app", v)
}

// registration is a checked registration or edit form.
type registration struct {
	name         string
	redirectURIs []string
	scopes       []string
	public       bool
	business     string
	dpop         bool
}

// readAppForm checks the fields of the registration form (edit: only name
// and redirect URIs) and returns the refusals by field name.
func (dp *developerPage) readAppForm(f url.Values, edit bool, public bool) (registration, map[string]string) {
	errs := map[string]string{}
	reg := registration{name: strings.TrimSpace(f.Get("name")), public: public, dpop: f.Get("dpop_bound") == "on"}
	switch {
	case reg.name == "":
		errs["name"] = "Give your app a name: users see it on the consent screen."
	case utf8.RuneCountInString(reg.name) > maxAppNameLen:
		errs["name"] = fmt.Sprintf("The name is too long: at most %d characters.", maxAppNameLen)
	case !utf8.ValidString(reg.name) || strings.ContainsFunc(reg.name, invisibleInName):
		errs["name"] = "The name cannot contain control characters or invisible formatting (such as right-to-left overrides)."
	}
	if !edit {
		switch f.Get("client_type") {
		case "confidential":
		case "public":
			reg.public = true
		default:
			errs["client_type"] = "Choose whether your app can keep a secret."
		}
	}
	for _, line := range strings.Split(f.Get("redirect_uris"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			reg.redirectURIs = append(reg.redirectURIs, line)
		}
	}
	if len(reg.redirectURIs) == 0 {
		errs["redirect_uris"] = "Add at least one redirect URI, where users are sent back after they allow access."
	} else if err := ValidateRedirectURIs(reg.redirectURIs, dp.s.RedirectURIRules(reg.public)); err != nil {
		var re *RedirectURIError
		if errors.As(err, &re) {
			errs["redirect_uris"] = re.URI + ": " + re.Reason + "."
		} else {
			errs["redirect_uris"] = err.Error()
		}
	}
	if edit {
		return reg, errs
	}
	offered := dp.scopeChoices(nil)
	for _, sc := range f["scope"] {
		switch {
		case !slices.ContainsFunc(offered, func(c scopeChoice) bool { return c.Name == sc }) && !dp.s.knownScope(sc):
			errs["scopes"] = fmt.Sprintf("%q is not a scope of %s.", sc, dp.s.cfg.Brand)
		case !slices.ContainsFunc(offered, func(c scopeChoice) bool { return c.Name == sc }):
			errs["scopes"] = fmt.Sprintf("%q is not available to third-party apps.", sc)
		case !slices.Contains(reg.scopes, sc):
			reg.scopes = append(reg.scopes, sc)
		}
	}
	if len(reg.scopes) == 0 && errs["scopes"] == "" {
		errs["scopes"] = "Choose at least one scope your app needs."
	}
	reg.business = f.Get("business_id")
	switch {
	case len(dp.acct.Businesses) == 0 && reg.business != "":
		errs["business_id"] = "You do not administer that business."
	case len(dp.acct.Businesses) > 0 && !dp.acct.administers(reg.business):
		errs["business_id"] = "Choose one of the businesses you administer."
	}
	return reg, errs
}

// invisibleInName reports a character an app name must not carry: control
// characters, and the invisible format and separator characters (a
// right-to-left override, a zero-width space, a line separator) with which
// a name could pass, on the consent screen, for another app's.
func invisibleInName(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// knownScope reports whether sc is in the catalogue (or a standard one).
func (s *Server) knownScope(sc string) bool {
	_, ok := s.scopes[sc]
	return ok || sc == "openid" || sc == "offline_access"
}

// portalClientID derives the client_id of a registration from its owner
// and the form's one-time id, so submitting the same form twice names the
// same client (and the second CreateClient is a conflict, not an app).
func (s *Server) portalClientID(owner, formID string) string {
	h := sha256.Sum256([]byte("oauthgate developer portal\x00" + owner + "\x00" + formID))
	return s.cfg.ClientIDPrefix + hex.EncodeToString(h[:16])
}

// validFormID accepts what tokens.NewSecret("") makes.
func validFormID(id string) bool {
	if len(id) < 43 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (dp *developerPage) register() {
	v := dp.view()
	if !v.CanRegister {
		dp.render(http.StatusForbidden, "Register an app", v)
		return
	}
	f := dp.r.PostForm
	formID := f.Get("form_id")
	if !validFormID(formID) {
		dp.fail(&pageError{Status: http.StatusBadRequest, Title: "Invalid request",
			Message: "This form is incomplete. Open the registration page again.", Code: oautherr.InvalidRequest.Code})
		return
	}
	reg, errs := dp.readAppForm(f, false, false)
	id := dp.s.portalClientID(dp.acct.ID, formID)
	if len(errs) == 0 {
		mine, err := dp.s.store.ListClientsByOwner(dp.ctx(), dp.acct.ID)
		if err != nil {
			dp.storeFailure("listing apps", err)
			return
		}
		if len(mine) >= maxAppsPerDeveloper && !slices.ContainsFunc(mine, func(c *tokenstore.Client) bool { return c.ID == id }) {
			errs["form"] = fmt.Sprintf("You have registered %d apps, the most one developer may. Delete one you no longer use first.", maxAppsPerDeveloper)
		}
	}
	if len(errs) == 0 {
		spec := ClientSpec{Name: reg.name, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes: reg.scopes, RedirectURIs: reg.redirectURIs, Public: reg.public, DPoPBoundAccessTokens: reg.dpop}
		if err := dp.s.checkSpec(&spec); err != nil {
			errs["form"] = "This app cannot be registered: " + err.Error() + "."
		} else {
			c, secret, err := dp.s.newClient(spec, id)
			if err != nil {
				dp.storeFailure("generating client secret", err)
				return
			}
			c.OwnerID, c.OwnerBusinessID = dp.acct.ID, reg.business
			err = dp.s.store.CreateClient(dp.ctx(), c)
			switch {
			case errors.Is(err, tokenstore.ErrConflict):
				dp.alreadyRegistered(id)
				return
			case err != nil:
				dp.storeFailure("registering app", err)
				return
			}
			dp.s.tokens.ForgetClient(id)
			dp.audit("app registered", id)
			a := dp.appView(c, nil)
			v.App, v.Secret = &a, &secretView{ClientID: id, ClientSecret: secret}
			dp.render(http.StatusCreated, "App registered", v)
			return
		}
	}
	// Shown again with what was typed and the messages; nothing was made.
	if _, err := dp.s.store.GetClient(dp.ctx(), id); err == nil {
		// This very form already made an app (then was edited and sent
		// again): say so rather than ask for corrections.
		dp.alreadyRegistered(id)
		return
	}
	v.Form = &appForm{Action: v.NewURL, FormID: formID, Name: f.Get("name"), RedirectURIs: f.Get("redirect_uris"),
		Type: f.Get("client_type"), Scopes: dp.scopeChoices(f["scope"]), Businesses: dp.businessChoices(f.Get("business_id")),
		NeedsBusiness: len(dp.acct.Businesses) > 0, DPoP: f.Get("dpop_bound") == "on", Errors: errs}
	dp.render(http.StatusBadRequest, "Register an app", v)
}

// alreadyRegistered answers a second submit of a registration form: the
// app it made, without its secret.
func (dp *developerPage) alreadyRegistered(id string) {
	c, err := dp.s.store.GetClient(dp.ctx(), id)
	if err != nil || c.OwnerID != dp.acct.ID {
		dp.fail(&pageError{Status: http.StatusConflict, Title: "Already submitted",
			Message: "This registration form was already used. Open the registration page again.", Code: oautherr.InvalidRequest.Code})
		return
	}
	v := dp.view()
	a := dp.appView(c, nil)
	v.App, v.Secret = &a, &secretView{ClientID: c.ID, Already: true}
	dp.render(http.StatusConflict, "App already registered", v)
}

func (dp *developerPage) editForm(c *tokenstore.Client) *appForm {
	return &appForm{Action: dp.s.paths.developer + "/apps/" + url.PathEscape(c.ID), Editing: true,
		Name: c.Name, RedirectURIs: strings.Join(c.RedirectURIs, "\n"), DPoP: c.DPoPBoundAccessTokens}
}

func (dp *developerPage) show(c *tokenstore.Client) {
	v := dp.view()
	a := dp.appView(c, map[string]string{})
	v.App = &a
	if a.Mine {
		v.Form = dp.editForm(c)
	}
	switch dp.r.URL.Query().Get("notice") {
	case "saved":
		v.Notice = "Your changes were saved."
	case "first-party":
		v.Notice = "The app is now first-party: its users are not asked for consent."
	case "third-party":
		v.Notice = "The app is now third-party: its users are asked for consent."
	}
	dp.render(http.StatusOK, c.Name, v)
}

// edit saves a new name and redirect URIs.
func (dp *developerPage) edit(c *tokenstore.Client) {
	reg, errs := dp.readAppForm(dp.r.PostForm, true, c.Public)
	if len(errs) == 0 {
		// Edited under the row lock (EditClient), so a business the app
		// links meanwhile is kept, not overwritten by what was read.
		var specErr error
		_, err := dp.s.store.EditClient(dp.ctx(), c.ID, func(next *tokenstore.Client) error {
			next.Name, next.RedirectURIs, next.DPoPBoundAccessTokens = reg.name, reg.redirectURIs, reg.dpop
			spec := specOf(next)
			if specErr = dp.s.checkSpec(&spec); specErr != nil {
				return specErr
			}
			next.UpdatedAt = dp.s.now().UTC()
			return nil
		})
		if specErr != nil {
			errs["form"] = "These changes cannot be saved: " + specErr.Error() + "."
		} else {
			if err != nil {
				dp.updateFailure(err)
				return
			}
			dp.s.tokens.ForgetClient(c.ID)
			dp.audit("app edited", c.ID)
			seeOther(dp.w, dp.s.paths.developer+"/apps/"+url.PathEscape(c.ID)+"?notice=saved")
			return
		}
	}
	v := dp.view()
	a := dp.appView(c, map[string]string{})
	v.App, v.Form = &a, dp.editForm(c)
	v.Form.Name, v.Form.RedirectURIs, v.Form.Errors = dp.r.PostForm.Get("name"), dp.r.PostForm.Get("redirect_uris"), errs
	v.Form.DPoP = dp.r.PostForm.Get("dpop_bound") == "on"
	dp.render(http.StatusBadRequest, c.Name, v)
}

func (dp *developerPage) updateFailure(err error) {
	if errors.Is(err, tokenstore.ErrNotFound) {
		dp.fail(noSuchApp)
		return
	}
	dp.storeFailure("updating app", err)
}

// rotate replaces a confidential app's secret and shows the new one once.
// Tokens already issued stay valid, as with the admin API.
func (dp *developerPage) rotate(c *tokenstore.Client) {
	if c.Public {
		dp.fail(&pageError{Status: http.StatusBadRequest, Title: "No secret to rotate",
			Message: "A public app has no client secret.", Code: oautherr.InvalidRequest.Code})
		return
	}
	secret, err := tokens.NewSecret(dp.s.cfg.SecretPrefix)
	if err != nil {
		dp.storeFailure("generating client secret", err)
		return
	}
	next, err := dp.s.store.EditClient(dp.ctx(), c.ID, func(next *tokenstore.Client) error {
		next.SecretHash, next.UpdatedAt = tokens.HashSecret(secret), dp.s.now().UTC()
		return nil
	})
	if err != nil {
		dp.updateFailure(err)
		return
	}
	dp.s.tokens.ForgetClient(c.ID)
	dp.audit("app secret rotated", c.ID)
	v := dp.view()
	a := dp.appView(next, map[string]string{})
	v.App, v.Secret = &a, &secretView{ClientID: c.ID, ClientSecret: secret, Rotated: true}
	dp.render(http.StatusOK, "New client secret", v)
}

func (dp *developerPage) confirmDelete(c *tokenstore.Client) {
	v := dp.view()
	a := dp.appView(c, map[string]string{})
	v.App, v.Delete = &a, true
	dp.render(http.StatusOK, "Delete "+c.Name, v)
}

// delete deletes the app through the token service, which revokes every
// token issued to it in the same commit, on every node (the change feed
// carries the revocation), as the admin API's DELETE does.
func (dp *developerPage) delete(c *tokenstore.Client) {
	if err := dp.s.tokens.DeleteClient(dp.ctx(), c.ID); err != nil {
		if errors.Is(err, tokenstore.ErrNotFound) {
			// Deleted meanwhile (a double submit): it is gone either way.
			seeOther(dp.w, dp.s.paths.developer+"?notice=deleted")
			return
		}
		dp.storeFailure("deleting app", err)
		return
	}
	dp.audit("app deleted", c.ID)
	seeOther(dp.w, dp.s.paths.developer+"?notice=deleted")
}

// setFirstParty lets a platform admin mark an app first-party (consent
// skipped, tenancy from the user's current business) or third-party.
func (dp *developerPage) setFirstParty(c *tokenstore.Client) {
	if !dp.platformAdmin() {
		dp.fail(&pageError{Status: http.StatusForbidden, Title: "Request refused",
			Message: "Only platform admins can mark an app first-party.", Code: oautherr.AccessDenied.Code})
		return
	}
	var firstParty bool
	switch dp.r.PostForm.Get("first_party") {
	case "on":
		firstParty = true
	case "off":
		firstParty = false
	default:
		dp.fail(&pageError{Status: http.StatusBadRequest, Title: "Invalid request",
			Message: "Choose first-party or third-party.", Code: oautherr.InvalidRequest.Code})
		return
	}
	if _, err := dp.s.store.EditClient(dp.ctx(), c.ID, func(next *tokenstore.Client) error {
		next.FirstParty, next.UpdatedAt = firstParty, dp.s.now().UTC()
		return nil
	}); err != nil {
		dp.updateFailure(err)
		return
	}
	dp.s.tokens.ForgetClient(c.ID)
	dp.audit("app first-party set to "+strconv.FormatBool(firstParty), c.ID)
	notice := "third-party"
	if firstParty {
		notice = "first-party"
	}
	seeOther(dp.w, dp.s.paths.developer+"/apps/"+url.PathEscape(c.ID)+"?notice="+notice)
}
