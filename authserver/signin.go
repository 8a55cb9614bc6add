package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/throttle"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// csrfSignIn is the purpose of the sign-in form's CSRF token. It is bound
// to no session (there is none yet), only to the browser's CSRF cookie.
const csrfSignIn = "sign-in"

// maxPasswordLen bounds what is hashed per attempt.
const maxPasswordLen = 1024

// signInView is what the sign-in page shows.
type signInView struct {
	Action, ReturnTo, CSRF string
	Email                  string
	AppName                string
	Failed                 bool
	// Locked says how long sign-in is refused, after too many failures.
	Locked string
}

// serveSignIn is the built-in directory's sign-in page.
func (s *Server) serveSignIn(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		returnTo := r.URL.Query().Get("return_to")
		q, ok := s.returnTarget(returnTo)
		if !ok {
			s.renderError(w, badReturnTo)
			return
		}
		s.showSignIn(w, r, http.StatusOK, returnTo, q.Get("login_hint"), q.Get("client_id"), false)
	case http.MethodPost:
		s.signIn(w, r)
	default:
		methodNotAllowed(s, w, "GET, POST")
	}
}

var badReturnTo = &pageError{Status: http.StatusBadRequest, Title: "Nothing to sign in to",
	Message: "Sign-in starts from an application. Go back to it and try again.", Code: oautherr.InvalidRequest.Code}

// returnTarget accepts only a return address of this server's authorize
// endpoint or one of its self-service pages (returnPages, exactly), so the
// page cannot be used to redirect anywhere else.
func (s *Server) returnTarget(returnTo string) (url.Values, bool) {
	if slices.Contains(s.returnPages(), returnTo) || s.selfServicePage(returnTo) {
		return url.Values{}, true
	}
	if !strings.HasPrefix(returnTo, s.paths.authorize+"?") || strings.ContainsAny(returnTo, "\\\r\n#") {
		return nil, false
	}
	u, err := url.Parse(returnTo)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path != s.paths.authorize {
		return nil, false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, false
	}
	return q, true
}

// selfServicePage reports whether returnTo is a path on this site (with
// an optional query) of one of the self-service pages a signed-out user is
// sent to sign in from: the developer portal.
func (s *Server) selfServicePage(returnTo string) bool {
	if !strings.HasPrefix(returnTo, "/") || strings.HasPrefix(returnTo, "//") || strings.Contains(returnTo, "..") ||
		strings.ContainsAny(returnTo, "\\\r\n#") {
		return false
	}
	u, err := url.Parse(returnTo)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return false
	}
	dev := s.paths.developer
	return s.cfg.DeveloperPortal != nil && (u.Path == dev || strings.HasPrefix(u.Path, dev+"/"))
}

// showLocked answers a sign-in refused for d: 429 with Retry-After, the
// form again and how long to wait.
func (s *Server) showLocked(w http.ResponseWriter, r *http.Request, d time.Duration, returnTo, email, clientID string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter(d)))
	s.showSignInView(w, r, http.StatusTooManyRequests, returnTo, email, clientID, &signInView{Locked: waitText(d)})
}

func (s *Server) showSignIn(w http.ResponseWriter, r *http.Request, status int, returnTo, email, clientID string, failed bool) {
	s.showSignInView(w, r, status, returnTo, email, clientID, &signInView{Failed: failed})
}

func (s *Server) showSignInView(w http.ResponseWriter, r *http.Request, status int, returnTo, email, clientID string, v *signInView) {
	secret, err := s.csrfSecret(w, r)
	if err != nil {
		s.renderError(w, &pageError{Status: http.StatusInternalServerError, Title: "Something went wrong", Message: "Please try again.", Code: oautherr.ServerError.Code})
		return
	}
	v.Action, v.ReturnTo, v.CSRF, v.Email = s.paths.signIn, returnTo, csrfToken(secret, csrfSignIn, ""), email
	if clientID != "" {
		if c, err := s.tokens.Client(r.Context(), clientID); err == nil {
			v.AppName = c.Name
		}
	}
	s.render(w, status, "signin", pageData{Title: "Sign in to " + s.cfg.Brand, SignIn: v})
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, &pageError{Status: http.StatusBadRequest, Title: "Invalid request", Message: "The form could not be read.", Code: oautherr.InvalidRequest.Code})
		return
	}
	f := r.PostForm
	returnTo := f.Get("return_to")
	q, ok := s.returnTarget(returnTo)
	if !ok {
		s.renderError(w, badReturnTo)
		return
	}
	if !s.checkCSRF(r, csrfSignIn, "", f.Get("csrf_token")) {
		s.renderError(w, &pageError{Status: http.StatusForbidden, Title: "Request refused",
			Message: "This form was not sent from the sign-in page. Go back to the application and start again.", Code: oautherr.AccessDenied.Code})
		return
	}
	email := strings.TrimSpace(f.Get("email"))
	// Throttling counts the e-mail as typed (folded as the directory
	// folds it) whether or not an account has it, so a locked unknown
	// e-mail is answered exactly like a locked account, and the lock is
	// checked before the directory is.
	subjects := [2]throttle.Subject{{Kind: throttle.Account, Value: strings.ToLower(email)},
		{Kind: throttle.SignInAddress, Value: s.clientAddress(r)}}
	if d := s.throttle.Locked(subjects[:]...); d > 0 {
		s.throttle.Refused(throttle.EndpointSignIn)
		s.observeSignIn(false)
		s.showLocked(w, r, d, returnTo, email, q.Get("client_id"))
		return
	}
	u, err := s.authenticate(r.Context(), email, f.Get("password"))
	if err != nil {
		s.renderError(w, s.unavailablePage(err))
		return
	}
	if u == nil {
		s.observeSignIn(false)
		d, err := s.throttle.Failed(r.Context(), throttle.EndpointSignIn, subjects[:]...)
		switch {
		case err != nil:
			// An uncounted failure would be a free guess.
			s.renderError(w, s.unavailablePage(err))
		case d > 0:
			s.showLocked(w, r, d, returnTo, email, q.Get("client_id"))
		default:
			// One message for an unknown e-mail and a wrong password.
			s.showSignIn(w, r, http.StatusUnauthorized, returnTo, email, q.Get("client_id"), true)
		}
		return
	}
	// Writes only when the account has failures to forget.
	if err := s.throttle.Succeeded(r.Context(), subjects[:]...); err != nil {
		s.log.Warn("forgetting failed sign-ins", zap.Error(err))
	}
	if err := s.startSession(w, u.ID, s.now()); err != nil {
		s.renderError(w, s.unavailablePage(err))
		return
	}
	s.observeSignIn(true)
	seeOther(w, returnTo)
}

// authenticate checks an e-mail and password against the directory and
// returns the user, or nil when they do not match. An unknown e-mail costs
// the same password hash as a known one, so timing does not tell which.
func (s *Server) authenticate(ctx context.Context, email, password string) (*tokenstore.User, error) {
	if email == "" || password == "" || len(password) > maxPasswordLen || len(email) > 254 {
		checkPassword(dummyPasswordHash(), password)
		return nil, nil
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		checkPassword(dummyPasswordHash(), password)
		return nil, nil
	case err != nil:
		return nil, err
	}
	if u.PasswordHash == "" {
		// Mirrored from a platform: it has no password here.
		checkPassword(dummyPasswordHash(), password)
		return nil, nil
	}
	if !checkPassword(u.PasswordHash, password) {
		return nil, nil
	}
	return u, nil
}
