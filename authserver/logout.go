package authserver

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// Sign-out ends the browser's sign-in, from oauthgate's own pages (a POST
// form in the footer of every page shown to a signed-in user) or from an
// application, as OpenID Connect RP-Initiated Logout 1.0 describes: the
// end_session_endpoint in discovery is <base>/sign-out, answering GET and
// POST with id_token_hint, client_id, post_logout_redirect_uri and state.
//
// The sign-in session is a signed token in a cookie (session.go) and
// nothing is stored per session, so signing out clears the cookie on this
// browser. The bound: a copy of the cookie taken before sign-out (by
// malware on the device, say) stays valid until it expires, session_ttl
// after sign-in (12 hours by default).
//
// With delegated identity the platform owns the sign-in, so there is no
// sign-out here and no end_session_endpoint.

// csrfSignOut is the purpose of the sign-out forms' CSRF token, bound to
// the session it ends.
const csrfSignOut = "sign-out"

// signOutForm is the footer's sign-out button on pages shown to a
// signed-in user.
type signOutForm struct {
	Action, CSRF, Email string
}

// signOutView is what the sign-out pages show: a question (Confirm) or the
// outcome.
type signOutView struct {
	Action, CSRF string
	Confirm      bool
	// The RP-initiated request, carried through the confirmation form.
	ClientID, PostLogoutRedirectURI, State string
	// AppName is the application that asked, when one is known.
	AppName string
	// Email is who is signed in (on the question).
	Email string
}

// logoutRequest is a checked RP-initiated logout request.
type logoutRequest struct {
	// hint is the verified id_token_hint, or nil; hintRaw the token.
	hint    *tokens.IDTokenHint
	hintRaw string
	client  *tokenstore.Client
	// redirect is a post_logout_redirect_uri registered for client, or "".
	redirect, state string
}

// serveSignOut is the end_session_endpoint and the target of the pages'
// sign-out forms.
func (s *Server) serveSignOut(w http.ResponseWriter, r *http.Request) {
	var params url.Values
	switch r.Method {
	case http.MethodGet:
		params = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			s.renderError(w, &pageError{Status: http.StatusBadRequest, Title: "Invalid request", Message: "The form could not be read.", Code: oautherr.InvalidRequest.Code})
			return
		}
		params = r.PostForm
	default:
		methodNotAllowed(s, w, "GET, POST")
		return
	}
	lr, perr := s.parseLogout(r, params)
	if perr != nil {
		s.renderError(w, perr)
		return
	}
	sess := s.session(r)
	if sess == nil && r.Method == http.MethodPost {
		// The session cookie is SameSite=Lax, so a cross-site POST (an
		// app's logout form, or a forged one) does not carry it: who is
		// signed in is unknown here, and clearing the cookie blind would
		// let any site sign the user out. The GET this becomes is a
		// top-level navigation that carries it, and asks when it must.
		seeOther(w, s.paths.signOut+"?"+lr.query().Encode())
		return
	}
	switch {
	case sess == nil:
		// Nobody is signed in on this browser: nothing to end or ask.
	case r.Method == http.MethodPost && params.Has("csrf_token"):
		// oauthgate's own form: the footer button or the confirmation.
		if !s.checkCSRF(r, csrfSignOut, sess.SID, params.Get("csrf_token")) {
			s.renderError(w, &pageError{Status: http.StatusForbidden, Title: "Request refused",
				Message: "This form was not sent from your sign-out page. You are still signed in.", Code: oautherr.AccessDenied.Code})
			return
		}
	case lr.hint != nil && lr.hint.Subject == sess.Subject:
		// The application proved whose session it wants ended.
	default:
		// No hint, or a hint for someone else: RP-Initiated Logout §2
		// says to ask the user, so a link alone cannot sign them out.
		s.confirmSignOut(w, r, sess, lr)
		return
	}
	s.endSession(w)
	if lr.redirect != "" && (sess != nil || !s.unvettedRedirect(r.Context(), lr.client)) {
		seeOther(w, withQuery(lr.redirect, lr.state))
		return
	}
	v := &signOutView{}
	if lr.client != nil {
		v.AppName = lr.client.Name
	}
	s.render(w, http.StatusOK, "signout", pageData{Title: "Signed out of " + s.cfg.Brand, SignOutPage: v})
}

// query is the request again as GET parameters.
func (lr *logoutRequest) query() url.Values {
	q := url.Values{}
	if lr.hintRaw != "" {
		q.Set("id_token_hint", lr.hintRaw)
	}
	if lr.client != nil && lr.hint == nil {
		q.Set("client_id", lr.client.ID)
	}
	if lr.redirect != "" {
		q.Set("post_logout_redirect_uri", lr.redirect)
	}
	if lr.state != "" {
		q.Set("state", lr.state)
	}
	return q
}

