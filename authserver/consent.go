package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// csrfConsent is the purpose of the consent form's CSRF token.
const csrfConsent = "consent"

// Descriptions of the OpenID scopes when the catalogue has none.
var standardScopes = map[string]string{
	"openid":         "Confirm who you are: your name, e-mail address and businesses",
	"offline_access": "Stay connected when you are not using it",
}

// consentView is what the consent page shows.
type consentView struct {
	Action, Request, CSRF string
	AppName, AppInitials  string
	// AppHost is where the browser will be sent back to.
	AppHost    string
	UserName   string
	UserEmail  string
	Initials   string
	Businesses []businessOption
	Scopes     []scopeView
	// Resources are the APIs (RFC 8707 resources) the access is limited
	// to; none: every API of the platform.
	Resources  []string
	SwitchURL  string
	FirstParty bool
	// Unverified: the app registered itself (RFC 7591); nobody vouched
	// for its name.
	Unverified bool
}

type businessOption struct {
	ID, Name string
	Selected bool
}

type scopeView struct{ Name, Description string }

// serveConsent shows the consent page (GET) or records the decision
// (POST).
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		s.showConsent(w, r)
	case http.MethodPost:
		s.decideConsent(w, r)
	default:
		methodNotAllowed(s, w, "GET, POST")
	}
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request) {
	p, q, perr := s.readPending(r.URL.Query().Get("request"))
	if perr != nil {
		s.renderError(w, perr)
		return
	}
	req, perr, oerr := s.parseAuthorize(r.Context(), q)
	switch {
	case perr != nil:
		s.renderError(w, perr)
		return
	case oerr != nil:
		s.redirectError(w, req, oerr)
		return
	}
	acct, err := s.identity.signedIn(r)
	if err != nil {
		s.redirectError(w, req, s.identityError(err))
		return
	}
	if acct == nil || acct.ID != p.Subject {
		// Signed out or another user meanwhile: start the request again.
		seeOther(w, s.returnURL(req, false))
		return
	}
	secret, err := s.csrfSecret(w, r)
	if err != nil {
		s.renderError(w, &pageError{Status: http.StatusInternalServerError, Title: "Something went wrong", Message: "Please try again.", Code: oautherr.ServerError.Code})
		return
	}
	s.render(w, http.StatusOK, "consent", pageData{
		Title:   "Allow " + req.client.Name + " to access " + s.cfg.Brand,
		Consent: s.consentView(r.Context(), req, acct, r.URL.Query().Get("request"), csrfToken(secret, csrfConsent, acct.binding)),
		SignOut: s.signOutFor(w, r, acct),
		Nav:     s.accountNav(acct, ""),
	})
}

func (s *Server) consentView(ctx context.Context, req *authzRequest, acct *account, handle, csrf string) *consentView {
	v := &consentView{
		Action: s.paths.consent, Request: handle, CSRF: csrf,
		AppName: req.client.Name, AppInitials: initials(req.client.Name),
		UserName: acct.Name, UserEmail: acct.Email, Initials: initials(acct.Name),
		FirstParty: req.client.FirstParty,
		Resources:  req.resources,
		Unverified: !req.client.FirstParty && s.dynamicallyRegistered(ctx, req.client.ID),
	}
	if u, err := url.Parse(req.redirectURI); err == nil {
		v.AppHost = u.Host
		if v.AppHost == "" {
			v.AppHost = u.Scheme + ":"
		}
	}
	def := acct.defaultBusiness()
	for _, b := range acct.Businesses {
		name := b.Name
		if name == "" {
			name = b.ID
		}
		v.Businesses = append(v.Businesses, businessOption{ID: b.ID, Name: name, Selected: b.ID == def})
	}
	for _, sc := range req.scopes {
		d := s.scopes[sc]
		if d == "" {
			d = standardScopes[sc]
		}
		v.Scopes = append(v.Scopes, scopeView{Name: sc, Description: d})
	}
	if _, builtin := s.identity.(builtinIdentity); builtin {
		// Another account: sign in again, then come back to this request.
		v.SwitchURL = s.identity.signInURL(s.returnURL(req, false), false)
	}
	return v
}

// decideConsent handles Allow and Deny. Everything is checked again: the
// session, the CSRF token bound to it, the signed request and the request
// itself.
func (s *Server) decideConsent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, &pageError{Status: http.StatusBadRequest, Title: "Invalid request", Message: "The form could not be read.", Code: oautherr.InvalidRequest.Code})
		return
	}
	f := r.PostForm
	p, q, perr := s.readPending(f.Get("request"))
	if perr != nil {
		s.renderError(w, perr)
		return
	}
	forbidden := &pageError{Status: http.StatusForbidden, Title: "Request refused",
		Message: "This form was not sent from your consent page, or your sign-in changed. Go back to the application and start again.",
		Code:    oautherr.AccessDenied.Code}
	acct, err := s.identity.signedIn(r)
	if err != nil {
		s.renderError(w, s.unavailablePage(err))
		return
	}
	if acct == nil || acct.ID != p.Subject || !s.checkCSRF(r, csrfConsent, acct.binding, f.Get("csrf_token")) {
		s.renderError(w, forbidden)
		return
	}
	req, perr, oerr := s.parseAuthorize(r.Context(), q)
	switch {
	case perr != nil:
		s.renderError(w, perr)
		return
	case oerr != nil:
		s.redirectError(w, req, oerr)
		return
	}
	switch f.Get("decision") {
	case "deny":
		s.redirectError(w, req, oautherr.AccessDenied.WithDescription("the user denied the request"))
	case "allow":
		business := f.Get("business_id")
		if !acct.administers(business) {
			s.renderError(w, &pageError{Status: http.StatusBadRequest, Title: "Choose a business",
				Message: "The business chosen is not one you administer.", Code: oautherr.InvalidRequest.Code})
			return
		}
		if err := s.rememberConsent(r.Context(), acct.ID, req, business); err != nil {
			s.redirectError(w, req, s.storeError("saving consent", err))
			return
		}
		s.issueCode(w, r.Context(), req, acct, business)
	default:
		s.renderError(w, &pageError{Status: http.StatusBadRequest, Title: "Invalid request", Message: "Choose Allow or Deny.", Code: oautherr.InvalidRequest.Code})
	}
}

// rememberConsent joins the scopes and resources to what the user allowed
// the client for the business (mergeConsent), so the same request later
// skips the screen.
func (s *Server) rememberConsent(ctx context.Context, userID string, req *authzRequest, business string) error {
	old, err := s.store.GetConsent(ctx, userID, req.client.ID, business)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		old = nil
	case err != nil:
		return err
	}
	scopes, resources := mergeConsent(old, slices.Clone(req.scopes), slices.Clone(req.resources))
	return s.store.SaveConsent(ctx, &tokenstore.Consent{UserID: userID, ClientID: req.client.ID, BusinessID: business,
		Scopes: scopes, Resources: resources, CreatedAt: s.now()})
}

// initials makes a two-letter avatar of a name.
func initials(name string) string {
	var out []rune
	for _, f := range strings.Fields(name) {
		for _, r := range f {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r > 0x7f {
				out = append(out, r)
				break
			}
		}
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return strings.ToUpper(string(out))
}