// parseLogout checks an RP-initiated logout request. Anything wrong is a
// page: nothing is signed out and nobody is redirected.
func (s *Server) parseLogout(r *http.Request, q url.Values) (*logoutRequest, *pageError) {
	bad := func(msg string) *pageError {
		return &pageError{Status: http.StatusBadRequest, Title: "Sign-out link not valid",
			Message: msg + " Nothing was signed out.", Code: oautherr.InvalidRequest.Code}
	}
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "csrf_token"} {
		if len(q[k]) > 1 {
			return nil, bad("The link repeats " + k + ".")
		}
	}
	lr := &logoutRequest{state: q.Get("state")}
	if len(lr.state) > maxStateLen {
		return nil, bad("The link's state is too long.")
	}
	if raw := q.Get("id_token_hint"); raw != "" {
		h, err := s.tokens.VerifyIDTokenHint(raw)
		if err != nil {
			return nil, bad("The application's id_token_hint was not issued here.")
		}
		lr.hint, lr.hintRaw = h, raw
	}
	clientID := q.Get("client_id")
	if lr.hint != nil {
		if clientID != "" && clientID != lr.hint.ClientID {
			return nil, bad("The client_id is not the one the id_token_hint was issued to.")
		}
		clientID = lr.hint.ClientID
	}
	if clientID != "" {
		c, err := s.tokens.Client(r.Context(), clientID)
		switch {
		case errors.Is(err, tokenstore.ErrNotFound):
			return nil, bad("The application is not registered.")
		case err != nil:
			return nil, s.unavailablePage(err)
		}
		lr.client = c
	}
	if uri := q.Get("post_logout_redirect_uri"); uri != "" {
		switch {
		case lr.client == nil:
			return nil, bad("A post_logout_redirect_uri needs an id_token_hint or a client_id.")
		case !slices.Contains(lr.client.PostLogoutRedirectURIs, uri):
			return nil, bad("The post_logout_redirect_uri is not registered for " + lr.client.Name + ".")
		}
		lr.redirect = uri
	}
	return lr, nil
}

// confirmSignOut asks the signed-in user whether to sign out.
func (s *Server) confirmSignOut(w http.ResponseWriter, r *http.Request, sess *sessionData, lr *logoutRequest) {
	secret, err := s.csrfSecret(w, r)
	if err != nil {
		s.renderError(w, &pageError{Status: http.StatusInternalServerError, Title: "Something went wrong", Message: "Please try again.", Code: oautherr.ServerError.Code})
		return
	}
	v := &signOutView{Action: s.paths.signOut, CSRF: csrfToken(secret, csrfSignOut, sess.SID), Confirm: true,
		PostLogoutRedirectURI: lr.redirect, State: lr.state}
	if lr.client != nil {
		v.ClientID, v.AppName = lr.client.ID, lr.client.Name
	}
	if u, err := s.store.GetUser(r.Context(), sess.Subject); err == nil {
		v.Email = u.Email
	}
	s.render(w, http.StatusOK, "signout", pageData{Title: "Sign out of " + s.cfg.Brand, SignOutPage: v})
}

// endSession clears the session cookie and the CSRF secret of this
// browser (a new sign-in gets a new one).
func (s *Server) endSession(w http.ResponseWriter) {
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
	http.SetCookie(w, s.cookie(csrfCookie, "", -1))
}

// signOutFor is the footer's sign-out form for a page shown to acct, or
// nil when oauthgate does not hold the sign-in (delegated identity).
func (s *Server) signOutFor(w http.ResponseWriter, r *http.Request, acct *account) *signOutForm {
	if _, builtin := s.identity.(builtinIdentity); !builtin || acct == nil {
		return nil
	}
	secret, err := s.csrfSecret(w, r)
	if err != nil {
		return nil
	}
	return &signOutForm{Action: s.paths.signOut, CSRF: csrfToken(secret, csrfSignOut, acct.binding), Email: acct.Email}
}

// withQuery appends state to a registered URI, keeping its own query.
func withQuery(uri, state string) string {
	if state == "" {
		return uri
	}
	sep := "?"
	switch {
	case strings.HasSuffix(uri, "?") || strings.HasSuffix(uri, "&"):
		sep = ""
	case strings.Contains(uri, "?"):
		sep = "&"
	}
	return uri + sep + url.Values{"state": {state}}.Encode()
}
